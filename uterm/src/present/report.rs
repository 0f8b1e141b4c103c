//! Deployment reports for people: outcomes of load/reload/unload/deploy/rollback (revision,
//! what changed, how long it took, or every error with file:line:col), validations, diffs
//! and revision history. Pure functions of the JSON the management endpoint returns.

use serde_json::{json, Value};

use crate::present::output::{
    ago, cell, compact, millis, short_hash, timestamp, Block, Line, Output, Span, Table, Tone,
};

pub(crate) fn is_diagnostic(v: &Value) -> bool {
    v.get("file").is_some() && v.get("message").is_some()
}

/// A diagnostic object as `file:line:col: element: message; hint` (the server's own
/// rendering of [`deployments::Diagnostic`]).
pub fn diag_text(d: &Value) -> String {
    if let Ok(diag) = serde_json::from_value::<deployments::Diagnostic>(d.clone()) {
        return diag.to_string();
    }
    let mut out = format!(
        "{}:{}:{}: ",
        cell(d.get("file")),
        cell(d.get("line")),
        cell(d.get("col"))
    );
    if let Some(e) = d.get("element").and_then(Value::as_str) {
        out.push_str(e);
        out.push_str(": ");
    }
    out.push_str(&cell(d.get("message")));
    if let Some(h) = d.get("hint").and_then(Value::as_str) {
        out.push_str("; ");
        out.push_str(h);
    }
    out
}

pub(crate) fn diag_span(d: &Value) -> Span {
    if is_diagnostic(d) {
        Span::new(diag_text(d), Tone::Bad)
    } else {
        Span::new(compact(d, 200), Tone::Bad)
    }
}

pub(crate) fn errors_lines(errors: Option<&Value>) -> Vec<Line> {
    match errors {
        Some(Value::Array(errs)) => errs
            .iter()
            .map(|e| vec![Span::plain("    "), diag_span(e)])
            .collect(),
        Some(Value::String(e)) => vec![vec![Span::plain("    "), Span::new(e.clone(), Tone::Bad)]],
        _ => Vec::new(),
    }
}

/// Lines of a unit diff (`{"unit", "changes": [...]}`): `+`, `-`, `~` per element, and for a
/// changed element every field with old → new.
pub fn diff_lines(diff: &Value, indent: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let Some(Value::Array(changes)) = diff.get("changes") else {
        return lines;
    };
    for c in changes {
        let (sign, tone) = match c.get("change").and_then(Value::as_str) {
            Some("added") => ("+", Tone::Good),
            Some("removed") => ("-", Tone::Bad),
            _ => ("~", Tone::Warn),
        };
        let what = format!("{} {}", cell(c.get("kind")), cell(c.get("name")));
        let fields = c.get("fields").and_then(Value::as_array);
        let field_text = |f: &Value| {
            format!(
                "{}: {} → {}",
                cell(f.get("field")),
                compact(f.get("old").unwrap_or(&Value::Null), 60),
                compact(f.get("new").unwrap_or(&Value::Null), 60)
            )
        };
        match fields.map(Vec::as_slice) {
            Some([one]) => lines.push(vec![
                Span::plain(indent),
                Span::new(sign, tone),
                Span::plain(format!(" {what}: {}", field_text(one))),
            ]),
            Some(many) if !many.is_empty() => {
                lines.push(vec![
                    Span::plain(indent),
                    Span::new(sign, tone),
                    Span::plain(format!(" {what}")),
                ]);
                for f in many {
                    lines.push(vec![Span::plain(format!("{indent}    {}", field_text(f)))]);
                }
            }
            _ => lines.push(vec![
                Span::plain(indent),
                Span::new(sign, tone),
                Span::plain(format!(" {what}")),
            ]),
        }
    }
    lines
}

pub(crate) fn diff_summary(diff: &Value) -> Option<String> {
    let changes = diff.get("changes")?.as_array()?;
    let c = |k: &str| {
        changes
            .iter()
            .filter(|c| c.get("change").and_then(Value::as_str) == Some(k))
            .count()
    };
    Some(format!(
        "+{} ~{} -{}",
        c("added"),
        c("changed"),
        c("removed")
    ))
}

