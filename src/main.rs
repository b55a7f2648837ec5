//! The `asterope` command-line tool: `serve`, and put, get, head, rm and ls against an embedded
//! data directory or, with `--server`, a running server (same commands, same output).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use asterope::{
    ByteRange, Client, CompactionSchedule, Condition, Database, Error, GetOptions, IndexState, Key,
    ListOptions, PutOptions, Query, Result, SortSpec, Store, StoreExt,
};
use asterope_serialization::parse_filter;
use asterope_serialization::wire::{
    to_json_text, CompactReply, IndexDescription, ObjectDescription, PlanReply, StatsReply,
};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

#[path = "cli/output.rs"]
mod output;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/transfer.rs"]
mod transfer;
#[path = "cli/verify.rs"]
mod verify;

use output::{print_body, print_line, print_pages, CLOSED_PIPE_STATUS};
use transfer::{get, put, read_metadata_argument};

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
    /// Store every upload's bytes even when identical content is already stored (content
    /// deduplication is on by default).
    #[arg(long, global = true, env = "ASTEROPE_NO_DEDUP")]
    no_dedup: bool,
    /// Seconds between background compaction passes (0: only `asterope compact`).
    #[arg(
        long,
        global = true,
        env = "ASTEROPE_COMPACTION_INTERVAL",
        default_value_t = 60
    )]
    compaction_interval: u64,
    /// Live bytes one background compaction pass may move.
    #[arg(long, global = true, env = "ASTEROPE_COMPACTION_BUDGET", default_value_t = 256 << 20)]
    compaction_budget: u64,
    /// Size extent files may grow to, in bytes (they start at 1 MiB).
    #[arg(long, global = true, env = "ASTEROPE_EXTENT_SIZE", hide = true)]
    extent_size: Option<u64>,
    /// Memory budget of the metadata tree's page cache, in bytes (default 64 MiB).
    #[arg(long, global = true, env = "ASTEROPE_CACHE_SIZE", value_name = "BYTES")]
    cache_size: Option<u64>,
    /// Talk to this server (http://HOST:PORT or https://HOST:PORT) instead of a data directory.
    #[arg(long, global = true, env = "ASTEROPE_URL")]
    server: Option<String>,
    /// Bearer token sent to the server.
    #[arg(long, global = true, env = "ASTEROPE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) trusted for an https server.
    #[arg(long, global = true, env = "ASTEROPE_CA_CERT")]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the data directory over HTTP/2 and HTTP/1.1 on one port (cleartext, or TLS with
    /// --tls-cert/--tls-key).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: String,
        /// Certificate chain (PEM) for TLS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Private key (PEM) for TLS.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Read-write bearer token (repeatable). With any token set, every route but
        /// /v1/health needs one.
        #[arg(
            long = "auth-token",
            env = "ASTEROPE_SERVER_TOKEN",
            hide_env_values = true
        )]
        auth_tokens: Vec<String>,
        /// Read-only bearer token (repeatable).
        #[arg(long = "read-token")]
        read_tokens: Vec<String>,
        /// File of tokens, one `rw TOKEN` or `ro TOKEN` per line.
        #[arg(long)]
        tokens_file: Option<PathBuf>,
        /// Origin whose browser scripts may call the server, `scheme://host[:port]` or `*`
        /// (repeatable; CORS). A named origin may send credentials; `*` never does.
        #[arg(long = "cors-origin", value_name = "ORIGIN")]
        cors_origins: Vec<String>,
    },
    /// Store FILE (or stdin with `-`) under KEY, replacing any previous object.
    Put {
        key: String,
        file: PathBuf,
        /// Metadata document: a JSON object, or @FILE to read it from a file (@- from stdin).
        #[arg(long, value_name = "JSON|@FILE")]
        meta: Option<String>,
        /// Refuse the upload unless its SHA-256 is this (hex).
        #[arg(long)]
        sha256: Option<String>,
        /// Write only if the current version is N (0: only if the key is absent).
        #[arg(long)]
        if_version: Option<u64>,
    },
    /// Write the object's bytes to stdout or to a file. The bytes are checked as they stream:
    /// the CRC-32 of every 1 MiB block before any byte of it is written (ranges included) and,
    /// over the network, also the SHA-256 of a whole object; a mismatch fails the command (with
    /// -o FILE, no file is left).
    Get {
        key: String,
        /// Output file, or `-` for stdout (default).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Byte range START-END (inclusive, as in HTTP), START- or -SUFFIX (`--range -500`: the
        /// last 500 bytes).
        #[arg(long, allow_hyphen_values = true)]
        range: Option<String>,
        /// Skip the checks.
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
    /// List objects in key order, optionally under a key prefix: one JSON description per line,
    /// as the HTTP listing gives them (key, size, sha256, version, created, updated, meta).
    Ls {
        prefix: Option<String>,
        /// At most N objects; if more remain, `{"next": CURSOR}` is printed on stderr.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        limit: Option<usize>,
        /// Continue after this cursor (the `next` of an earlier, limited listing).
        #[arg(long, allow_hyphen_values = true)]
        cursor: Option<String>,
    },
    /// Object metadata, without touching the bytes.
    Meta {
        #[command(subcommand)]
        action: MetaAction,
    },
    /// Query metadata with a JSON filter; prints one JSON description per line (as `ls`).
    Query {
        /// The filter, e.g. '{"patient_id": "12345", "study_date": {"$gt": {"$date": "2024-01-01"}}}'.
        filter: String,
        /// Sort by FIELD (ascending) or -FIELD (descending).
        #[arg(long, allow_hyphen_values = true)]
        sort: Option<String>,
        /// At most N results; if more remain, `{"next": CURSOR}` is printed on stderr.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        limit: Option<usize>,
        /// Continue after this cursor (the `next` of an earlier, limited run of the same query
        /// and sort).
        #[arg(long, allow_hyphen_values = true)]
        cursor: Option<String>,
        /// Only keys under this prefix.
        #[arg(long, allow_hyphen_values = true)]
        prefix: Option<String>,
        /// Print only the number of matches.
        #[arg(long)]
        count: bool,
        /// Print how the query would run (index or scan) instead of running it.
        #[arg(long)]
        explain: bool,
    },
    /// Re-read blobs and check their SHA-256: one KEY, or every object with --all. Prints one
    /// JSON line per damaged object and exits non-zero if there is any.
    Verify {
        /// The object to check.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        key: Option<String>,
        /// Check every object.
        #[arg(long)]
        all: bool,
    },
    /// Print object and space accounting as JSON.
    Stats,
    /// Reclaim space now: move live blobs out of sparse extents, delete empty extents, give
    /// free ranges back to the filesystem; prints what it did as JSON.
    Compact,
    /// Manage secondary indexes.
    Index {
        #[command(subcommand)]
        action: IndexAction,
    },
}

