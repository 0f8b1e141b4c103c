//! The streaming commands: `tap` (one record per finished request of a proxy, or attempt of
//! a consumer) and `events --follow` (every event, reconnecting and resuming after the last
//! one seen when the stream breaks).

use deployments::protocol::tap::Lost;
use serde_json::Value;

use crate::conn::error::ClientError;
use crate::conn::sse::Event;
use crate::exec::error::CmdError;
use crate::exec::executor::Executor;

/// What `follow_events` reports to its caller.
#[derive(Debug)]
pub enum Follow<'a> {
    Event(&'a Event),
    /// The stream broke; reconnecting (the reason).
    Reconnecting(&'a str),
    /// The stream is back, resuming after the last event seen.
    Reconnected,
}

impl Executor {
    /// Streams the finished requests of a proxy to `on` (one JSON record each) until `on`
    /// says stop or the server ends the stream (after `limit`).
    pub fn tap(
        &self,
        name: &str,
        unit: Option<&str>,
        limit: Option<u64>,
        consumer: bool,
        mut on: impl FnMut(&Value) -> bool,
    ) -> Result<(), CmdError> {
        let stream = self.client().tap(name, unit, limit, consumer)?;
        for sse in stream {
            let sse = sse?;
            let v: Value = serde_json::from_str(&sse.data).unwrap_or(Value::Null);
            let v = if sse.event == "lost" {
                serde_json::from_value::<Lost>(v.clone())
                    .ok()
                    .and_then(|l| serde_json::to_value(l).ok())
                    .unwrap_or(v)
            } else {
                v
            };
            if !on(&v) {
                break;
            }
        }
        Ok(())
    }

    /// Streams `/events` live, calling `on` for every event until it returns false. When the
    /// stream breaks it reconnects (backing off up to 5 s) and resumes after the last event
    /// seen. Fails only if the first connection fails or the server refuses the token.
    pub fn follow_events(&self, mut on: impl FnMut(Follow) -> bool) -> Result<(), CmdError> {
        let mut last_id: Option<String> = None;
        let mut stream = self.client().events(None, None)?;
        let mut backoff = std::time::Duration::from_millis(250);
        loop {
            let reason = loop {
                match stream.next() {
                    Some(Ok(sse)) => {
                        backoff = std::time::Duration::from_millis(250);
                        if sse.id.is_some() {
                            last_id = sse.id.clone();
                        }
                        let ev = Event::from(sse);
                        if !on(Follow::Event(&ev)) {
                            return Ok(());
                        }
                        // A stopping server's stream may outlive it (warm restart): reconnect
                        // to whatever serves the endpoint next. Event ids carry on across a
                        // warm restart, so resuming after this event misses nothing.
                        if ev.is_server_stopping() {
                            break "the server is stopping".to_string();
                        }
                    }
                    Some(Err(e)) => break e.to_string(),
                    None => break "the server closed the stream".to_string(),
                }
            };
            if !on(Follow::Reconnecting(&reason)) {
                return Ok(());
            }
            loop {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                match self.client().events(None, last_id.as_deref()) {
                    Ok(s) => {
                        stream = s;
                        if !on(Follow::Reconnected) {
                            return Ok(());
                        }
                        break;
                    }
                    Err(e @ ClientError::Unauthorized { .. }) => return Err(e.into()),
                    Err(e) => {
                        if !on(Follow::Reconnecting(&e.to_string())) {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}
