//! Operator commands on what runs: pause and resume a unit, start/stop/pause a proxy,
//! consumer or amqp transport, put an endpoint into maintenance or change its addresses,
//! pause or run a task, flip a flag. Each command enters the engine like a deploy does
//! (one at a time, in order with deploys) and acts on the running revision; the state it
//! changes is operator state that survives reloads (see [`UnitControl`]).

use super::*;
use crate::proxy::ProxyState;

/// What an operator does to a running proxy, consumer or transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Pause,
    Resume,
    Stop,
    Start,
}

/// What an operator does to one of an endpoint's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressAction {
    /// Adds a (validated) http:// or https:// URL with weight 1.
    Add,
    Remove,
    Suspend,
    Activate,
}

/// What an operator does to a scheduled task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAction {
    Pause,
    Resume,
    RunNow,
}

/// One operator command.
#[derive(Debug, Clone)]
pub enum Command {
    /// Pauses a unit; while paused, new requests wait up to `hold_ms` for a resume (0:
    /// they are refused at once).
    PauseUnit {
        unit: String,
        hold_ms: u64,
    },
    ResumeUnit {
        unit: String,
    },
    Proxy {
        unit: String,
        proxy: String,
        run: Run,
    },
    Maintenance {
        unit: String,
        endpoint: String,
        on: bool,
    },
    Address {
        unit: String,
        endpoint: String,
        url: String,
        action: AddressAction,
    },
    Consumer {
        unit: String,
        consumer: String,
        run: Run,
    },
    Task {
        unit: String,
        task: String,
        action: TaskAction,
    },
    Flag {
        unit: String,
        flag: String,
        on: bool,
    },
    /// An amqp transport of the root config (its consumers follow it).
    Amqp {
        transport: String,
        run: Run,
    },
}

/// Why a command did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The unit or the element the command names does not run.
    NotFound,
    /// The command does not apply in the element's state; the message says what to do.
    Refused(String),
}

impl Engine {
    /// Runs one operator command; returns the element's state afterwards, as operators
    /// read it (`Paused`, `Maintenance`, `Stopped`…).
    pub async fn control(&self, command: Command) -> Result<String, CommandError> {
        let units = self.units.lock().await;
        let units = &*units;
        match command {
            Command::PauseUnit { unit, hold_ms } => pause(slot_of(units, &unit)?, Some(hold_ms)),
            Command::ResumeUnit { unit } => pause(slot_of(units, &unit)?, None),
            Command::Proxy { unit, proxy, run } => {
                let st = slot_of(units, &unit)?.control.proxy_state(&proxy);
                proxy_transition(&proxy, &st, run).map(|s| s.as_str().to_owned())
            }
            Command::Maintenance { unit, endpoint, on } => {
                let ep = endpoint_of(units, &unit, &endpoint)?;
                ep.maintenance.store(on, Relaxed);
                Ok(if on { "Maintenance" } else { "Active" }.into())
            }
            Command::Address {
                unit,
                endpoint,
                url,
                action,
            } => address(&*endpoint_of(units, &unit, &endpoint)?, &url, action),
            Command::Consumer {
                unit,
                consumer,
                run,
            } => consumer_command(slot_of(units, &unit)?, &consumer, run),
            Command::Task { unit, task, action } => {
                task_command(slot_of(units, &unit)?, &task, action)
            }
            Command::Flag { unit, flag, on } => {
                set_flag(&*current_of(units, &unit)?, &unit, &flag, on)
            }
            Command::Amqp { transport, run } => self.amqp_command(units, &transport, run),
        }
    }

    fn amqp_command(
        &self,
        units: &BTreeMap<String, UnitSlot>,
        transport: &str,
        run: Run,
    ) -> Result<String, CommandError> {
        let l = self.amqp.get(transport).ok_or(CommandError::NotFound)?;
        match run {
            Run::Pause => l.paused.store(true, Relaxed),
            Run::Resume => l.paused.store(false, Relaxed),
            Run::Stop => l.stopped.store(true, Relaxed),
            Run::Start => l.stopped.store(false, Relaxed),
        }
        for c in units.values().flat_map(|s| s.consumers.values()) {
            c.poke();
        }
        Ok(if l.stopped.load(Relaxed) {
            "Stopped"
        } else if l.paused.load(Relaxed) {
            "Paused"
        } else {
            "Started"
        }
        .into())
    }

    /// Turns the hot deployer on or off; returns whether it was on.
    pub fn set_hot_deploy(&self, on: bool) -> bool {
        let old = self.hot_deploy.swap(on, Relaxed);
        self.events.emit(EventKind::HotDeploy { enabled: on });
        old
    }
}

