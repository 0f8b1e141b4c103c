//! The audit log (`state_dir/audit.log`, mode 0600): one JSON line per state change,
//! whoever caused it — a management request (`by` its role), the hot deployer or SIGHUP —
//! and one per refused management attempt (no credentials, foreign `Origin`/`Host`), those
//! rate-limited per reason with a summary of what was suppressed. Reads are not recorded.
//! Deployed content is recorded as its SHA-256 and size, never as text. Fail closed:
//! callers check [`Audit::writable`] before a state change and refuse it when the log
//! cannot be written.

use crate::auth::{Foreign, Role};
use crate::engine::{Engine, Outcome};
use crate::fsx;
use deployments::protocol::args::ArgKind;
use deployments::protocol::outcome::{Outcome as WireOutcome, RestartOutcome};
use deployments::protocol::{Request, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who caused a state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// A management request with a token of this role.
    Role(Role),
    /// The hot deployer, after files changed on disk.
    HotDeployer,
    /// SIGHUP.
    Signal,
    /// A unit's guard, rolling back a revision by itself.
    Guard,
    /// This node applying a change from the cluster store.
    Cluster,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Role(r) => r.as_str(),
            By::HotDeployer => "hot-deployer",
            By::Signal => "signal",
            By::Guard => "guard",
            By::Cluster => "cluster",
        }
    }
}

/// Why a management request was refused before it was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No or invalid credentials (401).
    Unauthenticated,
    /// A foreign `Origin` (403).
    Origin,
    /// A foreign `Host` (403, DNS rebinding).
    Host,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Origin => "origin",
            Refusal::Host => "host",
        }
    }
}

impl From<&Foreign> for Refusal {
    fn from(f: &Foreign) -> Refusal {
        match f {
            Foreign::Host(_) => Refusal::Host,
            Foreign::Origin(_) => Refusal::Origin,
        }
    }
}

