//! Commands the console runs: starting one (an [`Effect::Run`] and the job remembered until
//! its result) and what its result does: the status line, a popup waiting for it (a diff,
//! a history to roll back from), the last output kept for `o`. Part of the reducer: pure.

use deployments::protocol::outcome::HistoryEntry;
use serde::Deserialize;

use crate::lang::command::Command;
use crate::present::output::plain;
use crate::present::output::{Span, Tone};
use crate::tui::action::{Effect, JobResult};
use crate::tui::app::{App, HistoryPick, Job, Mode, Popup, Purpose};
use crate::tui::text::output_lines;

impl App {
    /// Starts a command: a [`Effect::Run`] and the job remembered until its result.
    pub(crate) fn run(&mut self, command: Command, label: String, purpose: Purpose) -> Vec<Effect> {
        let id = self.next_job;
        self.next_job += 1;
        self.set_status(format!("{label} …"), Tone::Dim);
        self.jobs.insert(id, Job { label, purpose });
        vec![Effect::Run { id, command }]
    }

    /// Opens a popup that a job will fill.
    pub(crate) fn run_into_popup(&mut self, command: Command, title: String) -> Vec<Effect> {
        let effects = self.run(command, title.clone(), Purpose::Popup);
        if let Some(Effect::Run { id, .. }) = effects.first() {
            let mut p = Popup::new(title, vec![vec![Span::new("loading…", Tone::Dim)]]);
            p.job = Some(*id);
            self.mode = Mode::Popup(p);
        }
        effects
    }

    pub(crate) fn job_done(&mut self, id: u64, result: JobResult) -> Vec<Effect> {
        let Some(job) = self.jobs.remove(&id) else {
            return vec![];
        };
        let (ok, mut lines) = match &result {
            JobResult::Ok(out) => (true, output_lines(out)),
            JobResult::Failed { message, output } => {
                let mut l = output.as_ref().map(output_lines).unwrap_or_default();
                l.push(vec![Span::new(format!("error: {message}"), Tone::Bad)]);
                (false, l)
            }
        };
        let summary = match &result {
            JobResult::Ok(_) => plain(&lines[0]),
            JobResult::Failed { message, .. } if message.starts_with(&job.label) => {
                format!("✖ {message}")
            }
            JobResult::Failed { message, .. } => format!("✖ {}: {message}", job.label),
        };
        let title = match &job.purpose {
            Purpose::Command(line) => format!(":{line}"),
            _ => job.label.clone(),
        };
        self.last_output = Some((title.clone(), lines.clone()));
        let waiting = matches!(&self.mode, Mode::Popup(p) if p.job == Some(id));
        match job.purpose {
            Purpose::Popup => {
                if waiting {
                    self.mode = Mode::Popup(Popup::new(title, lines));
                    self.status = None;
                } else {
                    self.set_status(
                        format!("{} done (o shows it)", job.label),
                        if ok { Tone::Dim } else { Tone::Bad },
                    );
                }
            }
            Purpose::History(unit) => {
                let revisions = match &result {
                    JobResult::Ok(out) => revisions(&out.json),
                    _ => Vec::new(),
                };
                if waiting {
                    let selected = revisions.iter().position(|r| r.1).unwrap_or(0);
                    let mut p = Popup::new(title, std::mem::take(&mut lines));
                    if ok {
                        p.history = Some(HistoryPick {
                            unit,
                            revisions,
                            selected,
                        });
                    }
                    self.mode = Mode::Popup(p);
                }
                self.status = None;
            }
            Purpose::Status | Purpose::Command(_) => {
                let more = lines.iter().filter(|l| !plain(l).is_empty()).count() > 1;
                let is_cmd = matches!(job.purpose, Purpose::Command(_));
                let tone = if ok { Tone::Good } else { Tone::Bad };
                if more && self.mode == Mode::Normal && (is_cmd || !ok) {
                    self.mode = Mode::Popup(Popup::new(title, lines));
                }
                let hint = if more { "  (o: full output)" } else { "" };
                self.set_status(format!("{summary}{hint}"), tone);
            }
        }
        if !self.jobs.is_empty() {
            // Another command is still running: keep saying so.
            let l = self.running().join(", ");
            if let Some(s) = &mut self.status {
                s.text.push_str(&format!("   [running: {l}]"));
            }
        }
        vec![Effect::Refresh]
    }
}

/// `(revision, active)` of a `history` result.
fn revisions(v: &serde_json::Value) -> Vec<(u64, bool)> {
    Vec::<HistoryEntry>::deserialize(v)
        .map(|h| h.into_iter().map(|r| (r.revision, r.active)).collect())
        .unwrap_or_default()
}
