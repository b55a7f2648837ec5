//! Moving user data between files, stdin or stdout and the store: uploads and downloads (with
//! a progress bar on a terminal) and metadata documents given as `@FILE` or `@-`.

use std::fs::File;
use std::io::IsTerminal;
use std::path::Path;

use asterope::body::{drain_into, file_body, reader_body};
use asterope::{Error, GetOptions, Key, Metadata, ObjectInfo, PutOptions, Result, Store};
use asterope_serialization::metadata_from_json_str;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::Stdout;

/// Transfers at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_THRESHOLD: u64 = 4 << 20;

/// Largest metadata text read from a file or stdin; far above what the 64 KiB limit lets
/// through, so a document is refused for its content, not cut.
const MAX_METADATA_TEXT: u64 = 16 << 20;

/// A metadata argument: JSON text, or `@FILE` / `@-` (stdin) holding it, for documents too
/// long for a command line.
pub(crate) fn read_metadata_argument(argument: &str) -> Result<Metadata> {
    use std::io::Read;
    let Some(path) = argument.strip_prefix('@') else {
        return metadata_from_json_str(argument);
    };
    let (reader, what): (Box<dyn Read>, String) = if path == "-" {
        (Box::new(std::io::stdin()), "stdin".into())
    } else {
        let file = File::open(path).map_err(|e| Error::io(format!("opening {path}"), e))?;
        (Box::new(file), path.to_string())
    };
    let mut text = String::new();
    reader
        .take(MAX_METADATA_TEXT + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(format!("reading metadata from {what}"), e))?;
    if text.len() as u64 > MAX_METADATA_TEXT {
        return Err(Error::InvalidMetadata {
            reason: format!("{what} holds more than {MAX_METADATA_TEXT} bytes of JSON"),
        });
    }
    metadata_from_json_str(&text)
}

pub(crate) async fn put(
    db: &dyn Store,
    key: &Key,
    file: &Path,
    mut options: PutOptions,
) -> Result<ObjectInfo> {
    let (body, size) = if file == Path::new("-") {
        (reader_body(std::io::stdin(), "stdin".into()), None)
    } else {
        let what = file.display().to_string();
        let handle = File::open(file).map_err(|e| Error::io(format!("opening {what}"), e))?;
        let size = handle
            .metadata()
            .map_err(|e| Error::io(format!("reading the size of {what}"), e))?
            .len();
        (file_body(handle, what), Some(size))
    };
    options.size = size;
    let bar = progress_bar(size);
    let body = match bar.clone() {
        Some(bar) => body
            .inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    bar.inc(chunk.len() as u64);
                }
            })
            .boxed(),
        None => body,
    };
    let result = db.put(key, body, options).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

pub(crate) async fn get(
    db: &dyn Store,
    key: &Key,
    output: Option<&Path>,
    options: GetOptions,
) -> Result<()> {
    let result = db.get(key, options).await?;
    let bar = progress_bar(Some(result.range.end - result.range.start));
    let progress = |n| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    };
    let outcome = match output.filter(|p| *p != Path::new("-")) {
        None => drain_into(result.body, &mut Stdout::lock(), progress)
            .await
            .map(drop),
        Some(path) if is_special_file(path) => write_in_place(path, result.body, progress).await,
        Some(path) => write_file_atomically(path, result.body, progress).await,
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    outcome
}

/// Whether `path` names something that exists and is not a regular file (a device such as
/// `/dev/null`, a FIFO, a socket): a download goes straight into it, since renaming a file over
/// it would replace the device or pipe itself.
fn is_special_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_file() && !m.is_dir())
}

/// Writes the body straight into an existing non-regular file, as a shell redirection would.
async fn write_in_place(
    path: &Path,
    body: asterope::ByteStream,
    progress: impl FnMut(u64),
) -> Result<()> {
    let what = path.display().to_string();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {what}"), e))?;
    drain_into(body, &mut file, progress).await.map(drop)
}

/// Writes to a regular file through a temporary file beside `path` and renames it into place
/// only after the whole (verified) body arrived, so a failed download never leaves a file that
/// looks complete.
async fn write_file_atomically(
    path: &Path,
    body: asterope::ByteStream,
    progress: impl FnMut(u64),
) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    let partial = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let what = partial.display().to_string();
    let mut file = File::create(&partial).map_err(|e| Error::io(format!("creating {what}"), e))?;
    let written = drain_into(body, &mut file, progress).await;
    let finished = written.and_then(|_| {
        file.sync_all()
            .map_err(|e| Error::io(format!("syncing {what}"), e))?;
        std::fs::rename(&partial, path)
            .map_err(|e| Error::io(format!("renaming {what} to {}", path.display()), e))
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    finished
}

fn progress_bar(size: Option<u64>) -> Option<ProgressBar> {
    let size = size.filter(|&s| s >= PROGRESS_THRESHOLD)?;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}
