// A filter on a field the metadata struct does not have does not compile.

#[allow(dead_code)]
#[derive(asterope::Metadata)]
struct StudyMeta {
    patient_id: String,
}

fn main() {
    let _ = StudyMeta::fields().patient.eq("12345");
}
