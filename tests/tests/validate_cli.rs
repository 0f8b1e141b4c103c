//! `esb validate` as an operator or a CI pipeline runs it: the real binary, as a process.
//! Every case under `tests/fixtures/invalid-units/` is a configuration directory with one
//! broken unit and an `expect.toml` naming the unit, file, line (and column), a fragment of
//! the message and of the hint; the report must carry all of them on one line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The `esb` binary, built first by the shared harness (which keeps cargo's own variables
/// out of the nested build, so it does not invalidate the outer one).
fn esb() -> &'static Path {
    e2e::esb::esb_bin()
}

fn validate(conf: &Path, json: bool) -> Output {
    let mut cmd = Command::new(esb());
    cmd.arg("validate").arg("--conf").arg(conf);
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("cannot run esb")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What one fixture expects (`expect.toml`).
#[derive(Debug)]
struct Expect {
    case: String,
    conf: PathBuf,
    unit: String,
    file: String,
    line: i64,
    col: Option<i64>,
    message: String,
    hint: Option<String>,
}

impl Expect {
    /// How the location starts in the report: `.../<unit>/<file>:<line>:[<col>:]`.
    fn location(&self) -> String {
        let mut loc = format!("/{}/{}:{}:", self.unit, self.file, self.line);
        if let Some(col) = self.col {
            loc.push_str(&format!("{col}: "));
        }
        loc
    }
}

fn fixtures() -> Vec<Expect> {
    let dir = workspace().join("tests/fixtures/invalid-units");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
        .into_iter()
        .map(|case| {
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(case.join("expect.toml"))
                .unwrap_or_else(|e| panic!("{name}/expect.toml: {e}"));
            let t: toml::Table = text
                .parse()
                .unwrap_or_else(|e| panic!("{name}/expect.toml: {e}"));
            let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let i = |k: &str| t.get(k).and_then(|v| v.as_integer());
            let known = ["unit", "file", "line", "col", "message", "hint"];
            if let Some(k) = t.keys().find(|k| !known.contains(&k.as_str())) {
                panic!("{name}/expect.toml: unknown key `{k}`");
            }
            fn need<T>(case: &str, k: &str) -> T {
                panic!("{case}/expect.toml needs `{k}`")
            }
            Expect {
                conf: case.join("conf"),
                unit: s("unit").unwrap_or_else(|| need(&name, "unit")),
                file: s("file").unwrap_or_else(|| need(&name, "file")),
                line: i("line").unwrap_or_else(|| need(&name, "line")),
                col: i("col"),
                message: s("message").unwrap_or_else(|| need(&name, "message")),
                hint: s("hint"),
                case: name,
            }
        })
        .collect()
}

/// The error lines printed under `✗ <unit> (...)`, or `None` if the unit has no such header.
fn error_block<'a>(report: &'a str, unit: &str) -> Option<Vec<&'a str>> {
    let header = format!("✗ {unit} (");
    let mut lines = report.lines().skip_while(|l| !l.starts_with(&header));
    lines.next()?;
    Some(lines.take_while(|l| l.starts_with("    ")).collect())
}

/// Why the report of `e`'s case does not match, if it does not.
fn mismatch(e: &Expect, out: &Output) -> Option<String> {
    let report = stdout(out);
    if out.status.code() != Some(1) {
        return Some(format!("exit code {:?}, expected 1", out.status.code()));
    }
    let Some(block) = error_block(&report, &e.unit) else {
        return Some(format!("no `✗ {}` line", e.unit));
    };
    if block.len() != 1 {
        return Some(format!(
            "{} errors for {}, the fixture should break one thing",
            block.len(),
            e.unit
        ));
    }
    let line = block[0];
    let loc = e.location();
    if !line.contains(&loc) {
        return Some(format!("location `{loc}` not in `{line}`"));
    }
    if !line.contains(&e.message) {
        return Some(format!("message `{}` not in `{line}`", e.message));
    }
    if let Some(hint) = &e.hint {
        if !line.contains(hint.as_str()) {
            return Some(format!("hint `{hint}` not in `{line}`"));
        }
    }
    // Any other unit of the case is valid (e.g. the owner in a cross-unit conflict).
    let others: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with('✗') && !l.starts_with(&format!("✗ {} (", e.unit)))
        .collect();
    if !others.is_empty() {
        return Some(format!("other units failed too: {others:?}"));
    }
    None
}

