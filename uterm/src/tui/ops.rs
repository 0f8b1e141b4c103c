//! What the single-key operations and Enter mean for the selection: which command of the
//! language each one becomes (the same [`Command`] script mode runs), which ones ask first
//! (those that take traffic out of service or replace what serves: pause, stop,
//! maintenance, unload, rollback), and what `--read-only` refuses (everything that changes
//! state). Part of the reducer: pure.

use deployments::protocol::attrs::ServerAttrs;

use crate::lang::command::Command;
use crate::lang::kind::{Kind, Target};
use crate::present::output::{Span, Tone};
use crate::tui::action::{Effect, Op, View};
use crate::tui::app::{App, Confirm, Mode, Popup, Purpose};
use crate::tui::model::{Obj, RowKind};

fn paused(state: &str) -> bool {
    matches!(state, "Paused" | "Maintenance")
}

impl App {
    fn ask(&mut self, prompt: String, command: Command, label: String) -> Vec<Effect> {
        self.mode = Mode::Confirm(Confirm {
            prompt,
            command,
            label,
        });
        vec![]
    }

    fn refuse(&mut self, text: impl Into<String>) -> Vec<Effect> {
        self.set_status(text, Tone::Warn);
        vec![]
    }

    /// The selection's unit, or why there is none.
    fn unit_of(&self, o: Option<&Obj>) -> Result<String, String> {
        match o {
            None if self.view == View::Events && self.drill.is_none() => {
                Err("select a unit or one of its elements (views 1-3) first".into())
            }
            None => Err("nothing selected".into()),
            Some(o) if o.kind == RowKind::Object(Kind::Transport) => {
                Err(format!("transport {} belongs to no unit", o.name))
            }
            Some(o) => o
                .unit_name()
                .map(str::to_string)
                .ok_or_else(|| "nothing selected".to_string()),
        }
    }

