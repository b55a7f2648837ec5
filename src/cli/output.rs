//! Standard output of the command line, and what a closed pipe means.
//!
//! When the reader of a pipe goes away (`asterope get KEY | head -c 200`), the command ends as
//! `cat` does: quietly, with no message, and with exit status 141, which is what a shell reports
//! for `cat` killed by SIGPIPE (128 + 13), so `set -o pipefail` scripts see the same thing. A
//! Rust program ignores SIGPIPE and gets `EPIPE` from the write instead; every write to standard
//! output goes through [`Stdout`], which notes it, and `main` turns it into that quiet end. Any
//! other write failure (a full disk behind `>`) is an ordinary `io_error`.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use asterope::{Error, ObjectInfo, Result, MAX_LIST_LIMIT};
use asterope_serialization::wire::{to_json_text, ObjectDescription};
use serde::Serialize;

/// Exit status of a command whose standard output was closed by its reader.
pub(crate) const CLOSED_PIPE_STATUS: u8 = 141;

static CLOSED: AtomicBool = AtomicBool::new(false);
static FAILURE: Mutex<Option<Error>> = Mutex::new(None);

/// Standard output (locked) that notes a closed pipe.
pub(crate) struct Stdout {
    inner: io::StdoutLock<'static>,
}

impl Stdout {
    pub(crate) fn lock() -> Stdout {
        Stdout {
            inner: io::stdout().lock(),
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        note(self.inner.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        note(self.inner.flush())
    }
}

fn note<T>(result: io::Result<T>) -> io::Result<T> {
    if let Err(error) = &result {
        if error.kind() == io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::SeqCst);
        }
    }
    result
}

/// Whether a write found standard output closed by its reader.
pub(crate) fn closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// Prints one line (flushed, so a closed pipe is seen at once).
pub(crate) fn print_line(line: impl Display) -> Result<()> {
    let mut out = Stdout::lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}

/// Prints one line where the caller cannot stop on failure; the first failure is kept for
/// [`take_failure`].
pub(crate) fn print_line_or_remember(line: impl Display) {
    if let Err(error) = print_line(line) {
        let mut failure = FAILURE.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert(error);
    }
}

/// The first failure [`print_line_or_remember`] kept.
pub(crate) fn take_failure() -> Option<Error> {
    FAILURE.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Prints an error message on standard error; a closed standard error is ignored (the exit
/// status still tells).
pub(crate) fn print_error(message: impl Display) {
    let _ = writeln!(io::stderr(), "{message}");
}

/// Where a listing stopped by its limit goes on: `{"next": CURSOR}`.
#[derive(Serialize)]
struct NextCursor {
    next: String,
}

/// Prints a reply body as one JSON line; a failure is reported when the command ends.
pub(crate) fn print_body<T: Serialize>(body: &T) {
    print_line_or_remember(to_json_text(body));
}

/// Prints objects page by page from `fetch(page_limit, cursor)` until `limit` are printed or
/// the pages end. When the limit stopped it with more to come, prints `{"next": CURSOR}` on
/// stderr: `--cursor CURSOR` goes on from there.
pub(crate) async fn print_pages<F, Fut>(
    limit: Option<usize>,
    mut cursor: Option<String>,
    mut fetch: F,
) -> Result<()>
where
    F: FnMut(usize, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<ObjectInfo>, Option<String>)>>,
{
    let mut remaining = limit.unwrap_or(usize::MAX);
    while remaining > 0 {
        let (objects, next) = fetch(remaining.min(MAX_LIST_LIMIT), cursor.take()).await?;
        for info in objects.iter().take(remaining) {
            print_line(ObjectDescription::json_of(info))?;
        }
        remaining = remaining.saturating_sub(objects.len());
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
    if let Some(next) = cursor {
        print_error(to_json_text(&NextCursor { next }));
    }
    Ok(())
}
