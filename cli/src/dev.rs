//! `kyso dev up|down`: the local cluster on embedded defaults, from a checkout.
//!
//! The cluster is assembled by `scripts/dev.sh` (packages, dev PKI, SoftHSM2 behind
//! `p11-kit server`, OCSP/CRL servers, the three services, a sample province); this command
//! finds the checkout and runs it, so `kyso dev up` and the README's first command are the
//! same thing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::CliError;

/// Start or stop the local cluster.
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Build, start everything, sign a sample document twice and verify it.
    Up,
    /// Stop everything `up` started.
    Down,
}

/// The checkout: the current directory or one of its parents, else the one this binary was
/// built in (`target/<profile>/kyso`).
fn checkout() -> Option<PathBuf> {
    let has_script = |d: &Path| d.join("scripts/dev.sh").is_file();
    if let Ok(cwd) = std::env::current_dir()
        && let Some(d) = cwd.ancestors().find(|d| has_script(d))
    {
        return Some(d.to_path_buf());
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .find(|d| has_script(d))
        .map(Path::to_path_buf)
}

/// Runs `scripts/dev.sh up|down`.
pub fn run(cmd: DevCommand) -> Result<ExitCode, CliError> {
    let root = checkout().ok_or_else(|| {
        CliError::Usage("kyso dev needs a kyso checkout (scripts/dev.sh); run it from one".into())
    })?;
    let verb = match cmd {
        DevCommand::Up => "up",
        DevCommand::Down => "down",
    };
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/dev.sh"))
        .arg(verb)
        .current_dir(&root)
        .status()
        .map_err(|source| CliError::File {
            path: root.join("scripts/dev.sh").display().to_string(),
            source,
        })?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