/// The audit log cannot be written: state changes are refused until it can.
#[derive(Debug, thiserror::Error)]
#[error("audit log {} cannot be written ({source}); state changes are refused until it can", .path.display())]
pub struct Unwritable {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Refused attempts of one reason within the current one-second window.
struct Window {
    start: Instant,
    start_ms: u64,
    recorded: u32,
    suppressed: u64,
    last_ms: u64,
}

pub struct Audit {
    path: PathBuf,
    per_second: u32,
    windows: Mutex<HashMap<Refusal, Window>>,
    /// Serializes appends so lines never interleave.
    lock: Mutex<()>,
}

const WINDOW: Duration = Duration::from_secs(1);

/// Whether an answer is a rejected deploy or restart.
fn is_rejected(answer: &Value) -> bool {
    WireOutcome::deserialize(answer).is_ok_and(|o| o.is_rejected())
        || matches!(
            RestartOutcome::deserialize(answer),
            Ok(RestartOutcome::Rejected { .. })
        )
}

impl Audit {
    /// The audit log of `state_dir`; records at most `per_second` refused attempts a second
    /// per reason. An existing log open to group or others is tightened to 0600 now.
    pub fn new(state_dir: &Path, per_second: u32) -> Self {
        let audit = Audit {
            path: state_dir.join("audit.log"),
            per_second,
            windows: Mutex::new(HashMap::new()),
            lock: Mutex::new(()),
        };
        if audit.path.exists() {
            if let Err(e) = audit.writable() {
                tracing::error!("{e}");
            }
        }
        audit
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a record can be appended now (the log is opened, created if missing).
    pub fn writable(&self) -> Result<(), Unwritable> {
        self.open().map(drop)
    }

    fn open(&self) -> Result<std::fs::File, Unwritable> {
        let (f, was) = fsx::open_private_append(&self.path).map_err(|source| Unwritable {
            path: self.path.clone(),
            source,
        })?;
        if let Some(mode) = was {
            tracing::warn!(
                "audit log {} was accessible by group or others (mode {mode:04o}); changed to 0600",
                self.path.display()
            );
        }
        Ok(f)
    }

    fn append(&self, mut record: Map<String, Value>) {
        let mut line = Map::new();
        line.insert("time".into(), Value::from(crate::events::epoch_ms()));
        line.append(&mut record);
        let _guard = self.lock.lock().expect("audit lock");
        let written = self.open().and_then(|mut f| {
            writeln!(f, "{}", Value::Object(line)).map_err(|source| Unwritable {
                path: self.path.clone(),
                source,
            })
        });
        if let Err(e) = written {
            tracing::error!("cannot write audit record: {e}");
        }
    }

    /// A state-changing management request and its answer.
    pub fn request(
        &self,
        role: Role,
        from: SocketAddr,
        req: &Request,
        answer: &Response,
        before: Option<Value>,
        after: Option<Value>,
    ) {
        // Deployment operations answer one outcome or an array of them (batch, reloadAll).
        let rejected = match answer.value.as_ref() {
            Some(Value::Array(items)) => items.iter().any(is_rejected),
            Some(v) => is_rejected(v),
            None => false,
        };
        let result = if !answer.is_ok() {
            "error"
        } else if rejected {
            "rejected"
        } else {
            "ok"
        };
        let record = json!({
            "kind": "change",
            "by": By::Role(role).as_str(),
            "who": role.as_str(),
            "from": from.to_string(),
            "what": redacted(req),
            "result": result,
            "status": answer.status,
            "error": answer.error,
            "revision_before": before,
            "revision_after": after,
        });
        self.append(into_map(record));
    }

    /// A sync with disk done by the hot deployer or on SIGHUP. Nothing is recorded when
    /// nothing changed (a touch, or a burst of events for content already active).
    pub fn sync(
        &self,
        by: By,
        what: Value,
        outcomes: &[Outcome],
        before: &BTreeMap<String, u64>,
        after: &BTreeMap<String, u64>,
    ) {
        if outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Unchanged { .. }))
        {
            return;
        }
        let units: Vec<&str> = outcomes.iter().map(Outcome::unit).collect();
        // Where the errors are, not their messages: a parse error may quote the content.
        let errors: Vec<String> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Rejected { unit, errors } => {
                    let at: Vec<String> = errors
                        .iter()
                        .map(|e| format!("{}:{}:{}", e.file, e.line, e.col))
                        .collect();
                    Some(format!(
                        "{unit}: rejected ({}); the messages are in the log and /events",
                        at.join(", ")
                    ))
                }
                _ => None,
            })
            .collect();
        let summary: Vec<Value> = outcomes
            .iter()
            .map(|o| {
                let (outcome, revision) = match o {
                    Outcome::Activated { revision, .. } => ("activated", Some(*revision)),
                    Outcome::Unchanged { revision, .. } => ("unchanged", Some(*revision)),
                    Outcome::Rejected { .. } => ("rejected", None),
                    Outcome::Unloaded { revision, .. } => ("unloaded", Some(*revision)),
                    Outcome::Canary { revision, .. } => ("canary", Some(*revision)),
                };
                json!({"unit": o.unit(), "outcome": outcome, "revision": revision})
            })
            .collect();
        let record = json!({
            "kind": "change",
            "by": by.as_str(),
            "who": null,
            "from": null,
            "what": what,
            "result": if errors.is_empty() { "ok" } else { "rejected" },
            "status": null,
            "error": (!errors.is_empty()).then(|| errors.join("\n")),
            "outcomes": summary,
            "revision_before": pick(before, &units),
            "revision_after": pick(after, &units),
        });
        self.append(into_map(record));
    }

    /// A management request refused before it was looked at; also logged as a warning.
    /// At most `per_second` records a second per reason; the rest are counted and written
    /// as one `suppressed` record when the window closes (see [`Audit::flush_suppressed`]).
    pub fn refused(
        &self,
        reason: Refusal,
        status: u16,
        who: Option<Role>,
        from: SocketAddr,
        what: Value,
        error: &str,
    ) {
        let now = Instant::now();
        let now_ms = crate::events::epoch_ms();
        let (record, closed) = {
            let mut windows = self.windows.lock().expect("audit windows");
            let mut closed = None;
            let w = windows.entry(reason).or_insert_with(|| Window {
                start: now,
                start_ms: now_ms,
                recorded: 0,
                suppressed: 0,
                last_ms: now_ms,
            });
            if now.duration_since(w.start) >= WINDOW {
                if w.suppressed > 0 {
                    closed = Some((w.suppressed, w.start_ms, w.last_ms));
                }
                *w = Window {
                    start: now,
                    start_ms: now_ms,
                    recorded: 0,
                    suppressed: 0,
                    last_ms: now_ms,
                };
            }
            w.last_ms = now_ms;
            let record = w.recorded < self.per_second;
            if record {
                w.recorded += 1;
            } else {
                w.suppressed += 1;
            }
            (record, closed)
        };
        if let Some((count, since, until)) = closed {
            self.suppressed(reason, count, since, until);
        }
        if !record {
            return;
        }
        tracing::warn!(
            reason = reason.as_str(),
            status,
            from = %from,
            "management request refused: {error}"
        );
        let record = json!({
            "kind": "refused",
            "reason": reason.as_str(),
            "who": who.map(Role::as_str),
            "from": from.to_string(),
            "what": what,
            "status": status,
            "error": error,
        });
        self.append(into_map(record));
    }

    /// Writes the summary of every window that closed with suppressed attempts (called
    /// about once a second, so a burst's summary does not wait for the next attempt).
    pub fn flush_suppressed(&self) {
        let now = Instant::now();
        let closed: Vec<(Refusal, u64, u64, u64)> = {
            let mut windows = self.windows.lock().expect("audit windows");
            let mut closed = Vec::new();
            windows.retain(|reason, w| {
                if now.duration_since(w.start) < WINDOW {
                    return true;
                }
                if w.suppressed > 0 {
                    closed.push((*reason, w.suppressed, w.start_ms, w.last_ms));
                }
                false
            });
            closed
        };
        for (reason, count, since, until) in closed {
            self.suppressed(reason, count, since, until);
        }
    }

    fn suppressed(&self, reason: Refusal, count: u64, since: u64, until: u64) {
        let error = format!(
            "suppressed {count} similar refused attempts ({}) beyond {} a second",
            reason.as_str(),
            self.per_second
        );
        tracing::warn!(reason = reason.as_str(), count, "{error}");
        self.append(into_map(json!({
            "kind": "suppressed",
            "reason": reason.as_str(),
            "count": count,
            "since": since,
            "until": until,
            "error": error,
        })));
    }
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The revision of one unit, or a map unit → revision for several (`null` when none).
fn pick(revisions: &BTreeMap<String, u64>, units: &[&str]) -> Value {
    let rev = |u: &str| {
        revisions
            .get(u)
            .map(|r| Value::from(*r))
            .unwrap_or(Value::Null)
    };
    match units {
        [] => Value::Null,
        [one] => rev(one),
        many => Value::Object(many.iter().map(|u| ((*u).to_owned(), rev(u))).collect()),
    }
}

