//! Running external programs (openssl) with a bounded wait.

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a one-shot openssl command may take before the harness kills it and fails the test.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Standard output as (lossy) UTF-8.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as (lossy) UTF-8.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics with the command, its status and its output unless it succeeded.
    #[track_caller]
    pub fn expect_success(self) -> Self {
        assert!(self.success(), "command failed: {self}");
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.status,
            self.stdout_str(),
            self.stderr_str()
        )
    }
}

/// Renders a command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, feeding it `stdin`, and kills it (then panics) if it takes longer
/// than `timeout`. Standard output and error are captured.
#[track_caller]
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let command = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e} (is openssl installed?)"));

    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            // A child that exits early closes the pipe: ignore the write error, the status tells.
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{command}` did not finish within {timeout:?}; killed");
            }
            Ok(None) => thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("waiting for `{command}`: {e}"),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Output {
        command,
        status,
        stdout,
        stderr,
    }
}

/// Runs `openssl ARGS...` (in the current directory) with [`COMMAND_TIMEOUT`].
#[track_caller]
pub fn openssl<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new("openssl").args(args), None, COMMAND_TIMEOUT)
}

/// Peak resident memory of this process so far, bytes (`VmHWM`): what a test that attacks an
/// in-process service reports and bounds.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/self/status")
        * 1024
}
