//! What every service binary does around its library: flags, configuration, logging,
//! signals and exit codes; each binary's `main` gives only its own flags.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, system_clock};
use crate::host::Listeners;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as JSON lines if asked.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() {
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
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

/// The flags every service binary has; `--config`, `--listen` and `--metrics-listen` read
/// `<PREFIX>_CONFIG`, `<PREFIX>_LISTEN` and `<PREFIX>_METRICS_LISTEN` (see [`parse`]).
#[derive(Debug, clap::Args)]
pub struct Common {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Prometheus metrics listen address.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Log as JSON lines.
    #[arg(long, env = "KYSO_LOG_JSON")]
    pub log_json: bool,
}

/// Parses the command line of a binary whose flags include [`Common`], the common flags
/// reading their environment variables under `env_prefix` (`KYSO_VERIFIER`).
pub fn parse<A: clap::Parser>(env_prefix: &str) -> A {
    let mut command = A::command();
    for (id, suffix) in [
        ("config", "CONFIG"),
        ("listen", "LISTEN"),
        ("metrics_listen", "METRICS_LISTEN"),
    ] {
        // Parsed once per process: the few bytes of the names live as long as it does.
        let name: &'static str = Box::leak(format!("{env_prefix}_{suffix}").into_boxed_str());
        command = command.mut_arg(id, |a| a.env(name));
    }
    A::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}

/// A service's configuration as its binary reads it: a TOML file or the defaults.
pub trait Service: DeserializeOwned + Default {
    /// The binary's name, which prefixes its error messages (`kyso-verifier`).
    const NAME: &'static str;
    /// The service's error.
    type Error: std::fmt::Display;
    /// `listen` and `metrics_listen`.
    fn addresses(&mut self) -> (&mut SocketAddr, &mut Option<SocketAddr>);
    /// Checks everything that can be checked before binding; every problem at once.
    fn check(&self) -> Result<(), Self::Error>;
}

/// The `main` of every service binary: logging, the configuration (file or defaults, then
/// the common flags, then `overrides` for the service's own flags), a wrong configuration
/// listed in full with exit code 2 before anything binds, then the listeners and `serve`
/// until Ctrl-C or SIGTERM. Errors print as `NAME: error`.
pub fn main<S, F, Fut>(common: Common, serve: F, overrides: impl FnOnce(&mut S)) -> ExitCode
where
    S: Service,
    F: FnOnce(S, Listeners, Clock, BoxFuture<'static, ()>) -> Fut,
    Fut: Future<Output = Result<(), S::Error>>,
{
    init_logging(common.log_json);
    let mut config = match &common.config {
        Some(p) => match crate::config::read_toml::<S>(p) {
            Ok(c) => c,
            Err(problem) => {
                eprintln!("{}: {}", S::NAME, crate::config::describe(&[problem]));
                return ExitCode::from(2);
            }
        },
        None => S::default(),
    };
    let (listen, metrics_listen) = config.addresses();
    if let Some(l) = common.listen {
        *listen = l;
    }
    if let Some(m) = common.metrics_listen {
        *metrics_listen = Some(m);
    }
    overrides(&mut config);
    if let Err(e) = config.check() {
        eprintln!("{}: {e}", S::NAME);
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the runtime: {e}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let (listen, metrics_listen) = config.addresses();
        let listeners = Listeners::bind(*listen, *metrics_listen).await?;
        serve(
            config,
            listeners,
            system_clock(),
            Box::pin(shutdown_signal()),
        )
        .await
        .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e}", S::NAME);
            ExitCode::FAILURE
        }
    }
}
