//! `oxidesk serve`.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;

use super::{Cli, load_config, open_store};
use crate::app::{AppState, serve, start_outbox};

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address, overriding the file. Port 0 takes a free port and
    /// prints `listening on ADDR` on standard output once it listens.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

pub(super) async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(cli)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let store = open_store(&config).await?;
    let state = AppState::new(&config, store);
    let outbox = start_outbox(&config, &state)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen.addr = %addr, database = %config.database, "oxidesk listening on http://{addr}");
    // Whoever asked for any free port learns which one, in a line meant
    // for programs (tests, supervisors), not in the log's format.
    if config.listen.port() == 0 {
        outln!("listening on {addr}");
    }
    // `/metrics` on an admin address of its own, when asked.
    let metrics_server = match config.metrics.listen {
        Some(addr) if config.metrics.enabled => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} ([metrics] listen)"))?;
            let addr = listener.local_addr()?;
            tracing::info!(listen.addr = %addr, "metrics on http://{addr}/metrics");
            Some(tokio::spawn(crate::app::serve_metrics(
                listener,
                state.clone(),
            )))
        }
        _ => None,
    };
    // Run the server as a task so the accept loop is on a worker thread
    // and the main thread only waits.
    tokio::spawn(serve(listener, state, shutdown_signal())).await??;
    if let Some(task) = metrics_server {
        task.abort();
    }
    if let Some(outbox) = outbox {
        outbox.stop().await;
    }
    tracing::info!("oxidesk stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