    /// A single-key operation on the selection.
    pub(crate) fn op(&mut self, op: Op) -> Vec<Effect> {
        let changes = !matches!(op, Op::Diff | Op::History | Op::Tap);
        if changes && self.opts.read_only {
            return self.refuse(format!(
                "read-only: {} is disabled (uterm was started with --read-only)",
                op_word(op)
            ));
        }
        let sel = self.selected_obj().cloned();
        let unit = self.unit_of(sel.as_ref());
        let loaded = |u: &str| {
            self.snapshot
                .as_ref()
                .and_then(|s| s.unit(u))
                .is_some_and(|o| !o.not_loaded())
        };
        match op {
            Op::Tap => match sel {
                Some(o)
                    if matches!(
                        o.kind,
                        RowKind::Object(Kind::Proxy) | RowKind::Object(Kind::Consumer)
                    ) =>
                {
                    let unit = o.unit.clone().unwrap_or_default();
                    let id = self.next_job;
                    self.next_job += 1;
                    let consumer = o.kind == RowKind::Object(Kind::Consumer);
                    let waiting = if consumer {
                        crate::tui::app::TAP_WAITING_MESSAGES
                    } else {
                        crate::tui::app::TAP_WAITING
                    };
                    let mut p = Popup::new(
                        format!("tap {} {unit}/{}", o.kind.word(), o.name),
                        vec![vec![Span::new(waiting, Tone::Dim)]],
                    );
                    p.tap = Some(id);
                    self.mode = Mode::Popup(p);
                    vec![Effect::Tap {
                        id,
                        unit,
                        name: o.name.clone(),
                        consumer,
                    }]
                }
                _ => self.refuse(
                    "w taps a proxy or a consumer: select one (2 and 6 list them)".to_string(),
                ),
            },
            Op::ServerMaintenance => {
                let on = self
                    .snapshot
                    .as_ref()
                    .map(|s| crate::present::view::typed::<ServerAttrs>(&s.server).state)
                    .as_deref()
                    != Some("Maintenance");
                if !on {
                    return self.run(
                        Command::Maintenance(false),
                        "maintenance off".into(),
                        Purpose::Status,
                    );
                }
                self.ask(
                    "Put the server in maintenance? /health answers 503 so load balancers \
                     drain; traffic is still served."
                        .into(),
                    Command::Maintenance(true),
                    "maintenance on".into(),
                )
            }
            Op::Reload | Op::Load | Op::Unload | Op::Diff | Op::History | Op::Rollback => {
                let u = match unit {
                    Ok(u) => u,
                    Err(e) => return self.refuse(e),
                };
                let is_loaded = loaded(&u);
                match op {
                    Op::Reload if !is_loaded => self.run(
                        Command::Load(vec![u.clone()]),
                        format!("load {u}"),
                        Purpose::Status,
                    ),
                    Op::Reload => self.run(
                        Command::Reload(vec![u.clone()]),
                        format!("reload {u}"),
                        Purpose::Status,
                    ),
                    Op::Load if is_loaded => {
                        self.refuse(format!("{u} is loaded; r reloads it from disk"))
                    }
                    Op::Load => self.run(
                        Command::Load(vec![u.clone()]),
                        format!("load {u}"),
                        Purpose::Status,
                    ),
                    Op::Diff => self.run_into_popup(
                        Command::Diff {
                            unit: u.clone(),
                            file: None,
                        },
                        format!("diff {u}"),
                    ),
                    _ if !is_loaded => self.refuse(format!("{u} is not loaded; l loads it")),
                    Op::Unload => self.ask(
                        format!("Unload {u}? Its proxies stop serving; in-flight requests finish."),
                        Command::Unload(vec![u.clone()]),
                        format!("unload {u}"),
                    ),
                    Op::History => {
                        let effects = self
                            .run_into_popup(Command::History(u.clone()), format!("history {u}"));
                        if let Some(Effect::Run { id, .. }) = effects.first() {
                            if let Some(j) = self.jobs.get_mut(id) {
                                j.purpose = Purpose::History(u);
                            }
                        }
                        effects
                    }
                    _ => self.ask(
                        format!("Roll {u} back to its previous revision?"),
                        Command::Rollback {
                            unit: u.clone(),
                            to: None,
                        },
                        format!("rollback {u}"),
                    ),
                }
            }
            Op::TogglePause | Op::ToggleStop | Op::Maintenance | Op::RunTask => {
                let Some(o) = sel else {
                    return self.refuse(unit.err().unwrap_or_else(|| "nothing selected".into()));
                };
                if o.not_loaded() {
                    return self.refuse(format!("{} is not loaded; l loads it", o.name));
                }
                let Some(t) = o.target() else {
                    return self.refuse("a draining revision only finishes its requests");
                };
                self.object_op(op, &o, t)
            }
        }
    }

    fn object_op(&mut self, op: Op, o: &Obj, t: Target) -> Vec<Effect> {
        let kind = t.kind();
        let state = o.state().to_string();
        match op {
            Op::TogglePause if kind == Kind::Sequence => {
                self.refuse("sequences cannot be paused; pause the proxy or the unit")
            }
            Op::TogglePause if paused(&state) => self.run(
                Command::Resume(t.clone()),
                format!("resume {t}"),
                Purpose::Status,
            ),
            Op::TogglePause => {
                let what = match kind {
                    Kind::Unit => "every proxy of the unit answers 503 until resumed",
                    Kind::Proxy => "it answers 503 with Retry-After until resumed",
                    Kind::Endpoint => "requests fail fast into the fault sequence (maintenance)",
                    Kind::Transport => "it stops accepting connections; clients wait",
                    Kind::Consumer => "it stops consuming; messages wait in the queue or the inbox",
                    _ => "it does not run until resumed",
                };
                self.ask(
                    format!("Pause {t}? {}.", capital(what)),
                    Command::Pause {
                        target: t.clone(),
                        hold_ms: None,
                    },
                    format!("pause {t}"),
                )
            }
            Op::ToggleStop if !matches!(kind, Kind::Proxy | Kind::Transport | Kind::Consumer) => {
                self.refuse("only proxies, transports and consumers stop and start; p pauses")
            }
            Op::ToggleStop if state == "Stopped" => self.run(
                Command::Start(t.clone()),
                format!("start {t}"),
                Purpose::Status,
            ),
            Op::ToggleStop => {
                let what = match kind {
                    Kind::Proxy => "It answers 404 until started.",
                    Kind::Consumer => "It closes its connection until started.",
                    _ => "Its port is released until started.",
                };
                self.ask(
                    format!("Stop {t}? {what}"),
                    Command::Stop(t.clone()),
                    format!("stop {t}"),
                )
            }
            Op::Maintenance if kind != Kind::Endpoint => {
                self.refuse("m is for endpoints (p pauses other objects; M is server maintenance)")
            }
            Op::Maintenance if paused(&state) => self.run(
                Command::Resume(t.clone()),
                format!("maintenance off {t}"),
                Purpose::Status,
            ),
            Op::Maintenance => self.ask(
                format!("Put {t} in maintenance? Requests fail fast into the fault sequence."),
                Command::Pause {
                    target: t.clone(),
                    hold_ms: None,
                },
                format!("maintenance on {t}"),
            ),
            Op::RunTask => match t {
                Target::Element {
                    kind: Kind::Task,
                    unit,
                    name,
                } => self.run(
                    Command::RunTask {
                        unit: unit.clone(),
                        task: name.clone(),
                    },
                    format!("run task {unit}/{name}"),
                    Purpose::Status,
                ),
                _ => self.refuse("t runs a task: select one in a unit's drill-down"),
            },
            _ => vec![],
        }
    }

