//! docs/RULES.md is the rule catalogue: every rule ID that the code and the docs cite (in
//! comments, refusal reasons, test names such as `..._A6`, error details) must be listed
//! there, so a reader can look up what a citation means and where else the rule is enforced.
//! When the regulations' digest is at hand (`$KYSO_SHARED_DIR/DOMAIN.md`, else
//! `../shared/DOMAIN.md` next to the workspace; a clone of the repository alone has none),
//! the catalogue lists exactly the IDs the digest defines. And every test the catalogue names
//! as showing a rule exists ([`missing_tests`]).
//!
//! What a rule ID is: a token (a maximal run of letters and digits; `_` and every other
//! character end it, so `refused_A6` and `rules_A1_A5_W2` cite A6, A1, A5 and W2) made of
//! one of the groups' letters and one digit 1-9. The digest numbers every group from 1 and
//! no group reaches 10; one digit past a group's end (A8) is still taken as a citation, to
//! be reported, while `P11`, `P256`, `X509`, `SHA1` or `0xA1` are not tokens of that shape.
//! Tokens of that shape that are something else are skipped ([`not_a_citation`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The digest's groups: V certificate status, I issuing, A authority, D documents,
/// W workflow, P appearance on the page, R records, K security, N national rules.
const GROUPS: &[char] = &['V', 'I', 'A', 'D', 'W', 'P', 'R', 'K', 'N'];

/// Files read, by extension: source, schema, migrations, docs, charts, scripts, test peers.
const EXTENSIONS: &[&str] = &[
    "rs", "proto", "sql", "md", "yaml", "yml", "tpl", "txt", "json", "sh", "py", "toml",
];

/// Directories never read: build output (`target/`, also `fuzz/target/`), caches, and hidden
/// directories (`.git`, the dev cluster's `.kyso-dev`).
const SKIPPED_DIRS: &[&str] = &["target", "__pycache__", "node_modules"];

/// The catalogue itself, relative to the workspace root: its IDs are the list, not citations.
const CATALOGUE: &str = "docs/RULES.md";

/// This file, whose examples (`A8`, `P256`, ...) are not citations either.
const THIS_FILE: &str = file!();

/// One citation: the ID and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Citation {
    id: String,
    file: String,
    line: usize,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// `token` is a group letter followed by one digit 1-9.
fn is_rule_id(token: &str) -> bool {
    let mut chars = token.chars();
    matches!(
        (chars.next(), chars.next(), chars.next()),
        (Some(g), Some('1'..='9'), None) if GROUPS.contains(&g)
    )
}

fn is_hex_pair(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Tokens shaped like a rule ID that are not citations, each with why:
/// - two hex digits joined by `:` to another pair: a byte of a fingerprint or key ID
///   (`F0:4B:A4:...`, `01:A2`);
/// - `V1`... after `Version::`: an ASN.1 version (`CmsVersion::V3`, `x509_cert::Version::V3`);
/// - `V4`, `V6` after `IpAddr::` or `SocketAddr::`: an IP version;
/// - `V2`... ending an upper-case constant name: that thing's version
///   (`SIGNING_CERTIFICATE_V2`, the ESS attribute of RFC 5035);
/// - `P1`-`P6` followed by a `\n` escape, or on a line about PPM or a magic number: the
///   netpbm image header that test peers read and write;
/// - `A4` on a line about a page, paper or dpi: the paper size.
fn not_a_citation(line: &str, start: usize, token: &str) -> bool {
    let before = &line[..start];
    let after = &line[start + token.len()..];
    if is_hex_pair(token) {
        let joined_before = before.strip_suffix(':').is_some_and(|b| {
            b.len() >= 2 && b.is_char_boundary(b.len() - 2) && is_hex_pair(&b[b.len() - 2..])
        });
        let joined_after = after
            .strip_prefix(':')
            .is_some_and(|a| a.len() >= 2 && a.is_char_boundary(2) && is_hex_pair(&a[..2]));
        if joined_before || joined_after {
            return true;
        }
    }
    if token.starts_with('V') {
        if before.ends_with("Version::")
            || before.ends_with("IpAddr::")
            || before.ends_with("SocketAddr::")
        {
            return true;
        }
        if let Some(ident) = before.strip_suffix('_') {
            let word: String = ident
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                .collect();
            if word.len() > 1 && !is_rule_id(&word.chars().rev().collect::<String>()) {
                return true;
            }
        }
    }
    let lower = line.to_ascii_lowercase();
    if token.starts_with('P')
        && (after.starts_with("\\n") || lower.contains("ppm") || lower.contains("magic"))
    {
        return true;
    }
    token == "A4" && (lower.contains("page") || lower.contains("paper") || lower.contains("dpi"))
}

/// The rule IDs cited in `text` (the contents of `file`), in order.
fn citations(file: &str, text: &str) -> Vec<Citation> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut token_start = None;
        // A sentinel space ends the last token.
        for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
            if c.is_alphanumeric() {
                token_start.get_or_insert(i);
                continue;
            }
            let Some(start) = token_start.take() else {
                continue;
            };
            let token = &line[start..i];
            if is_rule_id(token) && !not_a_citation(line, start, token) {
                out.push(Citation {
                    id: token.to_owned(),
                    file: file.to_owned(),
                    line: n + 1,
                });
            }
        }
    }
    out
}

