//! Readiness follows the volumes: with the audit log and the document store on a small tmpfs
//! that fills up, the signer goes NOT_SERVING (gRPC health) and `/readyz` 503, requests
//! fail cleanly (UNAVAILABLE, no signature returned, the log intact), and once space is
//! freed it is ready again and signs, without a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_signer::audit::verify_log;
use kyso_tests::cluster::Cluster;
use kyso_tests::pdf_peers::{Peers, SampleKind};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::sign::http_status;

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` when this process may not mount (not root, no CAP_SYS_ADMIN).
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        if out.status.success() {
            Some(Tmpfs(at.to_path_buf()))
        } else {
            eprintln!(
                "SKIPPED: mounting a tmpfs is not permitted here ({}): the full-volume \
                 readiness test needs root",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the volume of `dir` with one file until the file system refuses.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5a_u8; 64 << 10];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
    let _ = f.sync_all();
    path
}

async fn readyz(c: &Cluster) -> u16 {
    http_status(c.metrics_addr().expect("metrics address"), "/readyz").await
}

async fn wait_readyz(c: &Cluster, want: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = readyz(c).await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz stayed {got}, wanted {want}: {}",
            c.signer_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_volume_makes_the_signer_not_ready_until_space_is_freed() {
    let mut c = Cluster::start().await;
    let vol = c.dir.path().join("vol");
    let Some(_tmpfs) = Tmpfs::mount(&vol, "8m") else {
        return;
    };
    c.kill_signer();
    c.data_dir = Some(vol.clone());
    c.start_signer().await;
    c.wait_health(ServingStatus::Serving, Duration::from_secs(20))
        .await;
    wait_readyz(&c, 200).await;

    let sample = Peers::get().sample(SampleKind::Decision);
    let documents = || async {
        DocumentsClient::connect(format!("http://{}", c.addr))
            .await
            .unwrap()
            .max_decoding_message_size(64 << 20)
    };
    let issue = |n: &str, key: &str| crate::retry::issue_request(&c, &sample.bytes, n, key);
    documents()
        .await
        .issue_outgoing(issue("600/QĐ-UBND", "full-600"))
        .await
        .unwrap();

    // The volume fills up: not ready, on gRPC health and /readyz.
    let filler = fill(&vol);
    c.wait_health(ServingStatus::NotServing, Duration::from_secs(20))
        .await;
    wait_readyz(&c, 503).await;
    // Requests fail cleanly: no signature returned, nothing half-written.
    let err = documents()
        .await
        .issue_outgoing(issue("601/QĐ-UBND", "full-601"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = c
        .client()
        .await
        .sign_cms(c.approval(b"during the full volume"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    // Space freed: ready again, without a restart, and signing.
    std::fs::remove_file(&filler).unwrap();
    c.wait_health(ServingStatus::Serving, Duration::from_secs(20))
        .await;
    wait_readyz(&c, 200).await;
    let again = documents()
        .await
        .issue_outgoing(issue("601/QĐ-UBND", "full-601"))
        .await
        .unwrap_or_else(|s| panic!("after freeing space: {s:?}\n{}", c.signer_log()))
        .into_inner();
    assert_eq!(again.audit.len(), 2);
    c.client()
        .await
        .sign_cms(c.approval(b"after the full volume"))
        .await
        .unwrap();
    // The log is one unbroken chain through the failure.
    let report = verify_log(&c.audit_path(), &[]).unwrap();
    assert!(report.intact(), "{report:?}");
    c.kill_signer();
}