fn slot_of<'a>(
    units: &'a BTreeMap<String, UnitSlot>,
    unit: &str,
) -> Result<&'a UnitSlot, CommandError> {
    units.get(unit).ok_or(CommandError::NotFound)
}

fn current_of(
    units: &BTreeMap<String, UnitSlot>,
    unit: &str,
) -> Result<Arc<Revision>, CommandError> {
    slot_of(units, unit)?
        .current
        .clone()
        .ok_or(CommandError::NotFound)
}

fn endpoint_of(
    units: &BTreeMap<String, UnitSlot>,
    unit: &str,
    endpoint: &str,
) -> Result<Arc<crate::endpoint::EndpointRuntime>, CommandError> {
    let rev = current_of(units, unit)?;
    rev.endpoints
        .get(endpoint)
        .cloned()
        .ok_or(CommandError::NotFound)
}

/// Pauses the unit (`Some(hold_ms)`) or resumes it (`None`).
fn pause(slot: &UnitSlot, hold_ms: Option<u64>) -> Result<String, CommandError> {
    let c = &slot.control;
    match hold_ms {
        Some(hold) => {
            c.hold_ms.store(hold, Relaxed);
            c.paused.store(true, Relaxed);
        }
        None => {
            c.paused.store(false, Relaxed);
            c.resumed.notify_waiters();
        }
    }
    slot.consumers.values().for_each(|c| c.poke());
    Ok(if hold_ms.is_some() {
        "Paused"
    } else {
        "Active"
    }
    .into())
}

fn address(
    ep: &crate::endpoint::EndpointRuntime,
    url: &str,
    action: AddressAction,
) -> Result<String, CommandError> {
    match action {
        AddressAction::Add => ep.add_address(url, 1),
        AddressAction::Remove => ep.remove_address(url),
        AddressAction::Suspend => ep.address(url).map(|a| a.suspend()),
        AddressAction::Activate => ep.address(url).map(|a| a.activate()),
    }
    .map_err(CommandError::Refused)?;
    Ok(format!("{action:?}"))
}

fn consumer_command(slot: &UnitSlot, consumer: &str, run: Run) -> Result<String, CommandError> {
    let c = slot.consumers.get(consumer).ok_or(CommandError::NotFound)?;
    match run {
        Run::Pause => c.set_paused(true),
        Run::Resume => c.set_paused(false),
        Run::Stop => c.set_stopped(true),
        Run::Start => c.set_stopped(false),
    }
    Ok(c.state().0.into())
}

fn task_command(slot: &UnitSlot, task: &str, action: TaskAction) -> Result<String, CommandError> {
    let t = slot
        .tasks
        .iter()
        .find(|t| t.name == task)
        .ok_or(CommandError::NotFound)?;
    match action {
        TaskAction::Pause => t.paused.store(true, Relaxed),
        TaskAction::Resume => t.paused.store(false, Relaxed),
        TaskAction::RunNow => t.run_now(),
    }
    Ok(t.state_name().into())
}

/// Flips flag `flag` of the running revision `rev` of `unit` (an operator's value,
/// kept across reloads).
fn set_flag(rev: &Revision, unit: &str, flag: &str, on: bool) -> Result<String, CommandError> {
    let Some((f, _)) = rev.info.vars.flags.get(flag) else {
        let known: Vec<&str> = rev.info.vars.flags.keys().map(|k| k.as_str()).collect();
        return Err(CommandError::Refused(format!(
            "unit \"{unit}\" declares no flag \"{flag}\" (its flags: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    f.set(on);
    Ok(if on { "on" } else { "off" }.into())
}

/// A proxy's state after `run`, if that applies in its state now.
fn proxy_transition(
    proxy: &str,
    state: &std::sync::atomic::AtomicU8,
    run: Run,
) -> Result<ProxyState, CommandError> {
    use ProxyState::*;
    let (from_ok, to): (&[ProxyState], ProxyState) = match run {
        Run::Pause => (&[Active, Paused], Paused),
        Run::Resume => (&[Paused, Active], Active),
        Run::Stop => (&[Active, Paused, Stopped], Stopped),
        Run::Start => (&[Stopped, Active], Active),
    };
    let cur = ProxyState::from_u8(state.load(Relaxed));
    if !from_ok.contains(&cur) {
        let hint = if cur == Stopped {
            "start it"
        } else {
            "resume it"
        };
        return Err(CommandError::Refused(format!(
            "proxy \"{proxy}\" is {}; {hint} instead",
            cur.as_str()
        )));
    }
    state.store(to as u8, Relaxed);
    Ok(to)
}
