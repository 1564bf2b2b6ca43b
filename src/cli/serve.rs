//! `oxidesk serve`: the server, its start-up checks and its signals
//! (SIGTERM/SIGINT drain then stop, a second one stops at once, SIGHUP
//! re-reads the configuration and never kills).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;

use super::{Cli, database_name, load_config, load_config_from, open_store};
use crate::app::{AppState, serve_draining, start_outbox};

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address, overriding the file. Port 0 takes a free port and
    /// prints `listening on ADDR` on standard output once it listens.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

pub(super) async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    // First of all: from here on the signals are ours (a SIGHUP during a
    // slow start must not kill the process either).
    let stops = install_signals(cli.config.clone(), cli.database.clone())?;
    let mut config = load_config(cli)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    // A template with a misspelt variable stops the start, not every mail.
    crate::mail_out::render::Templates::new(&config.mail)?.check()?;
    let database = database_name(&config);
    tracing::info!(database = %database, "database {database}");
    let store = open_store(&config).await?;
    let state = AppState::new(&config, store);
    let outbox = start_outbox(&config, &state)?;
    if outbox.is_none() {
        tracing::warn!(
            "mail.enabled is false: autoresponses and alerts are queued but not sent \
             (configure [mail] and set enabled = true to send them)"
        );
    }
    // Each connection is a file: the soft limit is often 1024 under a
    // far higher hard one.
    crate::app::conn::raise_open_file_limit();
    let listener = crate::app::conn::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen.addr = %addr, database = %database, version = super::VERSION, "oxidesk listening on http://{addr}");
    // Whoever asked for any free port learns which one, in a line meant
    // for programs (tests, supervisors), not in the log's format.
    if config.listen.port() == 0 {
        outln!("listening on {addr}");
    }
    // `/metrics` on an admin address of its own, when asked.
    let metrics_server = match config.metrics.listen {
        Some(addr) if config.metrics.enabled => {
            let listener = crate::app::conn::bind(addr)
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
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let (first, second) = (stops.clone(), stops);
    // Run the server as a task so the accept loop is on a worker thread
    // and the main thread only waits.
    tokio::spawn(serve_draining(
        listener,
        state,
        stop_signals(first, 1),
        stop_signals(second, 2),
        grace,
    ))
    .await??;
    if let Some(task) = metrics_server {
        task.abort();
    }
    if let Some(outbox) = outbox {
        // The sender finishes the mail in hand; an SMTP relay that hangs
        // must not hold the stop past the grace either.
        if tokio::time::timeout(grace, outbox.stop()).await.is_err() {
            tracing::warn!(
                "the outbox sender did not stop within {} s",
                grace.as_secs()
            );
        }
    }
    tracing::info!("oxidesk stopped");
    Ok(())
}

/// Resolves once `n` stop signals (SIGTERM or SIGINT) have arrived.
async fn stop_signals(mut count: watch::Receiver<u32>, n: u32) {
    if count.wait_for(|c| *c >= n).await.is_err() {
        // The listener task ended: there will be no more signals.
        std::future::pending::<()>().await;
    }
}

/// Listens for signals for the life of the process: SIGTERM and SIGINT
/// count up the returned stop count; SIGHUP re-reads the configuration.
fn install_signals(
    config: Option<PathBuf>,
    database: Option<String>,
) -> anyhow::Result<watch::Receiver<u32>> {
    let (count, stops) = watch::channel(0u32);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                    _ = hup.recv() => {
                        reload(config.as_deref(), database.as_deref());
                        continue;
                    }
                };
                count.send_modify(|c| *c += 1);
                if *count.borrow() == 1 {
                    tracing::info!(signal = name, "received {name}: shutting down");
                } else {
                    tracing::warn!(signal = name, "received {name} again: stopping at once");
                }
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            count.send_modify(|c| *c += 1);
        }
    });
    Ok(stops)
}

/// SIGHUP: the configuration is read and validated again, and the result
/// logged. Nothing is swapped into the running server yet (templates,
/// bans and limits are compiled into its state at start), so a change
/// takes a restart; the signal never stops the server.
fn reload(config: Option<&std::path::Path>, database: Option<&str>) {
    let file = config.map_or_else(|| "(no file)".to_string(), |p| p.display().to_string());
    match load_config_from(config, database).and_then(|c| {
        crate::mail_out::render::Templates::new(&c.mail)?.check()?;
        Ok(c)
    }) {
        Ok(_) => tracing::info!(
            config.file = %file,
            "reload: received SIGHUP; configuration {file} is valid, but nothing is reloaded \
             while running yet: restart to apply changes"
        ),
        Err(e) => tracing::warn!(
            config.file = %file,
            error = %format!("{e:#}"),
            "reload: received SIGHUP; configuration {file} has an error, still serving with the one read at start"
        ),
    }
}