/// Every file the walk reads, relative to `root` with `/` separators, sorted.
fn files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().unwrap();
            let path = entry.path();
            if kind.is_dir() {
                if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_str()) {
                    walk(root, &path, out);
                }
            } else if kind.is_file()
                && path
                    .extension()
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().as_ref()))
            {
                let rel = path.strip_prefix(root).unwrap();
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if rel != CATALOGUE && rel != THIS_FILE.replace('\\', "/") {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The IDs a rule list defines: lines `- **A6** ...` (the digest's form and the catalogue's).
/// An ID defined twice is an error.
fn defined(text: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("- **") else {
            continue;
        };
        let Some((id, _)) = rest.split_once("**") else {
            continue;
        };
        if is_rule_id(id) && !out.insert(id.to_owned()) {
            return Err(format!("{id} is listed twice"));
        }
    }
    Ok(out)
}

/// The first citation of each ID that `listed` does not have.
fn unlisted(cited: &[Citation], listed: &BTreeSet<String>) -> BTreeMap<String, Citation> {
    let mut out = BTreeMap::new();
    for c in cited {
        if !listed.contains(&c.id) {
            out.entry(c.id.clone()).or_insert_with(|| c.clone());
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The digest, if this machine has it.
fn domain() -> Option<(PathBuf, String)> {
    let path = match std::env::var_os("KYSO_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("DOMAIN.md"),
        None => workspace_root().join("../shared/DOMAIN.md"),
    };
    let text = std::fs::read_to_string(&path).ok()?;
    Some((path, text))
}

/// The tests the catalogue names that do not exist: `binary::module::function` must be a
/// `fn function` in `tests/tests/binary/module.rs` (or under `tests/tests/binary/module/`),
/// `crate: module::function` (a unit test) a `fn function` somewhere in the workspace's `.rs`
/// files. A test moved or renamed shows here, so the catalogue keeps naming real tests.
fn missing_tests(root: &Path, catalogue: &str, sources: &[(String, String)]) -> Vec<String> {
    let defines = |text: &str, function: &str| {
        text.match_indices(&format!("fn {function}")).any(|(i, m)| {
            !text[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        })
    };
    let mut out = Vec::new();
    // Every other backquote opens a span.
    for span in catalogue.split('`').skip(1).step_by(2) {
        if let Some((krate, path)) = span.split_once(": ") {
            let Some((_, function)) = path.rsplit_once("::") else {
                continue;
            };
            if krate.starts_with("kyso-") && !sources.iter().any(|(_, t)| defines(t, function)) {
                out.push(span.to_owned());
            }
            continue;
        }
        let parts: Vec<&str> = span.split("::").collect();
        let [binary, module, function] = parts[..] else {
            continue;
        };
        let dir = root.join("tests/tests").join(binary);
        if !dir.join("main.rs").is_file() {
            continue;
        }
        let prefix = format!("tests/tests/{binary}/{module}");
        let found = sources.iter().any(|(file, text)| {
            (file == &format!("{prefix}.rs") || file.starts_with(&format!("{prefix}/")))
                && defines(text, function)
        });
        if !found {
            out.push(span.to_owned());
        }
    }
    out
}

#[test]
fn extraction_finds_citations_and_skips_what_is_not_one() {
    let text = "\
// A6: refused; see rules_A1_A5_W2_and_more and I3.\n\
fn refused_A8() {} // P256 P11_KIT X509 SHA1 0xA1 a6 AA6 A10\n\
\"F0:4B:A4:B4\" parse_hex_id(\"01:A2\") CmsVersion::V3 SIGNING_CERTIFICATE_V2\n\
b\"P6\\n2 1\" one A4 page, N7\n\
V1-V5 (D1–D6) `V2`";
    let got: Vec<(String, usize)> = citations("x.rs", text)
        .into_iter()
        .map(|c| (c.id, c.line))
        .collect();
    let want: Vec<(String, usize)> = [
        ("A6", 1),
        ("A1", 1),
        ("A5", 1),
        ("W2", 1),
        ("I3", 1),
        ("A8", 2),
        ("N7", 4),
        ("V1", 5),
        ("V5", 5),
        ("D1", 5),
        ("D6", 5),
        ("V2", 5),
    ]
    .iter()
    .map(|(id, n)| ((*id).to_owned(), *n))
    .collect();
    assert_eq!(got, want);

    // An ID cited but not listed is reported with the place of its first citation.
    let listed = defined("- **A6** x\n  - **A1** y\n- **A5** z\n- **W2**\n- **I3**\n").unwrap();
    let missing = unlisted(&citations("x.rs", text), &listed);
    let names: Vec<&str> = missing.keys().map(String::as_str).collect();
    assert_eq!(names, ["A8", "D1", "D6", "N7", "V1", "V2", "V5"]);
    assert_eq!(
        missing["A8"],
        Citation {
            id: "A8".into(),
            file: "x.rs".into(),
            line: 2
        }
    );
    assert!(defined("- **A6** x\n- **A6** again\n").is_err());

    // A test the catalogue names must exist.
    let root = workspace_root();
    let sources = [(THIS_FILE.to_owned(), read(&root.join(THIS_FILE)))];
    let catalogue = "`platform::rules::extraction_finds_citations_and_skips_what_is_not_one`, \
        `platform::rules::extraction_finds`, `kyso-tests: rules::missing_tests`, \
        `kyso-tests: rules::gone`, `Verifier::verify_cms`, `kyso signer keygen`";
    assert_eq!(
        missing_tests(&root, catalogue, &sources),
        [
            "platform::rules::extraction_finds",
            "kyso-tests: rules::gone"
        ]
    );
}

#[test]
fn every_cited_rule_id_is_in_the_catalogue() {
    let root = workspace_root();
    let catalogue = read(&root.join(CATALOGUE));
    let listed = defined(&catalogue).unwrap_or_else(|e| panic!("{CATALOGUE}: {e}"));
    assert!(
        !listed.is_empty(),
        "{CATALOGUE} lists no rule (`- **A6** ...`)"
    );

    let mut cited = Vec::new();
    let mut sources = Vec::new();
    for rel in files(&root) {
        // Not UTF-8 (none should be): nothing a reader would take for a citation.
        if let Ok(text) = std::fs::read_to_string(root.join(&rel)) {
            cited.extend(citations(&rel, &text));
            if rel.ends_with(".rs") {
                sources.push((rel, text));
            }
        }
    }
    assert!(
        cited.len() > 100,
        "only {} citations found: is the walk reading the workspace at {}?",
        cited.len(),
        root.display()
    );
    let missing = unlisted(&cited, &listed);
    assert!(
        missing.is_empty(),
        "rule IDs cited but not listed in {CATALOGUE} (first citation shown):\n{}",
        missing
            .values()
            .map(|c| format!("  {} at {}:{}", c.id, c.file, c.line))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stale = missing_tests(&root, &catalogue, &sources);
    assert!(
        stale.is_empty(),
        "{CATALOGUE} names tests that do not exist (moved or renamed? give their new names):\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn the_catalogue_lists_exactly_the_digests_rules() {
    let root = workspace_root();
    let listed = defined(&read(&root.join(CATALOGUE))).unwrap();
    let Some((path, text)) = domain() else {
        eprintln!(
            "skipped: no DOMAIN.md (set KYSO_SHARED_DIR to the folder that holds it); \
             the catalogue is checked against the citations only"
        );
        return;
    };
    let digest = defined(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!digest.is_empty(), "{} defines no rule", path.display());
    let extra: Vec<&String> = listed.difference(&digest).collect();
    let absent: Vec<&String> = digest.difference(&listed).collect();
    assert!(
        extra.is_empty() && absent.is_empty(),
        "{CATALOGUE} against {}: listed but not defined there {extra:?}; defined there but not listed {absent:?}",
        path.display()
    );
}