/// The active revision of every unit.
pub async fn revisions(engine: &Engine) -> BTreeMap<String, u64> {
    let units = engine.snapshot();
    units
        .iter()
        .filter_map(|(name, slot)| Some((name.clone(), slot.current.as_ref()?.info.number)))
        .collect()
}

/// The active revision of `units`, as [`pick`] shapes it; `None` for no unit.
pub async fn revisions_of(engine: &Engine, units: &[String]) -> Option<Value> {
    if units.is_empty() {
        return None;
    }
    let all = revisions(engine).await;
    let names: Vec<&str> = units.iter().map(String::as_str).collect();
    Some(pick(&all, &names))
}

/// The request as recorded: the Jolokia echo, with content arguments (unit TOML, which
/// holds header values such as API keys) replaced by their SHA-256 and size, and passwords
/// in URL arguments masked. Which argument is which comes from the operation metadata.
pub fn redacted(req: &Request) -> Value {
    let mut what = req.to_echo_json();
    let Request::Exec {
        mbean,
        operation,
        arguments,
        ..
    } = req
    else {
        return what;
    };
    let Some(op) = deployments::protocol::Bean::of_type(mbean)
        .and_then(|b| deployments::protocol::Operation::spec(b.kind(), operation))
    else {
        return what;
    };
    let redacted: Vec<Value> = arguments
        .iter()
        .enumerate()
        .map(|(i, a)| match (op.args.get(i).map(|x| x.kind), a) {
            (Some(ArgKind::Content), Value::String(s)) => content_digest(s),
            // A cluster deploy: its files, each recorded as its digest; the rest as sent.
            (Some(ArgKind::Content), Value::Object(o))
                if o.get("files").is_some_and(Value::is_object) =>
            {
                let mut o = o.clone();
                if let Some(Value::Object(files)) = o.get_mut("files") {
                    for text in files.values_mut() {
                        *text = content_digest(text.as_str().unwrap_or_default());
                    }
                }
                Value::Object(o)
            }
            // Files: each recorded as its digest.
            (Some(ArgKind::Content), Value::Object(files)) => Value::Object(
                files
                    .iter()
                    .map(|(path, text)| {
                        let digest = match text {
                            Value::String(t) => content_digest(t),
                            other => content_digest(&other.to_string()),
                        };
                        (path.clone(), digest)
                    })
                    .collect(),
            ),
            (Some(ArgKind::Url), Value::String(s)) => Value::String(mask_password(s)),
            _ => a.clone(),
        })
        .collect();
    what["arguments"] = Value::Array(redacted);
    what
}

