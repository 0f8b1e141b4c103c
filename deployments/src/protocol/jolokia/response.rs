//! The response envelope: value or error with status, timestamp and the request echoed.

use super::*;

pub(super) fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The Jolokia response envelope. Serialized exactly as Jolokia does, absent fields skipped:
/// success `{"request":{..},"value":..,"status":200,"timestamp":1700000000}`; error
/// `{"request":{..},"status":404,"error_type":"..","error":"<error_type> : <message>"}`
/// (Jolokia sends no timestamp with errors; `stacktrace` only when asked for, see
/// [`Response::with_stacktrace`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request echo ([`Request::to_echo_json`]); `Value::Null` (omitted) when none was parsed.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub request: Value,
    /// The result; `Some(Value::Null)` is sent as `"value":null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub value: Option<Value>,
    pub status: u16,
    /// Seconds since the Unix epoch; set on success only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sent with errors only when the request says `includeStackTrace=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<String>,
}

impl Response {
    /// Success (status 200), timestamped with the current time.
    pub fn ok(request: Value, value: Value) -> Response {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Response::ok_at(request, value, now)
    }

    /// Success (status 200) with an explicit timestamp (seconds since the Unix epoch).
    pub fn ok_at(request: Value, value: Value, timestamp: u64) -> Response {
        Response {
            request,
            value: Some(value),
            status: 200,
            timestamp: Some(timestamp),
            error_type: None,
            error: None,
            stacktrace: None,
        }
    }

    /// Error response; `error` becomes `"<error_type> : <message>"` as in Jolokia.
    pub fn error(request: Value, status: u16, error_type: &str, message: &str) -> Response {
        Response {
            request,
            value: None,
            status,
            timestamp: None,
            error_type: Some(error_type.to_string()),
            error: Some(format!("{error_type} : {message}")),
            stacktrace: None,
        }
    }

    /// Adds Jolokia's `stacktrace` to an error response. esb has no Java stack: the trace
    /// is the exception line (`<error_type>: <message>`) followed by the esb frame that
    /// answered, so tools that print it show something true.
    pub fn with_stacktrace(mut self) -> Response {
        if let (Some(t), Some(e)) = (&self.error_type, &self.error) {
            let message = e.strip_prefix(&format!("{t} : ")).unwrap_or(e);
            self.stacktrace = Some(format!(
                "{t}: {message}\n\tat esb management endpoint (no Java stack)\n"
            ));
        }
        self
    }

    /// Error response for a [`ProtocolError`] or [`ManagementError`].
    pub fn from_error<E: JolokiaError + ?Sized>(request: Value, err: &E) -> Response {
        Response::error(
            request,
            err.status(),
            err.error_type(),
            &err.jolokia_message(),
        )
    }

    /// True for status 200.
    pub fn is_ok(&self) -> bool {
        self.status == 200
    }
}
