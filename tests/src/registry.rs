//! The registry in-process on a loopback port, and `kyso registry` against it.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_registry::{Config, Listeners, serve, system_clock};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::hsm::workspace_bin;

/// The mail domain of the sample province's registry (I1).
pub const DOMAIN: &str = "khanhhoa.gov.vn";

/// A registry served in-process; [`Registry::stop`] shuts it down and checks it stopped cleanly.
#[derive(Debug)]
pub struct Registry {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<kyso_registry::Result<()>>>,
}

impl Registry {
    /// On a fresh SQLite file of its own.
    pub async fn start() -> Registry {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite:{}", dir.path().join("registry.db").display());
        Self::start_in(dir, &url).await
    }

    /// Over `database_url` (a PostgreSQL cluster, or a SQLite file that outlives a restart).
    pub async fn start_with(database_url: &str) -> Registry {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::start_in(dir, database_url).await
    }

    async fn start_in(dir: tempfile::TempDir, database_url: &str) -> Registry {
        Self::start_for(dir, database_url, DOMAIN).await
    }

    /// A province's registry whose organisations' mail is under `mail_domain` (I1).
    pub async fn start_for_domain(mail_domain: &str) -> Registry {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite:{}", dir.path().join("registry.db").display());
        Self::start_for(dir, &url, mail_domain).await
    }

    async fn start_for(dir: tempfile::TempDir, database_url: &str, mail_domain: &str) -> Registry {
        let config = Config {
            database_url: database_url.into(),
            mail_domain: mail_domain.into(),
            access: kyso_registry::config::AccessSection {
                development_plaintext: true,
                ..kyso_registry::config::AccessSection::default()
            },
            ..Config::default()
        };
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = grpc.local_addr().expect("local address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            Listeners {
                grpc,
                metrics: None,
            },
            system_clock(),
            async move {
                let _ = rx.await;
            },
        ));
        // The listener is bound already; wait while the database migrates.
        let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("url");
        for _ in 0..200 {
            if ep.connect().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Registry {
            addr,
            _dir: dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A gRPC client of it.
    pub async fn client(&self) -> RegistryClient<Channel> {
        let ep = tonic::transport::Endpoint::from_shared(self.url())
            .expect("url")
            .timeout(Duration::from_secs(30));
        RegistryClient::new(
            ep.connect()
                .await
                .expect("the registry accepts connections"),
        )
    }

    /// Stops serving; panics if the registry ended with an error.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("the registry stops")
                .expect("the registry task")
                .expect("the registry ends cleanly");
        }
    }

    /// `kyso registry --server URL <args>` with `input` on stdin: exit code, stdout as JSON
    /// (or as a string when it is not JSON), stderr.
    pub async fn kyso(&self, args: &[&str], input: &Value) -> (i32, Value, String) {
        let mut cmd = tokio::process::Command::new(workspace_bin("kyso"));
        cmd.arg("registry")
            .arg("--server")
            .arg(self.url())
            .args(args);
        run_with_stdin(cmd, input).await
    }

    /// As [`Registry::kyso`], for a call that must succeed; its JSON.
    pub async fn ok(&self, args: &[&str], input: Value) -> Value {
        let (code, out, err) = self.kyso(args, &input).await;
        assert_eq!(code, 0, "kyso registry {args:?}: {out} {err}");
        out
    }
}

/// Runs `cmd` with `input` as JSON on stdin: exit code, stdout (JSON, else a string), stderr.
pub async fn run_with_stdin(
    mut cmd: tokio::process::Command,
    input: &Value,
) -> (i32, Value, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().await.expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    (
        out.status.code().unwrap_or(-1),
        value,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
