//! A throwaway PostgreSQL cluster for the registry's production backend.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{COMMAND_TIMEOUT, run};

/// A PostgreSQL cluster of its own (Debian `postgresql`): initdb in a temporary directory,
/// run as the `postgres` user when the tests run as root (PostgreSQL refuses root), on a
/// loopback port, with one database `registry` owned by `kyso`; stopped on drop, so nothing
/// outlives the test.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    as_user: Option<&'static str>,
    /// `postgres://kyso@127.0.0.1:PORT/registry`
    pub url: String,
}

/// A PostgreSQL program: `$KYSO_PG_BIN/NAME`, else the newest `/usr/lib/postgresql/*/bin`,
/// else from PATH.
fn pg_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("KYSO_PG_BIN") {
        return Path::new(&dir).join(name);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin.join(name),
        None => name.into(),
    }
}

impl PgCluster {
    /// initdb, start on a free loopback port, create the `registry` database. Blocking: call
    /// it through `spawn_blocking` from async tests.
    pub fn start() -> PgCluster {
        let dir = tempfile::Builder::new()
            .prefix("kyso-pg-")
            .tempdir()
            .expect("temporary directory");
        use std::os::unix::fs::MetadataExt;
        let uid = dir.path().metadata().expect("metadata").uid();
        let as_user = (uid == 0).then_some("postgres");
        if let Some(u) = as_user {
            run(
                Command::new("chown").arg(format!("{u}:")).arg(dir.path()),
                None,
                COMMAND_TIMEOUT,
            )
            .expect_success();
        }
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = PgCluster {
            url: format!("postgres://kyso@127.0.0.1:{port}/registry"),
            dir,
            as_user,
        };
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "kyso".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            pg.dir.path().display()
        );
        let log = pg.dir.path().join("log");
        pg.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-o".as_ref(),
                opts.as_ref(),
                "start".as_ref(),
            ],
        );
        let port = port.to_string();
        pg.run(
            "createdb",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "kyso".as_ref(),
                "registry".as_ref(),
            ],
        );
        pg
    }

    fn command(&self, program: &str, args: &[&OsStr]) -> Command {
        let mut cmd = match self.as_user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(pg_bin(program));
                c
            }
            None => Command::new(pg_bin(program)),
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }

    fn run(&self, program: &str, args: &[&OsStr]) {
        run(&mut self.command(program, args), None, COMMAND_TIMEOUT).expect_success();
    }
}

impl PgCluster {
    /// Stops the server at once (`pg_ctl -m immediate`), as a database that went away would;
    /// dropping the cluster afterwards only removes its files. Blocking.
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        let _ = run(
            &mut self.command(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
            ),
            None,
            COMMAND_TIMEOUT,
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