    /// Rollback to a revision picked in the history popup (asks first).
    pub(crate) fn rollback_to(&mut self, unit: String, rev: Option<(u64, bool)>) -> Vec<Effect> {
        if self.opts.read_only {
            return self
                .refuse("read-only: rollback is disabled (uterm was started with --read-only)");
        }
        match rev {
            None => vec![],
            Some((r, true)) => self.refuse(format!("r{r} is the active revision of {unit}")),
            Some((r, false)) => self.ask(
                format!("Roll {unit} back to revision {r}?"),
                Command::Rollback {
                    unit: unit.clone(),
                    to: Some(r),
                },
                format!("rollback {unit} to r{r}"),
            ),
        }
    }

    /// Enter: drill into a unit; on other rows, every attribute; on an event, all of it.
    pub(crate) fn enter(&mut self) -> Vec<Effect> {
        if let Some(ev) = self.selected_event() {
            let mut lines = ev.lines.clone();
            lines.push(Vec::new());
            let json = serde_json::to_string_pretty(&ev.event.to_json()).unwrap_or_default();
            lines.extend(json.lines().map(|l| vec![Span::plain(l)]));
            let title = crate::present::event::event_title(&ev.event);
            self.mode = Mode::Popup(Popup::new(title, lines));
            return vec![];
        }
        let Some(o) = self.selected_obj().cloned() else {
            return vec![];
        };
        let drill_to = match o.kind {
            RowKind::Object(Kind::Unit) if o.not_loaded() => {
                return self.refuse(format!("{} is not loaded; l loads it", o.name))
            }
            RowKind::Object(Kind::Unit) => Some(o.name.clone()),
            RowKind::Object(Kind::Proxy) | RowKind::Object(Kind::Endpoint)
                if self.drill.is_none() =>
            {
                o.unit.clone()
            }
            _ => None,
        };
        if let Some(u) = drill_to {
            let from = self.view;
            self.drill = Some((u, from));
            if o.kind != RowKind::Object(Kind::Unit) {
                self.select_key(&o.key());
            }
            return vec![];
        }
        let title = match o.target() {
            Some(t) => t.to_string(),
            None => format!(
                "{} draining revision {}",
                o.unit.clone().unwrap_or_default(),
                o.name
            ),
        };
        let mut p = Popup::new(title, o.attr_lines(self.now_ms));
        p.live = Some((o.key(), o.unit.clone()));
        self.mode = Mode::Popup(p);
        vec![]
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn op_word(op: Op) -> &'static str {
    match op {
        Op::Reload => "reload",
        Op::TogglePause => "pause/resume",
        Op::ToggleStop => "stop/start",
        Op::Maintenance | Op::ServerMaintenance => "maintenance",
        Op::Diff => "diff",
        Op::History => "history",
        Op::Rollback => "rollback",
        Op::Load => "load",
        Op::Unload => "unload",
        Op::RunTask => "run task",
        Op::Tap => "tap",
    }
}