#[derive(Subcommand, Debug)]
enum MetaAction {
    /// Replace KEY's metadata with JSON (a JSON object, or @FILE, or @- for stdin), keeping its
    /// bytes; prints the new description.
    Set {
        key: String,
        #[arg(value_name = "JSON|@FILE")]
        meta: String,
        /// Write only if the current version is N.
        #[arg(long)]
        if_version: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum IndexAction {
    /// Index a field path, filling it from existing objects (writers are not blocked); waits
    /// until the index is ready.
    Create {
        field: String,
        /// Return at once while the index is still building (a server keeps building it; an
        /// embedded store resumes the build when it is next opened).
        #[arg(long)]
        no_wait: bool,
    },
    /// Remove an index.
    Drop { field: String },
    /// List indexes and their state.
    Ls,
}

/// With the `mimalloc` feature, the process allocates through mimalloc instead of the system's
/// allocator (docs/BENCHMARKS.md, "Server memory").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any thread exists (removing variables is only sound then).
    forget_empty_environment();
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let outcome = choose_store(&matches, &mut cli).and_then(|()| {
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        if let Command::Serve { .. } = cli.command {
            // As many blocking threads as the server's own bounds can occupy, not tokio's 512.
            runtime.max_blocking_threads(asterope::ServerConfig::default().blocking_threads());
        }
        runtime
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the runtime", e))?
            .block_on(run(cli))
    });
    if output::closed() {
        return ExitCode::from(CLOSED_PIPE_STATUS);
    }
    match outcome.and_then(|()| output::take_failure().map_or(Ok(()), Err)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(format_args!("asterope: error[{}]: {e}", e.code()));
            ExitCode::FAILURE
        }
    }
}

