//! `cairn`: the server (`cairn serve`), a command-line client over HTTP, and
//! offline tools on a data directory.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cairn", version, about = "cairn: a persistent key-value store")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve(cairn_server::ServerConfig),
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.cmd {
        Cmd::Serve(cfg) => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(cairn_server::run(cfg, shutdown_signal()))?;
        }
    }
    Ok(())
}
