//! Deployment reports for people: outcomes of load/reload/unload/deploy/rollback (revision,
//! what changed, how long it took, or every error with file:line:col), validations, diffs,
//! revision history, warm restarts and binary upgrades. Each reads the answer into the
//! protocol's type ([`Outcome`], [`Validation`], [`DiffResult`], [`HistoryEntry`],
//! [`RestartOutcome`], [`UpgradeOutcome`]); the JSON is kept as the `--json` result.

use deployments::diff::UnitDiff;
use deployments::protocol::outcome::{
    DiffResult, HistoryEntry, RestartOutcome, UpgradeOutcome, Validation,
};
use deployments::protocol::Outcome;
use deployments::Diagnostic;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::present::output::{
    ago, cell, compact, millis, short_hash, timestamp, Block, Line, Output, Span, Table, Tone,
};

/// `v` as the protocol type `T`, if it is one.
fn typed<T: DeserializeOwned>(v: &Value) -> Option<T> {
    T::deserialize(v).ok()
}

/// The diagnostic `v` is, if it is one.
pub(crate) fn diagnostic(v: &Value) -> Option<Diagnostic> {
    typed(v)
}

/// A diagnostic as `file:line:col: element: message; hint`, or the value on one line.
fn diag_text(d: &Value) -> String {
    match diagnostic(d) {
        Some(diag) => diag.to_string(),
        None => compact(d, 200),
    }
}

pub(crate) fn diag_span(d: &Value) -> Span {
    Span::new(diag_text(d), Tone::Bad)
}

/// Every error on its own line, indented.
pub(crate) fn errors_lines(errors: &[Diagnostic]) -> Vec<Line> {
    errors
        .iter()
        .map(|e| vec![Span::plain("    "), Span::new(e.to_string(), Tone::Bad)])
        .collect()
}

/// Lines of a unit diff: `+`, `-`, `~` per element (toned), as the diff displays them.
pub fn diff_lines(diff: &UnitDiff, indent: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for c in &diff.changes {
        let tone = match c.change {
            deployments::diff::ChangeKind::Added => Tone::Good,
            deployments::diff::ChangeKind::Removed => Tone::Bad,
            deployments::diff::ChangeKind::Changed => Tone::Warn,
        };
        let text = c.to_string();
        let mut rows = text.lines();
        let first = rows.next().unwrap_or_default();
        let (sign, rest) = first.split_at(first.chars().next().map_or(0, char::len_utf8));
        lines.push(vec![
            Span::plain(indent),
            Span::new(sign, tone),
            Span::plain(rest),
        ]);
        lines.extend(rows.map(|r| vec![Span::plain(format!("{indent}{r}"))]));
    }
    lines
}

/// True when a deployment result is a failure: a rejected outcome, or something that is no
/// outcome and carries errors.
pub fn outcome_failed(v: &Value) -> bool {
    match typed::<Outcome>(v) {
        Some(o) => o.is_rejected(),
        None => !untyped_errors(v).is_empty(),
    }
}

/// The `errors` of a value that is not a protocol outcome.
fn untyped_errors(v: &Value) -> Vec<Value> {
    #[derive(serde::Deserialize)]
    struct WithErrors {
        #[serde(default)]
        errors: Vec<Value>,
    }
    typed::<WithErrors>(v).map(|w| w.errors).unwrap_or_default()
}

/// ` (label L, hash H) in D` of an activation or canary: whichever the server told.
fn revision_meta(label: &Option<String>, hash: &str, duration_ms: f64) -> String {
    let mut meta = Vec::new();
    if let Some(l) = label {
        meta.push(format!("label {l}"));
    }
    if !hash.is_empty() {
        meta.push(format!("hash {}", short_hash(hash)));
    }
    let mut t = String::new();
    if !meta.is_empty() {
        t.push_str(&format!(" ({})", meta.join(", ")));
    }
    if duration_ms > 0.0 {
        t.push_str(&format!(" in {}", millis(duration_ms)));
    }
    t
}

/// A diff the server sent (an older server or a test double may send none).
fn sent(diff: &UnitDiff) -> Option<&UnitDiff> {
    (!diff.unit.is_empty() || !diff.changes.is_empty()).then_some(diff)
}

