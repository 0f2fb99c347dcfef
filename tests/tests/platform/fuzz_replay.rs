//! The fuzz corpora and crash regressions, replayed as ordinary tests on the stable toolchain:
//! every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through its
//! target's function in `kyso-fuzz-targets` (the same code the cargo-fuzz binaries run). No
//! panic, and each input answered within a bound generous for a debug build on a busy machine.
//! See docs/FUZZING.md.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kyso_fuzz_targets::TARGETS;

/// Per input, debug build, 2 cores shared with other tests: the fuzzed builds answer in
/// milliseconds, so this only trips on a real blow-up.
const PER_INPUT: Duration = Duration::from_secs(2);
/// The whole replay.
const TOTAL: Duration = Duration::from_secs(60);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

#[test]
fn fuzz_replay_corpora_and_regressions() {
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, target) in TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(name));
        if corpus.is_empty() {
            failures.push(format!(
                "fuzz/corpus/{name}/ is missing or empty: every target needs a seed corpus"
            ));
        }
        let regressions = inputs(&fuzz_dir().join("regressions").join(name));
        for path in corpus.iter().chain(&regressions) {
            let data = match fs::read(path) {
                Ok(data) => data,
                // A campaign running alongside replaces inputs by smaller ones.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("read {}: {e}", path.display()),
            };
            let one = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| target(&data)));
            let took = one.elapsed();
            count += 1;
            let shown = path.strip_prefix(fuzz_dir()).unwrap_or(path).display();
            if outcome.is_err() {
                failures.push(format!("{name}: fuzz/{shown} panics"));
            } else if took > PER_INPUT {
                failures.push(format!(
                    "{name}: fuzz/{shown} took {took:?} (bound {PER_INPUT:?})"
                ));
            }
        }
    }
    let took = started.elapsed();
    eprintln!("replayed {count} fuzz inputs in {took:?}");
    assert!(took < TOTAL, "the replay took {took:?} (bound {TOTAL:?})");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every cargo-fuzz binary is a target of the replay (so none runs without a corpus), and the
/// other way round.
#[test]
fn fuzz_binaries_match_the_replayed_targets() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|section| {
            let line = section
                .lines()
                .find(|l| l.trim_start().starts_with("name"))?;
            line.split('"').nth(1)
        })
        .collect();
    bins.sort_unstable();
    let mut names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(bins, names, "fuzz/Cargo.toml [[bin]] names against TARGETS");
    for name in names {
        let wrapper = fuzz_dir().join(format!("fuzz_targets/{name}.rs"));
        let text = fs::read_to_string(&wrapper).expect("the cargo-fuzz wrapper");
        assert!(
            text.contains(&format!("kyso_fuzz_targets::{name}(")),
            "{} must call kyso_fuzz_targets::{name}",
            wrapper.display()
        );
    }
}
