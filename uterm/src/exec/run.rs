//! [`Executor::run`]: one command of the language against the management endpoint, as few
//! round trips as possible. The dispatch only: reads are in [`crate::exec::query`],
//! DeploymentManager operations in [`crate::exec::deploy`], state changes of objects and of the
//! server (bulked with a read of the state they produced) in [`crate::exec::control`], generic
//! bean access in [`crate::exec::beans`]; offline commands (help, `validate --dir`) never touch
//! the network.

use crate::conn::sse::Event;
use crate::exec::error::CmdError;
use crate::exec::executor::Executor;
use crate::exec::offline;
use crate::lang::command::{Command, ValidateWhat};
use crate::lang::error::UsageError;
use crate::lang::kind::{Kind, Target};
use crate::present::event;
use crate::present::output::{now_ms, Output};

impl Executor {
    /// Runs one command. `events --follow` streams and is run with [`Executor::follow_events`].
    pub fn run(&self, cmd: &Command) -> Result<Output, CmdError> {
        let now = now_ms();
        match cmd {
            Command::Help(topic) => Ok(crate::present::help::render(topic.as_deref())),
            Command::Status => self.status(now),
            Command::List { kind, unit } => self.list(*kind, unit.as_deref(), now),
            Command::Show(t) => self.show(t, now),
            Command::Load(units) => self.deploy_op(units, "load", "batch"),
            Command::Reload(units) => self.deploy_op(units, "reload", "batch"),
            Command::Unload(units) => self.deploy_op(units, "unload", "unloadBatch"),
            Command::ReloadAll => self.manager_outcome("reload --all", "reloadAll", vec![], None),
            Command::Deploy { unit, from } => self.deploy(unit, from),
            Command::Cluster(c) => self.cluster(c),
            Command::Canary {
                unit,
                from,
                percent,
                header,
                sticky,
            } => self.canary(unit, from, *percent, header.as_deref(), sticky.as_deref()),
            Command::Promote(unit) => self.promote(unit),
            Command::Abort(unit) => self.abort_canary(unit),
            Command::CanaryWeight { unit, percent } => self.canary_weight(unit, *percent),
            Command::Source {
                unit,
                revision,
                out,
            } => self.source(unit, *revision, out.as_deref()),
            Command::Rollback { unit, to } => self.rollback(unit, *to),
            Command::Validate(ValidateWhat::Dir(d)) => offline::validate_dir(d),
            Command::Validate(ValidateWhat::Checks { unit }) => self.validate_checks(unit),
            Command::Validate(ValidateWhat::Unit { unit, file }) => {
                self.validate(unit, file.as_deref())
            }
            Command::Diff { unit, file } => self.diff(unit, file.as_deref()),
            Command::DrainCancel { unit, revision } => self.drain_cancel(unit, *revision),
            Command::History(unit) => self.history(unit, now),
            Command::Pause { target, hold_ms } => self.pause(target, *hold_ms),
            Command::Resume(t) => self.object_op(t, "resume", "resume", vec![]),
            Command::Stop(t) => self.object_op(t, "stop", "stop", vec![]),
            Command::Start(t) => self.object_op(t, "start", "start", vec![]),
            Command::RunTask { unit, task } => {
                let t = Target::Element {
                    kind: Kind::Task,
                    unit: unit.clone(),
                    name: task.clone(),
                };
                self.object_op(&t, "run", "runNow", vec![])
            }
            Command::Address {
                op,
                unit,
                endpoint,
                url,
            } => self.address(*op, unit, endpoint, url, now),
            Command::Flag { unit, flag, on } => self.flag(unit, flag, *on),
            Command::Maintenance(on) => self.maintenance(*on),
            Command::Restart => self.restart(),
            Command::Upgrade => self.upgrade(),
            Command::HotDeploy(on) => self.hot_deploy(*on),
            Command::Events {
                follow: false,
                recent,
            } => {
                let evs: Vec<Event> = self
                    .client()
                    .events(Some(*recent), None)?
                    .map(|e| e.map(Event::from))
                    .collect::<Result<_, _>>()?;
                Ok(event::events(&evs))
            }
            Command::Events { follow: true, .. } => Err(UsageError::new(
                "events --follow streams until interrupted and runs only in script mode",
            )
            .into()),
            Command::Tap { .. } => Err(UsageError::new(
                "tap streams until interrupted and runs only in script mode (uterm -c \"tap PROXY\")",
            )
            .into()),
            Command::Beans(pattern) => self.beans(pattern.as_deref()),
            Command::Info(bean) => self.info(bean),
            Command::Get { bean, attributes } => self.get(bean, attributes, now),
            Command::Set {
                bean,
                attribute,
                value,
            } => self.set(bean, attribute, value),
            Command::Exec {
                bean,
                operation,
                arguments,
            } => self.exec(bean, operation, arguments, now),
        }
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
