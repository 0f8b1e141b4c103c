//! `tap` records as people read them: one line per finished request of a proxy — time,
//! method and path, status, latency, revision, the steps that ran with their decisions,
//! the address that answered with its latency, the fault; for a consumer, one per attempt
//! at a message — its source, message id or file name, outcome and attempt in place of
//! method, path and status.

use serde_json::Value;

use crate::present::output::{micros, time_of_day, Line, Span, Tone};

/// One record (`/tap`'s JSON) as a line; a `{"lost": n}` note says what was skipped.
pub fn tap_line(r: &Value) -> Line {
    if let Some(n) = r.get("lost").and_then(Value::as_u64) {
        return vec![Span::new(
            format!("… {n} request(s) not shown: the tap fell behind"),
            Tone::Warn,
        )];
    }
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    let n = |k: &str| r.get(k).and_then(Value::as_u64);
    let mut line = vec![Span::new(
        n("time").map(time_of_day).unwrap_or_default(),
        Tone::Dim,
    )];
    if r.get("consumer").is_some() {
        // A consumer's attempt at a message.
        let outcome = s("outcome");
        let tone = match outcome {
            "ack" => Tone::Good,
            "retry" => Tone::Warn,
            _ => Tone::Bad,
        };
        let message = match s("message") {
            "" => "(no message id)",
            m => m,
        };
        line.push(Span::plain(format!(
            "  {}/{}  r{}  {} {message} ",
            s("unit"),
            s("consumer"),
            n("revision").unwrap_or(0),
            s("source"),
        )));
        line.push(Span::new(outcome.to_string(), tone));
        if let Some(a) = n("attempt").filter(|a| *a > 1) {
            line.push(Span::plain(format!(" (attempt {a})")));
        }
    } else {
        let status = n("status").unwrap_or(0);
        let tone = match status {
            500.. => Tone::Bad,
            400..=499 => Tone::Warn,
            _ => Tone::Good,
        };
        line.push(Span::plain(format!(
            "  {}/{}  r{}  ",
            s("unit"),
            s("proxy"),
            n("revision").unwrap_or(0)
        )));
        line.push(Span::plain(format!("{} {} ", s("method"), s("path"))));
        line.push(Span::new(status.to_string(), tone));
    }
    line.push(Span::plain(format!(
        "  {}",
        micros(n("latency_us").unwrap_or(0) as f64)
    )));
    let steps: Vec<String> = r
        .get("steps")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|st| {
                    let step = st.get("step").and_then(Value::as_str).unwrap_or("?");
                    let seq = st.get("sequence").and_then(Value::as_str).unwrap_or("?");
                    match st.get("decision").and_then(Value::as_str) {
                        Some(d) => format!("{seq}: {step} {d}"),
                        None => format!("{seq}: {step}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if !steps.is_empty() {
        line.push(Span::new(format!("  [{}]", steps.join("; ")), Tone::Dim));
    }
    if let Some(a) = r.get("answered") {
        let f = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
        let us = a.get("latency_us").and_then(Value::as_u64).unwrap_or(0);
        line.push(Span::plain(format!(
            "  → {} {} ({})",
            f("endpoint"),
            f("address"),
            micros(us as f64)
        )));
    }
    if let Some(fault) = r.get("fault").and_then(Value::as_str) {
        line.push(Span::new(format!("  fault: {fault}"), Tone::Bad));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::present::output::plain;
    use serde_json::json;

    #[test]
    fn a_record_reads_as_one_line() {
        let r = json!({
            "time": 1_714_565_584_123u64, "unit": "shop", "proxy": "orders", "revision": 3,
            "method": "GET", "path": "/orders/7", "status": 200, "latency_us": 3100,
            "steps": [
                {"sequence": "orders-in", "step": "set_header x-v"},
                {"sequence": "orders-in", "step": "switch", "decision": "case \"eu\" → endpoint eu"}
            ],
            "answered": {"endpoint": "eu", "address": "http://127.0.0.1:9000", "latency_us": 2500}
        });
        let text = plain(&tap_line(&r));
        assert!(
            text.ends_with(
                "shop/orders  r3  GET /orders/7 200  3.1ms  [orders-in: set_header x-v; \
             orders-in: switch case \"eu\" → endpoint eu]  → eu http://127.0.0.1:9000 (2.5ms)"
            ),
            "{text}"
        );
        let f = json!({"unit": "shop", "proxy": "orders", "revision": 1, "method": "POST",
            "path": "/orders", "status": 502, "latency_us": 90, "steps": [],
            "fault": "cannot connect"});
        assert!(plain(&tap_line(&f)).ends_with("POST /orders 502  90µs  fault: cannot connect"));
        assert!(plain(&tap_line(&json!({"lost": 4}))).contains("4 request(s) not shown"));
        let c = json!({"time": 1_714_565_584_123u64, "unit": "shop", "consumer": "in",
            "source": "/srv/inbox", "message": "a.json", "outcome": "retry", "attempt": 2,
            "revision": 4, "latency_us": 1500, "steps": [{"sequence": "s", "step": "log"}],
            "answered": {"endpoint": "b", "address": "http://127.0.0.1:9000", "latency_us": 900},
            "fault": "endpoint \"b\" answered 503"});
        assert!(
            plain(&tap_line(&c)).ends_with(
                "shop/in  r4  /srv/inbox a.json retry (attempt 2)  1.5ms  [s: log]  \
                 → b http://127.0.0.1:9000 (900µs)  fault: endpoint \"b\" answered 503"
            ),
            "{}",
            plain(&tap_line(&c))
        );
    }
}