/// An `ASTEROPE_*` variable set to the empty string counts as unset (`ASTEROPE_URL= asterope
/// ls` reads the default data directory), as a shell user expects.
fn forget_empty_environment() {
    let empty: Vec<_> = std::env::vars_os()
        .filter(|(name, value)| {
            value.is_empty() && name.to_str().is_some_and(|n| n.starts_with("ASTEROPE_"))
        })
        .map(|(name, _)| name)
        .collect();
    for name in empty {
        std::env::remove_var(name);
    }
}

/// Decides between the data directory and the server. A command-line flag overrides the other
/// one's environment variable; both on the command line, or both only in the environment, are
/// ambiguous and refused. `serve` serves its data directory and takes no `--server`.
fn choose_store(matches: &ArgMatches, cli: &mut Cli) -> Result<()> {
    use ValueSource::{CommandLine, EnvVariable};
    let refuse = |reason: &str| {
        Err(Error::InvalidArgument {
            reason: reason.into(),
        })
    };
    let server = matches.value_source("server");
    let data = matches.value_source("data");
    if let Command::Serve { .. } = cli.command {
        if server == Some(CommandLine) {
            return refuse("serve serves its --data directory; --server is for the other commands");
        }
        cli.server = None;
        return Ok(());
    }
    match (server, data) {
        (Some(CommandLine), Some(CommandLine)) => {
            refuse("--server and --data both name a store; give one of them")
        }
        (Some(EnvVariable), Some(EnvVariable)) => refuse(
            "ASTEROPE_URL and ASTEROPE_DATA are both set; give --server or --data (a flag \
             overrides the other's variable), or unset one",
        ),
        (Some(EnvVariable), Some(CommandLine)) => {
            cli.server = None;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Serve { .. } = cli.command {
        return serve::serve(cli).await;
    }
    let store: Box<dyn Store> = match &cli.server {
        Some(url) => {
            let mut builder = Client::builder(url.as_str());
            if let Some(token) = &cli.token {
                builder = builder.token(token.as_str());
            }
            if let Some(ca) = &cli.ca_cert {
                builder = builder.root_certificate(ca);
            }
            Box::new(builder.connect().await?)
        }
        None => Box::new(open_database(&cli)?),
    };
    let db = store.as_ref();
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
                if meta == "@-" && file == Path::new("-") {
                    return Err(Error::InvalidArgument {
                        reason: "stdin cannot be both the metadata (--meta @-) and the body (-)"
                            .into(),
                    });
                }
                options.metadata = read_metadata_argument(&meta)?;
            }
            if let Some(sha256) = sha256 {
                options.sha256 = Some(sha256.parse()?);
            }
            options.condition.if_version = if_version;
            let info = put(db, &key, &file, options).await?;
            print_body(&ObjectDescription::from(&info));
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
            get(db, &Key::new(key)?, output.as_deref(), options).await
        }
        Command::Head { key } => {
            let info = db.head(&Key::new(key)?).await?;
            print_body(&ObjectDescription::from(&info));
            Ok(())
        }
        Command::Serve { .. } => Ok(()),
        Command::Query {
            filter,
            sort,
            limit,
            cursor,
            prefix,
            count,
            explain,
        } => {
            let mut query = Query::new(parse_filter(&filter)?);
            query.key_prefix = prefix;
            query.sort = sort.as_deref().map(SortSpec::parse).transpose()?;
            if explain {
                let plan = db.explain(&query).await?;
                return print_line(to_json_text(&PlanReply::from(plan)));
            }
            if count {
                return print_line(db.count(&query).await?);
            }
            print_pages(limit, cursor, |page_limit, cursor| {
                let mut query = query.clone();
                query.limit = Some(page_limit);
                query.cursor = cursor;
                async move {
                    let page = db.query(&query).await?;
                    Ok((page.objects, page.next))
                }
            })
            .await
        }
        Command::Verify { key, all: _ } => {
            let keys = match key {
                Some(key) => vec![Key::new(key)?],
                None => db.list_all("").await?.into_iter().map(|o| o.key).collect(),
            };
            verify::verify(db, &keys, cli.server.is_none()).await
        }
        Command::Stats => {
            print_body(&StatsReply::from(db.stats().await?));
            Ok(())
        }
        Command::Compact => {
            print_body(&CompactReply::from(db.compact().await?));
            Ok(())
        }
        Command::Index { action } => match action {
            IndexAction::Create { field, no_wait } => {
                let mut info = db.create_index(&field).await?;
                // The build runs in the background; an embedded process that exits stops it
                // (the next open resumes it), so by default the command waits until it is done.
                while !no_wait && info.state == IndexState::Building {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    info = db
                        .list_indexes()
                        .await?
                        .into_iter()
                        .find(|index| index.field == info.field)
                        .ok_or_else(|| Error::NotFound {
                            key: format!("index {}", info.field),
                        })?;
                }
                print_body(&IndexDescription::from(&info));
                if info.state == IndexState::Failed {
                    return Err(Error::internal(format!(
                        "the index on {} could not be built (it is listed as failed; \
                         `asterope index drop` removes it)",
                        info.field
                    )));
                }
                Ok(())
            }
            IndexAction::Drop { field } => db.drop_index(&field).await,
            IndexAction::Ls => {
                for info in db.list_indexes().await? {
                    print_body(&IndexDescription::from(&info));
                }
                Ok(())
            }
        },
        Command::Rm { key, if_version } => {
            let condition = Condition { if_version };
            db.delete(&Key::new(key)?, condition).await
        }
        Command::Ls {
            prefix,
            limit,
            cursor,
        } => {
            let prefix = prefix.unwrap_or_default();
            print_pages(limit, cursor, |page_limit, cursor| {
                let options = ListOptions::default()
                    .with_prefix(prefix.clone())
                    .with_cursor(cursor)
                    .with_limit(page_limit);
                async move {
                    let page = db.list(options).await?;
                    Ok((page.objects, page.next))
                }
            })
            .await
        }
        Command::Meta {
            action:
                MetaAction::Set {
                    key,
                    meta,
                    if_version,
                },
        } => {
            let metadata = read_metadata_argument(&meta)?;
            let info = db
                .update_metadata(&Key::new(key)?, metadata, Condition { if_version })
                .await?;
            print_line(ObjectDescription::json_of(&info))
        }
    }
}

