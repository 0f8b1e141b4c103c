//! The [`Executor`]: one management endpoint's client and the round trips every command is
//! made of (a Jolokia bulk request, or one request), with the helpers that read the envelopes
//! of the answers. The commands themselves are in [`crate::exec::run`] (dispatch),
//! [`crate::exec::query`] (reads) and [`crate::exec::control`] (state changes).

use deployments::protocol::{Bean, ObjectName, Request, Response};
use serde_json::Value;

use crate::conn::client::Client;
use crate::exec::error::CmdError;
use crate::present::view::Attrs;

/// Runs commands against one management endpoint.
#[derive(Debug)]
pub struct Executor {
    client: Client,
}

pub(crate) fn server() -> ObjectName {
    Bean::Server.object_name()
}

pub(crate) fn manager() -> ObjectName {
    Bean::Manager.object_name()
}

/// The message of an error envelope without the `error_type : ` prefix.
pub(crate) fn envelope_message(r: &Response) -> String {
    let msg = r
        .error
        .clone()
        .unwrap_or_else(|| format!("status {}", r.status));
    match &r.error_type {
        Some(t) => msg
            .strip_prefix(&format!("{t} : "))
            .map(str::to_string)
            .unwrap_or(msg),
        None => msg,
    }
}

pub(crate) fn value_of<'a>(r: &'a Response, what: &str) -> Result<&'a Value, CmdError> {
    if r.is_ok() {
        Ok(r.value.as_ref().unwrap_or(&Value::Null))
    } else {
        Err(CmdError::failed(format!("{what}: {}", envelope_message(r))))
    }
}

pub(crate) fn attrs_of(v: &Value) -> Attrs {
    match v {
        Value::Object(m) => m.clone(),
        _ => Attrs::new(),
    }
}

pub(crate) fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

impl Executor {
    pub fn new(client: Client) -> Executor {
        Executor { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn bulk(&self, requests: Vec<Request>) -> Result<Vec<Response>, CmdError> {
        Ok(self.client.bulk(&requests)?)
    }

    pub(crate) fn one(&self, request: Request) -> Result<Response, CmdError> {
        Ok(self.bulk(vec![request])?.remove(0))
    }
}
