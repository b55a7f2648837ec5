//! The `asterope` command-line tool: put, get, head, rm and ls against an embedded data directory.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use asterope::body::{drain_into, file_body, reader_body};
use asterope::{
    ByteRange, Condition, Database, Error, GetOptions, Key, ListOptions, ObjectInfo, PutOptions,
    Result, Store,
};
use asterope_serialization::{metadata_from_json_str, metadata_to_json};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

/// Transfers at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_THRESHOLD: u64 = 4 << 20;

#[derive(Parser, Debug)]
#[command(
    name = "asterope",
    version,
    about = "Large-binary object store with metadata queries"
)]
struct Cli {
    /// Data directory of the embedded database.
    #[arg(
        long,
        global = true,
        env = "ASTEROPE_DATA",
        default_value = "./asterope-data"
    )]
    data: PathBuf,
    /// Cap on the total size of extent files, in bytes (writes beyond it fail with storage_full).
    #[arg(long, global = true, env = "ASTEROPE_CAPACITY_LIMIT")]
    capacity_limit: Option<u64>,
    /// Size of newly created extent files, in bytes.
    #[arg(long, global = true, env = "ASTEROPE_EXTENT_SIZE", hide = true)]
    extent_size: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Store FILE (or stdin with `-`) under KEY, replacing any previous object.
    Put {
        key: String,
        file: PathBuf,
        /// Metadata document as a JSON object.
        #[arg(long)]
        meta: Option<String>,
        /// Refuse the upload unless its SHA-256 is this (hex).
        #[arg(long)]
        sha256: Option<String>,
        /// Write only if the current version is N (0: only if the key is absent).
        #[arg(long)]
        if_version: Option<u64>,
    },
    /// Write the object's bytes to stdout or to a file, verifying its SHA-256.
    Get {
        key: String,
        /// Output file, or `-` for stdout (default).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Byte range START-END (inclusive, as in HTTP), START- or -SUFFIX.
        #[arg(long)]
        range: Option<String>,
        /// Skip SHA-256 verification.
        #[arg(long)]
        no_verify: bool,
    },
    /// Print the object's description as JSON.
    Head { key: String },
    /// Delete the object.
    Rm {
        key: String,
        /// Delete only if the current version is N.
        #[arg(long)]
        if_version: Option<u64>,
    },
    /// List objects (one JSON object per line), optionally under a key prefix.
    Ls { prefix: Option<String> },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("asterope: error[{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let mut builder = Database::builder(&cli.data).capacity_limit(cli.capacity_limit);
    if let Some(size) = cli.extent_size {
        builder = builder.extent_size(size);
    }
    let db = builder.open()?;
    match cli.command {
        Command::Put {
            key,
            file,
            meta,
            sha256,
            if_version,
        } => {
            let key = Key::new(key)?;
            let mut options = PutOptions::default();
            if let Some(meta) = meta {
                options.metadata = metadata_from_json_str(&meta)?;
            }
            if let Some(sha256) = sha256 {
                options.sha256 = Some(sha256.parse()?);
            }
            options.condition.if_version = if_version;
            let info = put(&db, &key, &file, options).await?;
            print_json(&info_json(&info));
            Ok(())
        }
        Command::Get {
            key,
            output,
            range,
            no_verify,
        } => {
            let mut options = GetOptions::default().with_verify(!no_verify);
            if let Some(range) = range {
                options = options.with_range(ByteRange::parse(&range)?);
            }
            get(&db, &Key::new(key)?, output.as_deref(), options).await
        }
        Command::Head { key } => {
            let info = db.head(&Key::new(key)?).await?;
            print_json(&info_json(&info));
            Ok(())
        }
        Command::Rm { key, if_version } => {
            let condition = Condition { if_version };
            db.delete(&Key::new(key)?, condition).await
        }
        Command::Ls { prefix } => {
            let mut cursor = None;
            let stdout = std::io::stdout();
            loop {
                let options = ListOptions::default()
                    .with_prefix(prefix.clone().unwrap_or_default())
                    .with_cursor(cursor);
                let page = db.list(options).await?;
                let mut out = stdout.lock();
                for info in &page.objects {
                    let line = serde_json::json!({
                        "key": info.key.as_str(),
                        "size": info.size,
                        "sha256": info.sha256.to_hex(),
                        "version": info.version,
                        "updated": info.updated.to_rfc3339(),
                    });
                    writeln!(out, "{line}").map_err(|e| Error::io("writing the listing", e))?;
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return Ok(()),
                }
            }
        }
    }
}

async fn put(db: &Database, key: &Key, file: &Path, mut options: PutOptions) -> Result<ObjectInfo> {
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

async fn get(db: &Database, key: &Key, output: Option<&Path>, options: GetOptions) -> Result<()> {
    let result = db.get(key, options).await?;
    let bar = progress_bar(Some(result.range.end - result.range.start));
    let progress = |n| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    };
    let outcome = match output.filter(|p| *p != Path::new("-")) {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            drain_into(result.body, &mut out, progress).await.map(drop)
        }
        Some(path) => write_file_atomically(path, result.body, progress).await,
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    outcome
}

/// Writes to a temporary file beside `path` and renames it into place only after the whole
/// (verified) body arrived, so a failed download never leaves a file that looks complete.
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

fn info_json(info: &ObjectInfo) -> serde_json::Value {
    serde_json::json!({
        "key": info.key.as_str(),
        "size": info.size,
        "sha256": info.sha256.to_hex(),
        "version": info.version,
        "created": info.created.to_rfc3339(),
        "updated": info.updated.to_rfc3339(),
        "meta": metadata_to_json(&info.metadata),
    })
}

fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
