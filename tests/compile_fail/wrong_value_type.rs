// A value of another type than the field's does not compile: a number for a string field, a
// string for a nested integer field, and a range operator on a boolean.

#[allow(dead_code)]
#[derive(asterope::Metadata)]
struct Series {
    count: u32,
}

#[allow(dead_code)]
#[derive(asterope::Metadata)]
struct StudyMeta {
    patient_id: String,
    contrast: bool,
    series: Series,
}

fn main() {
    let fields = StudyMeta::fields();
    let _ = fields.patient_id.eq(12345);
    let _ = fields.series.count.gt("3");
    let _ = fields.contrast.gt(false);
}