/// The lines of one deployment outcome.
pub fn outcome_lines(v: &Value) -> Vec<Line> {
    let Some(o) = typed::<Outcome>(v) else {
        return vec![vec![
            Span::state("result"),
            Span::plain(format!(" {}", compact(v, 200))),
        ]];
    };
    let mut head: Line = vec![Span::state(o.name()), Span::plain(format!(" {}", o.unit()))];
    let mut lines = Vec::new();
    match &o {
        Outcome::Activated {
            revision,
            hash,
            label,
            duration_ms,
            diff,
            ..
        } => {
            head.push(Span::plain(format!(
                ": revision {revision}{}",
                revision_meta(label, hash, *duration_ms)
            )));
            if let Some(d) = sent(diff) {
                head.push(Span::new(format!("  {}", d.summary()), Tone::Dim));
                lines.push(head);
                lines.extend(diff_lines(d, "    "));
                return lines;
            }
        }
        Outcome::Canary {
            revision,
            stable,
            percent,
            header,
            ..
        } => {
            let share = match header {
                Some(h) => format!("requests with {h}"),
                None => format!("{}% of requests", cell(Some(&json!(percent)))),
            };
            head.push(Span::plain(format!(
                ": revision {revision} beside revision {stable} for {share}"
            )));
        }
        Outcome::Unchanged { revision, .. } => head.push(Span::plain(format!(
            ": revision {revision} already matches the files"
        ))),
        Outcome::Unloaded { revision, .. } => head.push(Span::plain(format!(
            ": revision {revision} drains and stops"
        ))),
        Outcome::Rejected { errors, .. } => {
            let what = match errors.len() {
                0 => "not applied".to_string(),
                1 => "1 error".to_string(),
                n => format!("{n} errors"),
            };
            head.push(Span::plain(format!(
                ": {what}; nothing changed, the running revision keeps serving"
            )));
            lines.push(head);
            lines.extend(errors_lines(errors));
            return lines;
        }
    }
    lines.push(head);
    lines
}

/// A deployment result: one outcome or an array of them (a batch). Returns the output and
/// whether anything failed.
pub fn outcomes(v: &Value) -> (Output, bool) {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let failed = items.iter().any(|i| outcome_failed(i));
    let mut lines = Vec::new();
    for it in &items {
        lines.extend(outcome_lines(it));
    }
    if items.len() > 1 && failed {
        lines.push(vec![Span::new(
            "the batch is all-or-nothing: no unit was changed",
            Tone::Warn,
        )]);
    }
    if items.is_empty() {
        lines.push(vec![Span::new("nothing to do", Tone::Dim)]);
    }
    (Output::new(v.clone()).with(Block::Lines(lines)), failed)
}

/// `validate UNIT` (and `--checks`). Returns the output and whether it is valid.
pub fn validation(v: &Value) -> (Output, bool) {
    let Validation {
        unit,
        valid,
        errors,
    } = typed(v).unwrap_or(Validation {
        unit: String::new(),
        valid: false,
        errors: None,
    });
    let mut lines = Vec::new();
    if valid {
        lines.push(vec![Span::state("valid"), Span::plain(format!(" {unit}"))]);
    } else {
        let errors = errors.unwrap_or_default();
        let n = errors.len();
        lines.push(vec![
            Span::state("invalid"),
            Span::plain(format!(
                " {unit}: {n} error{}",
                if n == 1 { "" } else { "s" }
            )),
        ]);
        lines.extend(errors_lines(&errors));
    }
    (Output::new(v.clone()).with(Block::Lines(lines)), valid)
}