#[test]
fn every_invalid_fixture_is_reported_with_location() {
    let cases = fixtures();
    assert!(
        cases.len() >= 28,
        "only {} invalid-unit fixtures",
        cases.len()
    );
    let mut failures = Vec::new();
    for e in &cases {
        assert!(
            e.conf.join("deployments").join(&e.unit).is_dir(),
            "{}: unit directory {} missing",
            e.case,
            e.unit
        );
        let out = validate(&e.conf, false);
        if let Some(why) = mismatch(e, &out) {
            failures.push(format!(
                "{}: {why}\n--- stdout:\n{}--- stderr:\n{}",
                e.case,
                stdout(&out),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures mismatched:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn sample_conf_validates() {
    let out = validate(&workspace().join("conf"), false);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    for unit in ["default", "internal-services", "external-services"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("✓ {unit} ("))),
            "no ✓ for {unit}:\n{report}"
        );
    }
    assert!(!report.contains('✗'), "{report}");
}

#[test]
fn validate_json_output_parses() {
    let sample = validate(&workspace().join("conf"), true);
    let v: serde_json::Value = serde_json::from_slice(&sample.stdout).expect("JSON report");
    assert_eq!(v["root_errors"].as_array().map(Vec::len), Some(0), "{v}");
    assert!(v["units"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["errors"].as_array().is_some_and(Vec::is_empty) && u["hash"].is_string()));

    for e in fixtures() {
        let out = validate(&e.conf, true);
        assert_eq!(out.status.code(), Some(1), "{}", e.case);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|err| panic!("{}: not JSON ({err}): {}", e.case, stdout(&out)));
        let unit = v["units"]
            .as_array()
            .and_then(|us| us.iter().find(|u| u["name"] == e.unit.as_str()))
            .unwrap_or_else(|| panic!("{}: no unit {} in {v}", e.case, e.unit));
        let err = &unit["errors"][0];
        let file = format!("/{}/{}", e.unit, e.file);
        assert!(
            err["file"].as_str().is_some_and(|f| f.ends_with(&file)),
            "{}: {err}",
            e.case
        );
        assert_eq!(err["line"].as_i64(), Some(e.line), "{}: {err}", e.case);
        if let Some(col) = e.col {
            assert_eq!(err["col"].as_i64(), Some(col), "{}: {err}", e.case);
        }
        assert!(
            err["message"]
                .as_str()
                .is_some_and(|m| m.contains(&e.message)),
            "{}: {err}",
            e.case
        );
        if let Some(hint) = &e.hint {
            assert!(
                err["hint"]
                    .as_str()
                    .is_some_and(|h| h.contains(hint.as_str())),
                "{}: hint `{hint}` not in the `hint` field: {err}",
                e.case
            );
        }
    }
}

const ROOT: &str = r#"
[management]
bind = "127.0.0.1:19900"

[hot_deploy]
watch = false

[[transport]]
name = "http-a"
bind = "127.0.0.1:18280"

[[transport]]
name = "http-b"
bind = "127.0.0.1:18281"
"#;

/// Three mistakes in three different elements, found by validation.
const THREE_REFERENCE_ERRORS: &str = r#"[[proxy]]
name = "orders"
path = "/orders"
endpoint = "orders-backnd"

[[endpoint]]
name = "orders-backend"
addresses = ["ftp://127.0.0.1:21"]

[[sequence]]
name = "log-it"
steps = [{ log = "${hedaer.x}" }]
"#;

/// Three mistakes in three different elements, found while parsing.
const THREE_PARSE_ERRORS: &str = r#"[[proxy]]
name = "orders"
path = "/orders"
endpint = "backend"

[[endpoint]]
name = "backend"
addresses = ["http://127.0.0.1:9000"]
timeout = "soon"

[[task]]
name = "tick"
sequence = "tick-log"
"#;

#[test]
fn three_independent_errors_are_all_reported() {
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(conf.path().join("esb.toml"), ROOT).unwrap();
    for (unit, text) in [
        ("references", THREE_REFERENCE_ERRORS),
        ("parsing", THREE_PARSE_ERRORS),
    ] {
        let dir = conf.path().join("deployments").join(unit);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("unit.toml"), text).unwrap();
    }
    let out = validate(conf.path(), false);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    for (unit, expected) in [
        (
            "references",
            [
                ("unit.toml:4:12: ", "endpoint \"orders-backnd\" not found"),
                ("unit.toml:8:14: ", "has scheme \"ftp\""),
                ("unit.toml:12:10: ", "unknown placeholder ${hedaer.x}"),
            ],
        ),
        (
            "parsing",
            [
                ("unit.toml:4:1: ", "unknown field `endpint`"),
                ("unit.toml:9:11: ", "invalid duration \"soon\""),
                ("unit.toml:11:1: ", "missing field `every`"),
            ],
        ),
    ] {
        assert!(
            report.contains(&format!("✗ {unit} (3 errors)")),
            "{unit}:\n{report}"
        );
        let block = error_block(&report, unit).unwrap();
        assert_eq!(block.len(), 3, "{unit}:\n{report}");
        for (loc, msg) in expected {
            assert!(
                block.iter().any(|l| l.contains(loc) && l.contains(msg)),
                "{unit}: no `{loc}` … `{msg}` in:\n{report}"
            );
        }
    }
}
