//! Human rendering of cluster answers: `cluster status` as one row per cluster unit with a
//! column per node (SYNCED / PENDING / FAILED / DOWN, the revision when it differs), the
//! errors of failed nodes below it; a cluster change as what was committed and who applied it.

use deployments::protocol::cluster::{Action, ChangeResult, ClusterStatus, StoreState, SyncState};
use serde_json::Value;

use crate::present::output::{Block, Line, Output, Span, Table, Tone};

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

fn tone(s: SyncState) -> Tone {
    match s {
        SyncState::Synced => Tone::Good,
        SyncState::Pending => Tone::Warn,
        SyncState::Failed | SyncState::Down => Tone::Bad,
    }
}

fn store_span(s: &ClusterStatus) -> Span {
    let t = match s.store.state {
        StoreState::Up => Tone::Good,
        StoreState::Down | StoreState::Alarm => Tone::Bad,
    };
    Span::new(format!("store {}", s.store.state.as_str()), t)
}

/// `cluster status`.
pub fn status(s: &ClusterStatus, json: Value) -> Output {
    let mut head: Line = vec![
        Span::new(format!("cluster {}", s.cluster), Tone::Bold),
        Span::plain(format!("  node {}  ", s.node)),
        store_span(s),
        Span::plain(format!(
            "  applied store revision {}  endpoints {}",
            s.store.applied_revision,
            s.store.endpoints.join(",")
        )),
    ];
    if s.nodes.iter().any(|n| !n.live) {
        let down: Vec<&str> = s
            .nodes
            .iter()
            .filter(|n| !n.live)
            .map(|n| n.node.as_str())
            .collect();
        head.push(Span::new(format!("  down: {}", down.join(", ")), Tone::Bad));
    }
    let mut lines = vec![head];
    if let Some(d) = &s.store.detail {
        lines.push(vec![Span::new(d.clone(), Tone::Bad)]);
    }
    let mut out = Output::new(json).with(Block::Lines(lines));
    let mut headers: Vec<String> = ["UNIT", "REV>", "HASH", "LABEL", "BY", "PAUSED"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    headers.extend(s.nodes.iter().map(|n| n.node.to_uppercase()));
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = Table::new(&refs, "no cluster units");
    let mut errors: Vec<Line> = Vec::new();
    for u in &s.units {
        let mut row = vec![
            Span::plain(u.unit.clone()),
            Span::plain(u.revision.to_string()),
            Span::plain(short(&u.hash)),
            Span::plain(u.label.clone().unwrap_or_default()),
            Span::plain(u.by.clone()),
            Span::plain(if u.paused { "paused" } else { "-" }),
        ];
        for n in &s.nodes {
            let Some(nu) = n.units.get(&u.unit) else {
                row.push(Span::plain("-"));
                continue;
            };
            let mut text = nu.state.as_str().to_string();
            if nu.revision != u.revision && nu.revision > 0 && nu.state != SyncState::Failed {
                text.push_str(&format!(" r{}", nu.revision));
            }
            row.push(Span::new(text, tone(nu.state)));
            if let (SyncState::Failed, Some(e)) = (nu.state, &nu.error) {
                errors.push(vec![
                    Span::new(format!("{}/{}", n.node, u.unit), Tone::Bad),
                    Span::plain(format!(" revision {}: {e}", nu.revision)),
                ]);
            }
        }
        t.push(row);
    }
    out.push(Block::Table(t));
    if !errors.is_empty() {
        out.push(Block::Lines(errors));
    }
    out
}

/// What a cluster change committed, and who applied it within the wait.
pub fn change(r: &ChangeResult, json: Value) -> Output {
    let verb = match r.action {
        Action::Deploy => "deployed",
        Action::Publish => "published",
        Action::Unload => "unloaded",
        Action::Rollback => "rolled forward",
        Action::Pause => "paused",
        Action::Resume => "resumed",
    };
    let mut what = format!("cluster {verb} {}: revision {}", r.unit, r.revision);
    if let Some(h) = &r.hash {
        what.push_str(&format!(" (hash {}", short(h)));
        if let Some(l) = &r.label {
            what.push_str(&format!(", label {l}"));
        }
        what.push(')');
    }
    if r.store_revision == 0 {
        what.push_str(", unchanged");
    }
    what.push_str(&format!(", accepted by {}", r.accepted_by));
    let mut lines = vec![vec![Span::plain(what)]];
    if let Some(w) = &r.wait {
        if !w.synced.is_empty() {
            lines.push(vec![
                Span::new("    synced", Tone::Good),
                Span::plain(format!(" on {} in {} ms", w.synced.join(", "), w.waited_ms)),
            ]);
        }
        for f in &w.failed {
            lines.push(vec![
                Span::new(format!("    FAILED on {}", f.node), Tone::Bad),
                Span::plain(format!(": {}", f.error)),
            ]);
        }
        if !w.timed_out.is_empty() {
            lines.push(vec![
                Span::new("    timed out", Tone::Bad),
                Span::plain(format!(
                    " on {} after {} ms",
                    w.timed_out.join(", "),
                    w.waited_ms
                )),
            ]);
        }
    }
    Output::new(json).with(Block::Lines(lines))
}
