//! Serving Jolokia requests against the beans: read (one, several or all attributes,
//! pattern names, inner paths), write, exec, search, list and version, each answered in
//! the standard envelope, with the processing parameters honoured (value shaping,
//! `ignoreErrors`, `canonicalNaming`, `includeStackTrace`). The history store of
//! `jolokia:type=Config` is not kept: requests for it get a not-supported error.

use super::beans::{self, Bean};
use crate::auth::Role;
use crate::server::Server;
use deployments::protocol::{
    list_tree_named, split_path, Attributes, ManagementError, ObjectName, Operation, Request,
    Response, Shaping, VersionInfo,
};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Answers one parsed request (state changes over GET are refused before, by
/// [`refuse_change_over_get`]).
pub async fn answer(server: &Arc<Server>, req: &Request, role: Role) -> Response {
    let echo = req.to_echo_json();
    let response = match serve(server, req, role).await {
        Ok(v) => Response::ok(echo, v),
        Err(e) => Response::from_error(echo, &e),
    };
    if !response.is_ok() && req.config().is_some_and(|c| c.include_stack_trace()) {
        response.with_stacktrace()
    } else {
        response
    }
}

/// The refusal of a write/exec sent with HTTP GET while `[management] allow_get_changes`
/// is off: status 403 inside the envelope (answered with HTTP 200).
pub fn refuse_change_over_get(req: &Request, allowed: bool) -> Option<Response> {
    (req.is_state_changing() && !allowed).then(|| {
        let r = Response::from_error(
            req.to_echo_json(),
            &ManagementError::ChangeOverGet { kind: req.kind() },
        );
        if req.config().is_some_and(|c| c.include_stack_trace()) {
            r.with_stacktrace()
        } else {
            r
        }
    })
}

/// Jolokia's own MBeans (`jolokia:type=Config` with the history store, debug store):
/// esb has none of them. The error names what was asked for and what to use instead.
fn jolokia_domain(mbean: &ObjectName, member: Option<&str>) -> Result<(), ManagementError> {
    if mbean.domain() != "jolokia" {
        return Ok(());
    }
    let what = match member {
        Some(m) => format!("{} of {}", m, mbean.original()),
        None => mbean.original(),
    };
    Err(ManagementError::NotSupported {
        mbean: mbean.original(),
        message: format!(
            "{what}: esb does not keep Jolokia's history store (jolokia:type=Config, as used by \
             check_jmx4perl --delta and setHistoryLimitForAttribute), and responses never carry \
             `history`; compute deltas and rates from /metrics (Prometheus rate()/increase()) \
             or from two reads of the counter"
        ),
    })
}

async fn serve(server: &Arc<Server>, req: &Request, role: Role) -> Result<Value, ManagementError> {
    let config = req.config();
    let shaping = Shaping::of(config);
    let canonical = config.is_none_or(|c| c.canonical_naming());
    let ignore_errors = config.is_some_and(|c| c.ignore_errors());
    let display = |n: &ObjectName| {
        if canonical {
            n.canonical()
        } else {
            n.original()
        }
    };
    admit(server, req, role)?;
    match req {
        Request::Version { .. } => {
            Ok(VersionInfo::new("esb", env!("CARGO_PKG_VERSION")).to_value())
        }
        Request::Search { mbean, .. } => {
            let names: Vec<Value> = beans::all(server)
                .await
                .iter()
                .map(|b| b.object_name())
                .filter(|n| mbean.matches(n))
                .map(|n| Value::String(display(&n)))
                .collect();
            Ok(Value::Array(names))
        }
        Request::List { path, .. } => {
            let infos: Vec<_> = beans::all(server)
                .await
                .iter()
                .map(|b| (b.object_name(), beans::info(b)))
                .collect();
            list_tree_named(&infos, path.as_deref(), req.max_depth(), canonical)
        }
        Request::Read {
            mbean,
            attribute,
            path,
            ..
        } => {
            if mbean.is_pattern() {
                return read_pattern(server, mbean, attribute.as_ref(), &shaping, display).await;
            }
            let bean = beans::resolve(server, mbean).await?;
            let all = beans::read_all(server, &bean).await?;
            let several = !matches!(attribute, Some(Attributes::One(_)));
            let value = select(&bean, all, attribute.as_ref(), ignore_errors)?;
            let value = match path {
                Some(p) => inner(value, p)?,
                None => value,
            };
            // Several attributes: the limits apply to each attribute's value.
            Ok(match value {
                Value::Object(m) if several && path.is_none() => {
                    Value::Object(m.into_iter().map(|(k, v)| (k, shaping.apply(v))).collect())
                }
                v => shaping.apply(v),
            })
        }
        Request::Write {
            mbean,
            attribute,
            value,
            ..
        } => {
            let bean = beans::resolve(server, mbean).await?;
            beans::write(server, &bean, attribute, value)
                .await
                .map(|v| shaping.apply(v))
        }
        Request::Exec {
            mbean,
            operation,
            arguments,
            ..
        } => {
            let bean = beans::resolve(server, mbean).await?;
            let op = Operation::decode(bean.kind(), mbean, operation, arguments)?;
            let result = beans::exec(server, &bean, &op).await;
            // Operator state (paused, maintenance, addresses…) outlives restarts.
            if result.is_ok() && op.changes_operator_state() {
                crate::operator::save(server).await;
            }
            result.map(|v| shaping.apply(v))
        }
    }
}

/// What a request must pass before it is served: not one of Jolokia's own MBeans, the
/// control role for a write or exec, and a writable audit log for a state change.
fn admit(server: &Server, req: &Request, role: Role) -> Result<(), ManagementError> {
    match req {
        Request::Read {
            mbean, attribute, ..
        } => jolokia_domain(
            mbean,
            attribute.as_ref().and_then(|a| a.names().first().copied()),
        )?,
        Request::Write {
            mbean, attribute, ..
        } => jolokia_domain(mbean, Some(attribute))?,
        Request::Exec {
            mbean, operation, ..
        } => jolokia_domain(mbean, Some(operation))?,
        Request::Search { .. } | Request::List { .. } | Request::Version { .. } => {}
    }
    if req.is_state_changing() {
        if role < Role::Control {
            return Err(ManagementError::Forbidden {
                reason: format!(
                    "{} needs the control role; this token has the monitor role",
                    req.kind()
                ),
            });
        }
        // Fail closed: no state change that cannot be audited. Reads go on.
        if beans::changes_state(req) {
            if let Err(e) = server.audit.writable() {
                tracing::error!("{e}");
                return Err(ManagementError::Unavailable(e.to_string()));
            }
        }
    }
    Ok(())
}

/// A read of an MBean pattern: the attributes asked for of every matching bean that has
/// them, by name.
async fn read_pattern(
    server: &Server,
    mbean: &ObjectName,
    attribute: Option<&Attributes>,
    shaping: &Shaping,
    display: impl Fn(&ObjectName) -> String,
) -> Result<Value, ManagementError> {
    let mut out = Map::new();
    for b in beans::all(server)
        .await
        .into_iter()
        .filter(|b| mbean.matches(&b.object_name()))
    {
        let Ok(all) = beans::read_all(server, &b).await else {
            continue;
        };
        let picked = match attribute {
            None => all,
            Some(a) => {
                let m: Map<String, Value> = a
                    .names()
                    .into_iter()
                    .filter_map(|n| all.get(n).map(|v| (n.to_owned(), v.clone())))
                    .collect();
                if m.is_empty() {
                    continue;
                }
                m
            }
        };
        let picked = picked
            .into_iter()
            .map(|(k, v)| (k, shaping.apply(v)))
            .collect();
        out.insert(display(&b.object_name()), Value::Object(picked));
    }
    if out.is_empty() {
        return Err(ManagementError::instance_not_found(mbean));
    }
    Ok(Value::Object(out))
}

/// The attributes a read asks for; with `ignore_errors`, missing ones of a multi-attribute
/// read are left out instead of failing the read.
fn select(
    bean: &Bean,
    mut all: Map<String, Value>,
    attribute: Option<&Attributes>,
    ignore_errors: bool,
) -> Result<Value, ManagementError> {
    let name = bean.object_name();
    let missing = |a: &str, all: &Map<String, Value>| {
        ManagementError::attribute_not_found(&name, a, all.keys().map(|k| k.as_str()))
    };
    match attribute {
        None => Ok(Value::Object(all)),
        Some(Attributes::One(a)) => match all.remove(a.as_str()) {
            Some(v) => Ok(v),
            None => Err(missing(a, &all)),
        },
        Some(Attributes::Many(list)) => {
            let mut m = Map::new();
            for a in list {
                match all.get(a.as_str()) {
                    Some(v) => {
                        m.insert(a.clone(), v.clone());
                    }
                    None if ignore_errors => {}
                    None => return Err(missing(a, &all)),
                }
            }
            Ok(Value::Object(m))
        }
    }
}

/// Navigates an inner path (`Addresses/0/url`).
fn inner(value: Value, path: &str) -> Result<Value, ManagementError> {
    let mut v = value;
    for seg in split_path(path)? {
        v = match v {
            Value::Object(mut m) => m.remove(&seg),
            Value::Array(mut a) => seg
                .parse::<usize>()
                .ok()
                .filter(|i| *i < a.len())
                .map(|i| a.swap_remove(i)),
            _ => None,
        }
        .ok_or_else(|| {
            ManagementError::BadRequest(format!("inner path \"{path}\": no element \"{seg}\""))
        })?;
    }
    Ok(v)
}
