//! `cairn`: the server (`cairn serve`), a command-line client over HTTP, and
//! offline tools on a data directory.
//!
//! Exit codes: 0 success; 1 the key (or content) is missing, or a condition
//! did not hold; 2 any error, with a message on stderr.

mod client;
mod cmd;
mod progress;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

/// mimalloc: the engine allocates many small, short-lived objects per write
/// (values, events, batch items); glibc malloc spent ~40% of a write in
/// malloc/free/consolidation under profiling.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "cairn: a persistent key-value store",
    after_help = "Exit codes: 0 success; 1 key or content not found, or a condition did not hold; 2 any other error."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The help heading of the options `serve` does not use.
const CLIENT: &str = "Client options (not used by serve)";

/// Where client commands look for a server.
const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

/// Options of the client commands.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Server URL for client commands.
    #[arg(long, global = true, env = "CAIRN_SERVER", default_value = DEFAULT_SERVER, value_parser = server_url, help_heading = CLIENT)]
    pub server: String,
    /// Bearer token for the server.
    #[arg(long, global = true, env = "CAIRN_TOKEN", hide_env_values = true, help_heading = CLIENT)]
    pub token: Option<String>,
    /// PEM certificate(s) to trust for an https:// server (its own
    /// self-signed certificate, or a private CA); default: public web roots.
    #[arg(long, global = true, env = "CAIRN_TLS_CA", help_heading = CLIENT)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Store to act on (default: `default`; `watch` and `export` default to all stores).
    #[arg(long, global = true, env = "CAIRN_STORE", help_heading = CLIENT)]
    pub store: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true, help_heading = CLIENT)]
    pub json: bool,
}

