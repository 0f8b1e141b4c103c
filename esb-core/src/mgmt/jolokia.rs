//! Serving Jolokia requests against the beans: read (one, several or all attributes,
//! pattern names, inner paths), write, exec, search, list and version, each answered in
//! the standard envelope.

use super::auth::Role;
use super::beans::{self, Bean};
use crate::server::Server;
use deployments::protocol::{
    list_tree, split_path, Attributes, ManagementError, Request, Response, VersionInfo,
};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Answers one parsed request. `via_get` refuses state changes.
pub async fn answer(server: &Arc<Server>, req: &Request, role: Role, via_get: bool) -> Response {
    let echo = req.to_echo_json();
    match serve(server, req, role, via_get).await {
        Ok(v) => Response::ok(echo, v),
        Err(e) => Response::from_error(echo, &e),
    }
}

async fn serve(
    server: &Arc<Server>,
    req: &Request,
    role: Role,
    via_get: bool,
) -> Result<Value, ManagementError> {
    if req.is_state_changing() {
        if via_get {
            return Err(ManagementError::MethodNotAllowed { kind: req.kind() });
        }
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
                .map(|n| Value::String(n.canonical()))
                .collect();
            Ok(Value::Array(names))
        }
        Request::List { path, .. } => {
            let infos: Vec<_> = beans::all(server)
                .await
                .iter()
                .map(|b| (b.object_name(), beans::info(b)))
                .collect();
            list_tree(&infos, path.as_deref(), req.max_depth())
        }
        Request::Read {
            mbean,
            attribute,
            path,
            ..
        } => {
            if mbean.is_pattern() {
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
                    out.insert(b.object_name().canonical(), Value::Object(picked));
                }
                if out.is_empty() {
                    return Err(ManagementError::instance_not_found(mbean));
                }
                return Ok(Value::Object(out));
            }
            let bean = beans::resolve(server, mbean).await?;
            let all = beans::read_all(server, &bean).await?;
            let value = select(&bean, all, attribute.as_ref())?;
            match path {
                Some(p) => inner(value, p),
                None => Ok(value),
            }
        }
        Request::Write {
            mbean,
            attribute,
            value,
            ..
        } => {
            let bean = beans::resolve(server, mbean).await?;
            beans::write(server, &bean, attribute, value).await
        }
        Request::Exec {
            mbean,
            operation,
            arguments,
            ..
        } => {
            let bean = beans::resolve(server, mbean).await?;
            // Jolokia clients may name an operation with its signature: `op(java.lang.String)`.
            let op = operation.split('(').next().unwrap_or(operation);
            let result = beans::exec(server, &bean, op, arguments).await;
            // Operator state (paused, maintenance, addresses…) outlives restarts.
            if result.is_ok() && beans::changes_operator_state(&bean, op) {
                crate::operator::save(server).await;
            }
            result
        }
    }
}

fn select(
    bean: &Bean,
    mut all: Map<String, Value>,
    attribute: Option<&Attributes>,
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
