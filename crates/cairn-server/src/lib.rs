//! cairn-server: the network front ends of cairn over one [`cairn_core::Db`].
//!
//! # Layout
//! - [`config`]: `ServerConfig`, the only code that reads flags and env vars.
//! - [`auth`]: bearer tokens, roles and store globs.
//! - [`http`]: REST/JSON, Server-Sent Events, the WebSocket message protocol,
//!   `/metrics` and `/openapi.json` (axum).
//! - [`resp`]: the Redis protocol: frame parser, command decoding, connections.
//! - [`metrics`]: Prometheus counters and histograms.
//!
//! Front ends parse requests into engine calls and render results; no
//! storage logic lives here.

pub mod auth;
pub mod config;
pub mod http;
mod json_scan;
pub mod metrics;
pub mod resp;

pub use config::{Listen, ServerConfig};

use auth::Auth;
use cairn_core::Db;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What every front end shares: one allocation, so the per-request clones
/// the router makes cost one reference-count increment.
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl std::ops::Deref for AppState {
    type Target = AppShared;
    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct AppShared {
    /// The engine.
    pub db: Db,
    /// Tokens.
    pub auth: Arc<Auth>,
    /// Server options.
    pub config: Arc<ServerConfig>,
    /// Metrics registry.
    pub metrics: Arc<metrics::Metrics>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Long-lived sessions the listeners do not track themselves (WebSockets):
    /// shutdown waits for them before it releases the engine.
    pub sessions: tokio_util::task::TaskTracker,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The options are inconsistent or unsafe.
    #[error("{0}")]
    Config(String),
    /// The engine failed to open.
    #[error(transparent)]
    Engine(#[from] cairn_core::Error),
    /// A listener could not bind.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running server.
pub struct Server {
    /// Where HTTP listens (port resolved).
    pub http_addr: Option<SocketAddr>,
    /// Where RESP listens (port resolved).
    pub resp_addr: Option<SocketAddr>,
    state: AppState,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn needs_auth(l: Listen) -> bool {
    l.addr().is_some_and(|a| !a.ip().is_loopback())
}

async fn bind(l: Listen) -> Result<Option<TcpListener>, StartError> {
    match l.addr() {
        None => Ok(None),
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| StartError::Bind { addr, source }),
    }
}

/// Opens the database, binds the listeners and starts serving.
///
/// # Errors
/// [`StartError`] for unsafe options, a locked or broken data dir, or a busy port.
pub async fn start(config: ServerConfig) -> Result<Server, StartError> {
    let auth = match &config.auth_token_file {
        Some(p) => Auth::from_file(p).map_err(StartError::Config)?,
        None => Auth::open(),
    };
    if !auth.enabled() && !config.insecure && (needs_auth(config.http) || needs_auth(config.resp)) {
        return Err(StartError::Config(
            "refusing to listen on a non-loopback address without --auth-token-file (pass --insecure to do it anyway)"
                .into(),
        ));
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        // Fail the start, not just the HTTP task, on an unusable certificate or key.
        http::tls::load(cert, key).map_err(StartError::Config)?;
    }
    let engine = config.engine().validate().map_err(StartError::Config)?;
    // Ports first: a port in use fails the start before the data directory
    // is made or opened.
    let http = bind(config.http).await?;
    let resp = bind(config.resp).await?;
    let dir = config.data_dir.clone();
    let db = tokio::task::spawn_blocking(move || Db::builder(dir).config(engine).open())
        .await
        .map_err(|e| StartError::Config(format!("engine open panicked: {e}")))??;
    let state = AppState(Arc::new(AppShared {
        db,
        auth: Arc::new(auth),
        config: Arc::new(config),
        metrics: Arc::new(metrics::Metrics::default()),
        shutdown: CancellationToken::new(),
        sessions: tokio_util::task::TaskTracker::new(),
    }));
    let mut server = Server {
        http_addr: None,
        resp_addr: None,
        state: state.clone(),
        tasks: Vec::new(),
    };
    if let Some(l) = http {
        let addr = l.local_addr().map_err(|source| StartError::Bind {
            addr: config_addr(&state, true),
            source,
        })?;
        tracing::info!(%addr, "HTTP listening");
        server.http_addr = Some(addr);
        server.tasks.push(tokio::spawn(http::serve(l, state.clone())));
    }
    if let Some(l) = resp {
        let addr = l.local_addr().map_err(|source| StartError::Bind {
            addr: config_addr(&state, false),
            source,
        })?;
        tracing::info!(%addr, "RESP listening");
        server.resp_addr = Some(addr);
        server.tasks.push(tokio::spawn(resp::serve(l, state.clone())));
    }
    tracing::info!(data_dir = %state.config.data_dir.display(), durability = ?state.config.durability, "cairn ready");
    Ok(server)
}

fn config_addr(state: &AppState, http: bool) -> SocketAddr {
    let l = if http { state.config.http } else { state.config.resp };
    l.addr().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

impl Server {
    /// The engine this server serves.
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// The shared state (for tests and embedding).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Graceful shutdown: stop accepting, let in-flight requests finish,
    /// close the engine (which syncs to disk).
    pub async fn shutdown(self) {
        if let Err(e) = self.stop().await {
            tracing::error!(error = %e, "final fsync failed");
        }
    }

    /// As [`Server::shutdown`], and says whether the engine's final fsync
    /// worked (it fails when the engine had stopped taking writes after a
    /// failed commit, e.g. a full disk).
    ///
    /// # Errors
    /// The final fsync failed.
    pub async fn stop(self) -> Result<(), cairn_core::Error> {
        self.state.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.state.sessions.close();
        self.state.sessions.wait().await;
        let db = self.state.db.clone();
        drop(self.state);
        // Joins the engine's threads, fsyncs and writes the memtables out.
        tokio::task::spawn_blocking(move || db.close())
            .await
            .unwrap_or(Err(cairn_core::Error::Closed))
    }
}

/// Runs until `signal` resolves, then shuts down gracefully.
///
/// # Errors
/// As [`start`].
pub async fn run(config: ServerConfig, signal: impl std::future::Future<Output = ()>) -> Result<(), StartError> {
    let server = start(config).await?;
    signal.await;
    tracing::info!("shutting down");
    // A failed final fsync is logged, not an exit status: after a fault
    // (say, a full disk) the engine refuses writes and its fsync fails,
    // while every write acknowledged in `sync` mode is already on disk.
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
