//! Checks before activation: each `[[check]]` of a unit is a synthetic request sent through
//! the *new* revision's own pipeline — routed among its proxies, through its sequences and
//! endpoints, to the real backends — before the swap, so clients never see it. Every
//! expectation that fails becomes a diagnostic on the check (what was expected, what came
//! back), and the deploy is rejected while the old revision keeps serving.

use crate::body::Payload;
use crate::message::Message;
use crate::revision::Revision;
use crate::router::{Lookup, RoutingTable};
use deployments::model::Check;
use deployments::Diagnostic;
use http_body_util::BodyExt;
use std::time::Instant;

/// The largest answer body a check reads.
const MAX_BODY: usize = 1 << 20;

/// Runs every check of `rev`; the diagnostics of those that failed.
pub async fn run(rev: &Revision, all_transports: &[String]) -> Vec<Diagnostic> {
    let table = RoutingTable::build(rev.proxies.iter(), all_transports);
    let mut errors = Vec::new();
    for check in &rev.parsed.unit.checks {
        if let Err(why) = run_one(&table, all_transports, check).await {
            let o = &check.origin;
            errors.push(Diagnostic::new(&*o.file, o.line, o.col, why).element(
                deployments::model::element_label("check", check.name.get_ref()),
            ));
        }
    }
    errors
}

fn clip(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

async fn run_one(table: &RoutingTable, transports: &[String], c: &Check) -> Result<(), String> {
    let method: http::Method = c
        .method
        .get_ref()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("invalid method {}", c.method.get_ref()))?;
    let uri: http::Uri = c
        .path
        .get_ref()
        .parse()
        .map_err(|e| format!("invalid path {}: {e}", c.path.get_ref()))?;
    let mut found = None;
    for t in transports {
        if let Lookup::Found(p) = table.lookup(t, &method, uri.path()) {
            found = Some(p);
            break;
        }
    }
    let proxy = found.ok_or_else(|| {
        format!(
            "no proxy of the new revision serves {method} {}",
            uri.path()
        )
    })?;
    let mut headers = http::HeaderMap::new();
    for (k, v) in &c.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    let body = bytes::Bytes::from(c.body.clone().unwrap_or_default());
    let msg = Message::new(method.clone(), uri, headers, Payload::Full(body));
    let started = Instant::now();
    let exchange = async {
        let resp = proxy.probe(msg).await;
        let (parts, mut body) = resp.into_parts();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading the answer failed: {e}"))?;
            if let Ok(d) = frame.into_data() {
                if bytes.len() + d.len() > MAX_BODY {
                    return Err(format!("the answer is larger than {MAX_BODY} bytes"));
                }
                bytes.extend_from_slice(&d);
            }
        }
        Ok::<_, String>((parts, bytes))
    };
    let (parts, bytes) = tokio::time::timeout(c.timeout, exchange)
        .await
        .map_err(|_| {
            format!(
                "no answer within {} ({method} {})",
                deployments::model::duration::format(&c.timeout),
                c.path.get_ref()
            )
        })??;
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&bytes);
    let e = &c.expect;
    let status = parts.status.as_u16();
    match e.status {
        Some(want) if want != status => {
            return Err(format!(
                "expected status {want}, got {status}: {}",
                clip(&text)
            ))
        }
        None if !parts.status.is_success() => {
            return Err(format!(
                "expected a 2xx status, got {status}: {}",
                clip(&text)
            ))
        }
        _ => {}
    }
    for (name, want) in &e.headers {
        let got = parts
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            return Err(format!(
                "expected header {name}: {want}, got {}",
                got.map(|g| format!("{name}: {g}"))
                    .unwrap_or_else(|| "no such header".into())
            ));
        }
    }
    if let Some(want) = &e.body_contains {
        if !text.contains(want.as_str()) {
            return Err(format!(
                "expected the body to contain {want:?}, got: {}",
                clip(&text)
            ));
        }
    }
    if !e.json.is_empty() {
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|err| format!("expected a JSON body ({err}), got: {}", clip(&text)))?;
        for (pointer, want) in &e.json {
            let want = serde_json::to_value(want).unwrap_or_default();
            match json.pointer(pointer) {
                Some(got) if *got == want => {}
                Some(got) => return Err(format!("expected {pointer} = {want}, got {got}")),
                None => {
                    return Err(format!(
                        "expected {pointer} = {want}, but the body has no {pointer}"
                    ))
                }
            }
        }
    }
    if let Some(max) = e.max_latency {
        if took > max {
            return Err(format!(
                "expected an answer within {}, took {} ms",
                deployments::model::duration::format(&max),
                crate::revision::millis(took)
            ));
        }
    }
    Ok(())
}
