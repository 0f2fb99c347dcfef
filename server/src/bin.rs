//! What every service binary does around its library: logging and signals.

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

/// The tail every service binary shares: start the runtime, bind `listen`,
/// run `serve` on the listener until it returns, and turn the outcome into
/// the process exit code (errors printed as `NAME: error`).
pub fn run_service<Fut, E>(
    name: &str,
    listen: std::net::SocketAddr,
    serve: impl FnOnce(tokio::net::TcpListener) -> Fut,
) -> std::process::ExitCode
where
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("binding {listen}: {e}"))?;
        serve(listener).await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