/// True when a deployment outcome is a failure (`rejected`, or an unknown shape with errors).
pub fn outcome_failed(v: &Value) -> bool {
    match v.get("outcome").and_then(Value::as_str) {
        Some("rejected") | Some("failed") => true,
        Some(_) => false,
        None => v
            .get("errors")
            .is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty())),
    }
}

/// The lines of one deployment outcome.
pub fn outcome_lines(v: &Value) -> Vec<Line> {
    let kind = v.get("outcome").and_then(Value::as_str).unwrap_or("result");
    let unit = cell(v.get("unit"));
    let rev = v.get("revision").and_then(Value::as_u64);
    let mut head: Line = vec![Span::state(kind), Span::plain(format!(" {unit}"))];
    let mut lines = Vec::new();
    match kind {
        "activated" => {
            let mut t = format!(": revision {}", cell(v.get("revision")));
            let mut meta = Vec::new();
            if let Some(l) = v.get("label").and_then(Value::as_str) {
                meta.push(format!("label {l}"));
            }
            if let Some(h) = v.get("hash").and_then(Value::as_str) {
                meta.push(format!("hash {}", short_hash(h)));
            }
            if !meta.is_empty() {
                t.push_str(&format!(" ({})", meta.join(", ")));
            }
            if let Some(ms) = v.get("duration_ms").and_then(Value::as_f64) {
                t.push_str(&format!(" in {}", millis(ms)));
            }
            head.push(Span::plain(t));
            if let Some(d) = v.get("diff") {
                if let Some(sum) = diff_summary(d) {
                    head.push(Span::new(format!("  {sum}"), Tone::Dim));
                }
                lines.push(head);
                lines.extend(diff_lines(d, "    "));
                return lines;
            }
        }
        "canary" => {
            let share = match v.get("header").and_then(Value::as_str) {
                Some(h) => format!("requests with {h}"),
                None => format!("{}% of requests", cell(v.get("percent"))),
            };
            head.push(Span::plain(format!(
                ": revision {} beside revision {} for {share}",
                cell(v.get("revision")),
                cell(v.get("stable"))
            )));
        }
        "unchanged" => head.push(Span::plain(format!(
            ": revision {} already matches the files",
            cell(v.get("revision"))
        ))),
        "unloaded" => head.push(Span::plain(match rev {
            Some(r) => format!(": revision {r} drains and stops"),
            None => String::new(),
        })),
        "rejected" | "failed" => {
            let n = v
                .get("errors")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let what = match n {
                0 => "not applied".to_string(),
                1 => "1 error".to_string(),
                n => format!("{n} errors"),
            };
            head.push(Span::plain(format!(
                ": {what}; nothing changed, the running revision keeps serving"
            )));
            lines.push(head);
            lines.extend(errors_lines(v.get("errors")));
            return lines;
        }
        _ => {
            if let Some(r) = rev {
                head.push(Span::plain(format!(": revision {r}")));
            }
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

/// `validate UNIT`: `{"unit", "valid", "errors"}`. Returns the output and whether it is valid.
pub fn validation(v: &Value) -> (Output, bool) {
    let unit = cell(v.get("unit"));
    let valid = v.get("valid").and_then(Value::as_bool).unwrap_or(false);
    let mut lines = Vec::new();
    if valid {
        lines.push(vec![Span::state("valid"), Span::plain(format!(" {unit}"))]);
    } else {
        let n = v
            .get("errors")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        lines.push(vec![
            Span::state("invalid"),
            Span::plain(format!(
                " {unit}: {n} error{}",
                if n == 1 { "" } else { "s" }
            )),
        ]);
        lines.extend(errors_lines(v.get("errors")));
    }
    (Output::new(v.clone()).with(Block::Lines(lines)), valid)
}

/// `diff UNIT`: `{"unit", "diff", "text"}` or `{"unit", "errors"}`. Returns the output and
/// whether a diff could be made.
pub fn diff(v: &Value) -> (Output, bool) {
    let unit = cell(v.get("unit"));
    if v.get("errors").is_some() && v.get("diff").is_none() {
        let mut lines = vec![vec![
            Span::state("invalid"),
            Span::plain(format!(" {unit}: its files do not validate")),
        ]];
        lines.extend(errors_lines(v.get("errors")));
        return (Output::new(v.clone()).with(Block::Lines(lines)), false);
    }
    let mut lines: Vec<Line> = match v.get("diff") {
        Some(d) => diff_lines(d, ""),
        None => Vec::new(),
    };
    // The server's text of an empty diff ("no changes") adds nothing to the message below.
    let has_changes = v
        .pointer("/diff/changes")
        .and_then(Value::as_array)
        .is_none_or(|c| !c.is_empty());
    if lines.is_empty() && has_changes {
        if let Some(t) = v
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        {
            lines = t.lines().map(|l| vec![Span::plain(l)]).collect();
        }
    }
    if lines.is_empty() {
        lines.push(vec![Span::plain(format!(
            "no changes: {unit} on disk matches the running revision"
        ))]);
    } else if let Some(sum) = v.get("diff").and_then(diff_summary) {
        let what = if v.get("new").and_then(Value::as_bool) == Some(true) {
            "not loaded; loading it would add this"
        } else {
            "a reload would apply this"
        };
        lines.insert(
            0,
            vec![Span::new(format!("{unit}: {sum} ({what})"), Tone::Bold)],
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
    if let Value::Array(items) = v {
        for it in items {
            let active = it.get("active").and_then(Value::as_bool).unwrap_or(false);
            let when = match it.get("deployed_at").and_then(Value::as_u64) {
                Some(ts) if ts > 0 => format!("{} UTC ({})", timestamp(ts), ago(ts, now)),
                _ => String::new(),
            };
            t.push(vec![
                cell(it.get("revision")).into(),
                if active {
                    Span::new("*", Tone::Good)
                } else {
                    Span::plain("")
                },
                short_hash(&cell(it.get("hash"))).into(),
                cell(it.get("label")).into(),
                when.into(),
                it.get("deploy_ms")
                    .and_then(Value::as_f64)
                    .map(millis)
                    .unwrap_or_default()
                    .into(),
            ]);
        }
    }
    Output::new(v.clone()).with(Block::Table(t))
}

/// The outcome of a warm restart: restarted (with what changed in esb.toml) or rejected
/// (every error; the running configuration keeps serving). Returns the output and
/// whether it restarted.
pub fn restart(v: &Value) -> (Output, bool) {
    match v.get("outcome").and_then(Value::as_str) {
        Some("rejected") => {
            let n = v
                .get("errors")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let mut lines = vec![vec![
                Span::state("rejected"),
                Span::plain(format!(
                    " restart: {n} error{}; nothing changed, the running configuration keeps serving",
                    if n == 1 { "" } else { "s" }
                )),
            ]];
            lines.extend(errors_lines(v.get("errors")));
            (Output::new(v.clone()).with(Block::Lines(lines)), false)
        }
        _ => {
            let diff: deployments::root_diff::RootDiff =
                serde_json::from_value(v.get("diff").cloned().unwrap_or_default())
                    .unwrap_or_default();
            let took = v
                .get("duration_ms")
                .and_then(Value::as_f64)
                .map(|ms| format!(" in {}", millis(ms)))
                .unwrap_or_default();
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
    let took = v
        .get("duration_ms")
        .and_then(Value::as_f64)
        .map(|ms| format!(" in {ms} ms"))
        .unwrap_or_default();
    Output::line(
        v.clone(),
        vec![
            Span::state("upgraded"),
            Span::plain(format!(
                "{took}: process {} ({}) serves; process {} drains and exits",
                v["pid"],
                v["binary"].as_str().unwrap_or(""),
                v["old_pid"]
            )),
        ],
    )
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