pub(crate) fn open_database(cli: &Cli) -> Result<Database> {
    // A command that only reads never creates a store: a mistyped `--data` path is an error,
    // not a new empty directory.
    let only_reads = matches!(
        cli.command,
        Command::Get { .. }
            | Command::Head { .. }
            | Command::Ls { .. }
            | Command::Query { .. }
            | Command::Verify { .. }
            | Command::Stats
            | Command::Index {
                action: IndexAction::Ls
            }
    );
    if only_reads && !cli.data.join("meta").is_dir() {
        return Err(Error::InvalidArgument {
            reason: format!(
                "no data directory at {} (a command that only reads does not create one)",
                cli.data.display()
            ),
        });
    }
    let schedule = (cli.compaction_interval > 0).then(|| CompactionSchedule {
        interval: std::time::Duration::from_secs(cli.compaction_interval),
        budget_bytes: cli.compaction_budget,
    });
    let mut builder = Database::builder(&cli.data)
        .capacity_limit(cli.capacity_limit)
        .dedup(!cli.no_dedup)
        .background_compaction(schedule);
    if let Some(size) = cli.extent_size {
        builder = builder.extent_size(size);
    }
    if let Some(bytes) = cli.cache_size {
        builder = builder.cache_bytes(bytes);
    }
    builder.open()
}