/// `--server`: an http(s) URL with a host, checked before any request.
fn server_url(s: &str) -> Result<String, String> {
    // `CAIRN_SERVER=` (set but empty) means the default, as unset does.
    if s.is_empty() {
        return Ok(DEFAULT_SERVER.to_owned());
    }
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("{s:?} is not an http:// or https:// URL (e.g. http://127.0.0.1:7070)"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{s:?} has no host (e.g. http://127.0.0.1:7070)"));
    }
    s.parse::<ureq::http::Uri>()
        .map_err(|e| format!("{s:?} is not a valid URL: {e}"))?;
    Ok(s.to_owned())
}

impl Global {
    /// The store, or `default`.
    pub fn store(&self) -> &str {
        self.store.as_deref().unwrap_or(cairn_core::DEFAULT_STORE)
    }

    /// An HTTP client for the configured server.
    ///
    /// # Errors
    /// An unreadable `--tls-ca`, or one without certificates.
    pub fn client(&self) -> anyhow::Result<client::Client> {
        self.client_for(false)
    }

    /// An HTTP client; `streaming` leaves out the overall request timeout
    /// (watch, backup).
    ///
    /// # Errors
    /// As [`Global::client`].
    pub fn client_for(&self, streaming: bool) -> anyhow::Result<client::Client> {
        client::Client::new(&self.server, self.token.clone(), streaming, self.tls_ca.as_deref())
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve(cairn_server::ServerConfig),
    /// Print a key's value (`--json`: the entry with its metadata).
    Get {
        /// The key.
        key: String,
    },
    /// Set a key. VALUE is JSON when it parses as JSON, else a string;
    /// `-` reads it from stdin (bytes that are not UTF-8 are stored as bytes).
    Set {
        /// The key.
        key: String,
        /// The value, or `-` for stdin (`'"-"'` is the string "-").
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Expire after this many seconds (decimals allowed).
        #[arg(long)]
        ttl: Option<f64>,
        /// Only if the key does not exist.
        #[arg(long)]
        if_absent: bool,
        /// Only if the key's revision is this (compare-and-set).
        #[arg(long)]
        if_revision: Option<u64>,
    },
    /// Delete a key.
    #[command(alias = "delete")]
    Del {
        /// The key.
        key: String,
    },
    /// List keys and values in key order.
    #[command(alias = "ls")]
    List {
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// At most this many entries (default: all).
        #[arg(long)]
        limit: Option<usize>,
        /// Print keys only.
        #[arg(long)]
        keys_only: bool,
    },
    /// List stores and their types.
    Stores,
    /// Add to a number (default 1; negative to subtract).
    Incr {
        /// The key.
        key: String,
        /// Amount.
        #[arg(default_value = "1", allow_hyphen_values = true)]
        by: String,
    },
    /// Print changes as they happen (Server-Sent Events from `/v1/watch`).
    Watch {
        /// Only this key.
        #[arg(long, conflicts_with = "prefix")]
        key: Option<String>,
        /// Only keys with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Replay from this revision (inclusive), then follow.
        #[arg(long)]
        from: Option<u64>,
        /// After a dropped connection, keep reconnecting for this many seconds (0: exit at once).
        #[arg(long, default_value_t = 30)]
        reconnect: u64,
    },
    /// Content-addressed storage.
    #[command(subcommand)]
    Content(cmd::content::ContentCmd),
    /// Write a consistent backup file (from the server, or offline with `--data-dir`).
    Backup {
        /// Backup file to write.
        file: PathBuf,
        /// Back up this data directory directly (server stopped).
        #[arg(long, env = "CAIRN_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Restore a backup file into a data directory (server stopped).
    Restore {
        /// Backup file.
        file: PathBuf,
        /// Data directory to restore into; must be empty unless --force.
        #[arg(long, env = "CAIRN_DATA_DIR")]
        data_dir: PathBuf,
        /// Replace a non-empty data directory.
        #[arg(long)]
        force: bool,
    },
    /// Write entries as NDJSON to stdout (or --output), from the server or a data dir.
    Export {
        /// Only keys with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Export this data directory directly (server stopped).
        #[arg(long, env = "CAIRN_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Load NDJSON entries (as `export` writes them; `-` for stdin).
    Import {
        /// NDJSON file.
        file: PathBuf,
        /// What to do with existing keys: skip, overwrite or fail.
        #[arg(long, default_value = "overwrite")]
        on_conflict: String,
        /// Import into this data directory directly (server stopped).
        #[arg(long, env = "CAIRN_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Verify a data directory (server stopped) or a backup file.
    Check {
        /// Data directory to check.
        #[arg(long, env = "CAIRN_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Verify this backup file instead.
        #[arg(long)]
        backup: Option<PathBuf>,
    },
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match cli.cmd {
        Cmd::Serve(cfg) => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(cairn_server::run(cfg, shutdown_signal()))?;
            Ok(())
        }
        Cmd::Get { key } => cmd::kv::get(g, &key),
        Cmd::Set {
            key,
            value,
            ttl,
            if_absent,
            if_revision,
        } => cmd::kv::set(
            g,
            &key,
            &value,
            cmd::kv::SetOpts {
                ttl,
                if_absent,
                if_revision,
            },
        ),
        Cmd::Del { key } => cmd::kv::del(g, &key),
        Cmd::List {
            prefix,
            limit,
            keys_only,
        } => cmd::kv::list(g, prefix.as_deref(), limit, keys_only),
        Cmd::Stores => cmd::kv::stores(g),
        Cmd::Incr { key, by } => cmd::kv::incr(g, &key, &by),
        Cmd::Watch {
            key,
            prefix,
            from,
            reconnect,
        } => cmd::watch::watch(g, key.as_deref(), prefix.as_deref(), from, reconnect),
        Cmd::Content(c) => cmd::content::run(g, c),
        Cmd::Backup { file, data_dir } => cmd::data::backup(g, &file, data_dir.as_deref()),
        Cmd::Restore { file, data_dir, force } => cmd::data::restore(g, &file, &data_dir, force),
        Cmd::Export {
            prefix,
            output,
            data_dir,
        } => cmd::data::export(g, prefix.as_deref(), output.as_deref(), data_dir.as_deref()),
        Cmd::Import {
            file,
            on_conflict,
            data_dir,
        } => cmd::data::import(g, &file, &on_conflict, data_dir.as_deref()),
        Cmd::Check { data_dir, backup } => cmd::data::check(g, data_dir.as_deref(), backup.as_deref()),
    }
}

fn main() {
    let cli = Cli::parse();
    let serving = matches!(cli.cmd, Cmd::Serve(_));
    // The storage library's own info lines (one per keyspace opened, per
    // flush) are noise to an operator: warnings and errors still show.
    let default_level = if serving {
        "info,fjall=warn,lsm_tree=warn"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let json = cli.global.json;
    let code = match run(cli) {
        Ok(()) => 0,
        // The reader of stdout went away (`cairn list | head`): stop quietly,
        // as other Unix tools do.
        Err(e)
            if e.chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            0
        }
        Err(e) => {
            let server = e.downcast_ref::<client::ServerError>();
            let (code, kind, text) = if let Some(m) = e.downcast_ref::<client::Missing>() {
                (1, "not_found", m.to_string())
            } else if let Some(f) = e.downcast_ref::<cmd::ConditionFailed>() {
                (1, "condition_failed", f.to_string())
            } else if let Some(s) = server {
                (2, s.code(), format!("{e:#}"))
            } else {
                (2, "error", format!("{e:#}"))
            };
            if !json {
                eprintln!("{}{text}", if code == 2 { "error: " } else { "" });
            } else if !cmd::PRINTED_JSON.load(std::sync::atomic::Ordering::Relaxed) {
                // One JSON document on stdout, as for a success: the
                // server's own error object when it sent one.
                let error = server
                    .and_then(|s| s.error.clone())
                    .unwrap_or_else(|| serde_json::json!({"code": kind, "message": text}));
                println!("{}", serde_json::json!({ "error": error }));
            }
            code
        }
    };
    std::process::exit(code);
}