/// `diff UNIT`: the diff (or the server's text of it), or the errors that keep the files
/// from deploying. Returns the output and whether a diff could be made.
pub fn diff(v: &Value) -> (Output, bool) {
    let d: DiffResult = typed(v).unwrap_or(DiffResult {
        unit: String::new(),
        diff: None,
        text: None,
        new: false,
        errors: None,
    });
    let unit = &d.unit;
    if let (Some(errors), None) = (&d.errors, &d.diff) {
        let mut lines = vec![vec![
            Span::state("invalid"),
            Span::plain(format!(" {unit}: its files do not validate")),
        ]];
        lines.extend(errors_lines(errors));
        return (Output::new(v.clone()).with(Block::Lines(lines)), false);
    }
    let mut lines: Vec<Line> = d
        .diff
        .as_ref()
        .map(|x| diff_lines(x, ""))
        .unwrap_or_default();
    // The server's text of an empty diff ("no changes") adds nothing to the message below.
    let has_changes = d.diff.as_ref().is_none_or(|x| !x.changes.is_empty());
    if lines.is_empty() && has_changes {
        if let Some(t) = d.text.as_deref().filter(|t| !t.trim().is_empty()) {
            lines = t.lines().map(|l| vec![Span::plain(l)]).collect();
        }
    }
    if lines.is_empty() {
        lines.push(vec![Span::plain(format!(
            "no changes: {unit} on disk matches the running revision"
        ))]);
    } else if let Some(x) = &d.diff {
        let what = if d.new {
            "not loaded; loading it would add this"
        } else {
            "a reload would apply this"
        };
        lines.insert(
            0,
            vec![Span::new(
                format!("{unit}: {} ({what})", x.summary()),
                Tone::Bold,
            )],
        );
    }
    (Output::new(v.clone()).with(Block::Lines(lines)), true)
}

/// `history UNIT`.
pub fn history(unit: &str, v: &Value, now: u64) -> Output {
    let mut t = Table::new(
        &["REV>", "ACTIVE", "HASH", "LABEL", "DEPLOYED", "TOOK>"],
        format!("no revisions of {unit} kept"),
    );
    let items: Vec<HistoryEntry> = typed(v).unwrap_or_default();
    for it in items {
        let when = match it.deployed_at {
            0 => String::new(),
            ts => format!("{} UTC ({})", timestamp(ts), ago(ts, now)),
        };
        let took = if it.deploy_ms > 0.0 {
            millis(it.deploy_ms)
        } else {
            String::new()
        };
        t.push(vec![
            it.revision.to_string().into(),
            if it.active {
                Span::new("*", Tone::Good)
            } else {
                Span::plain("")
            },
            short_hash(&it.hash).into(),
            it.label.unwrap_or_default().into(),
            when.into(),
            took.into(),
        ]);
    }
    Output::new(v.clone()).with(Block::Table(t))
}

/// The outcome of a warm restart: restarted (with what changed in esb.toml) or rejected
/// (every error; the running configuration keeps serving). Returns the output and whether
/// it restarted.
pub fn restart(v: &Value) -> (Output, bool) {
    let outcome = typed(v).unwrap_or(RestartOutcome::Restarted {
        duration_ms: 0.0,
        text: String::new(),
        diff: Default::default(),
    });
    match outcome {
        RestartOutcome::Rejected { errors } => {
            let n = errors.len();
            let mut lines = vec![vec![
                Span::state("rejected"),
                Span::plain(format!(
                    " restart: {n} error{}; nothing changed, the running configuration keeps serving",
                    if n == 1 { "" } else { "s" }
                )),
            ]];
            lines.extend(errors_lines(&errors));
            (Output::new(v.clone()).with(Block::Lines(lines)), false)
        }
        RestartOutcome::Restarted {
            duration_ms, diff, ..
        } => {
            let took = if duration_ms > 0.0 {
                format!(" in {}", millis(duration_ms))
            } else {
                String::new()
            };
            let line = vec![
                Span::state("restarted"),
                Span::plain(format!("{took}: {diff}")),
            ];
            (Output::line(v.clone(), line), true)
        }
    }
}

/// The outcome of a binary upgrade: which process serves now, which one drains.
pub fn upgrade(v: &Value) -> Output {
    let line = match typed::<UpgradeOutcome>(v) {
        Some(UpgradeOutcome::Upgraded {
            pid,
            old_pid,
            binary,
            duration_ms,
        }) => {
            let took = if duration_ms > 0.0 {
                format!(" in {duration_ms} ms")
            } else {
                String::new()
            };
            format!("{took}: process {pid} ({binary}) serves; process {old_pid} drains and exits")
        }
        None => format!(": {}", compact(v, 200)),
    };
    Output::line(v.clone(), vec![Span::state("upgraded"), Span::plain(line)])
}

/// Whether hot deployment is on.
pub fn hot_deploy(v: &Value) -> Output {
    Output::line(
        json!({ "hot_deploy": v }),
        vec![
            Span::plain("hot deploy "),
            match v.as_bool() {
                Some(true) => Span::state("on"),
                Some(false) => Span::state("off"),
                None => Span::plain(cell(Some(v))),
            },
        ],
    )
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
