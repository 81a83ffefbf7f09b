//! `sluice`: parse flags, load the config, start the broker, stop on SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use sluice::config::Cli;
use sluice::config::Config;
use tracing_subscriber::EnvFilter;

/// Survives requests that claim absurd array lengths (see `sluice::alloc`).
#[global_allocator]
static ALLOCATOR: sluice::alloc::Guarded = sluice::alloc::Guarded;

fn main() -> ExitCode {
    // Before any other thread starts (see its docs).
    sluice::alloc::keep_large_blocks();
    sluice::alloc::small_pages();
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = match EnvFilter::try_new(&config.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sluice: log_level {:?}: {e}", config.log_level);
            return ExitCode::from(2);
        }
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .init();
    raise_open_file_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A broker that cannot start (a port taken, the data directory in use)
    // exits with 2, like a bad setting.
    let broker = match runtime.block_on(sluice::Broker::start(config)) {
        Ok(broker) => broker,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(broker)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard limit: each connection
/// holds a descriptor, and each partition one per segment file in use.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            None
        } else {
            let from = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            (libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0).then_some(from)
        }
    };
    match raised {
        Some(from) => tracing::info!(from, to = limit.rlim_max, "raised the open-file limit"),
        None => tracing::debug!(limit = limit.rlim_cur, "open-file limit"),
    }
}

async fn run(broker: sluice::Broker) -> sluice::Result<()> {
    wait_for_signal().await;
    tracing::info!("stopping");
    broker.shutdown().await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