/// `{"sha256": <hex>, "bytes": <n>}` of a deployed content.
pub fn content_digest(content: &str) -> Value {
    let hash: String = Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({"sha256": hash, "bytes": content.len()})
}

fn mask_password(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deployments::protocol::ObjectName;

    fn exec(op: &str, args: Vec<Value>) -> Request {
        Request::exec(
            ObjectName::parse("esb:type=DeploymentManager").unwrap(),
            op,
            args,
        )
    }

    #[test]
    fn content_is_recorded_as_a_digest_and_url_passwords_masked() {
        let content = "[[sequence]]\nname = \"s\"\nsteps = [{ set_header = { name = \"x-api-key\", value = \"secret\" } }]\n";
        let w = redacted(&exec("deploy", vec![json!("shop"), json!(content)]));
        assert_eq!(w["arguments"][0], "shop");
        assert_eq!(w["arguments"][1]["bytes"], content.len());
        assert_eq!(w["arguments"][1]["sha256"].as_str().unwrap().len(), 64);
        assert!(!w.to_string().contains("secret"), "{w}");
        let ep = Request::exec(
            ObjectName::parse("esb:type=Endpoint,unit=u,name=e").unwrap(),
            "addAddress",
            vec![json!("http://user:hunter2@10.0.0.1:8080/x")],
        );
        let w = redacted(&ep);
        assert_eq!(w["arguments"][0], "http://user:***@10.0.0.1:8080/x");
        // Content sent as files: each file as its digest.
        let files = json!({"unit.toml": content, "more.toml": "x = 1"});
        let w = redacted(&exec(
            "canaryContent",
            vec![json!("shop"), files, json!(10), json!(""), json!("")],
        ));
        assert_eq!(w["arguments"][1]["unit.toml"]["bytes"], content.len());
        assert_eq!(w["arguments"][1]["more.toml"]["bytes"], 5);
        assert!(!w.to_string().contains("secret"), "{w}");
        assert_eq!(w["arguments"][2], 10);
    }

    #[test]
    fn refused_attempts_beyond_the_rate_are_summed_up() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::new(dir.path(), 2);
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for _ in 0..5 {
            audit.refused(Refusal::Origin, 403, None, from, json!({}), "no");
        }
        audit.refused(Refusal::Host, 403, None, from, json!({}), "no");
        // Close the windows as if a second had passed.
        for w in audit.windows.lock().unwrap().values_mut() {
            w.start -= WINDOW;
        }
        audit.flush_suppressed();
        let lines: Vec<Value> = std::fs::read_to_string(audit.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l["kind"].as_str().unwrap(), l["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("refused", "origin"),
                ("refused", "origin"),
                ("refused", "host"),
                ("suppressed", "origin")
            ]
        );
        assert_eq!(lines[3]["count"], 3);
    }
}
