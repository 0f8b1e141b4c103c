//! `tap` records as people read them: one line per finished request of a proxy — time,
//! method and path, status, latency, revision, the steps that ran with their decisions,
//! the address that answered with its latency, the fault; for a consumer, one per attempt
//! at a message — its source, message id or file name, outcome and attempt in place of
//! method, path and status.

use deployments::protocol::tap::{Outcome, TapEvent, TapRecord};
use serde::Deserialize;
use serde_json::Value;

use crate::present::output::{micros, time_of_day, Line, Span, Tone};

/// One record (`/tap`'s JSON) as a line; a `{"lost": n}` note says what was skipped.
pub fn tap_line(r: &Value) -> Line {
    let r = match TapEvent::deserialize(r) {
        Ok(TapEvent::Lost(l)) => {
            return vec![Span::new(
                format!("… {} request(s) not shown: the tap fell behind", l.lost),
                Tone::Warn,
            )]
        }
        Ok(TapEvent::Record(r)) => *r,
        Err(_) => TapRecord::default(),
    };
    let time = match r.time {
        0 => String::new(),
        t => time_of_day(t),
    };
    let mut line = vec![Span::new(time, Tone::Dim)];
    if let Some(c) = &r.consumer {
        // A consumer's attempt at a message.
        let (outcome, tone) = match c.outcome {
            Outcome::Ack => ("ack", Tone::Good),
            Outcome::Retry => ("retry", Tone::Warn),
            Outcome::DeadLetter => ("dead-letter", Tone::Bad),
        };
        let message = match c.message.as_str() {
            "" => "(no message id)",
            m => m,
        };
        line.push(Span::plain(format!(
            "  {}/{}  r{}  {} {message} ",
            r.unit, c.consumer, r.revision, c.source,
        )));
        line.push(Span::new(outcome, tone));
        if c.attempt > 1 {
            line.push(Span::plain(format!(" (attempt {})", c.attempt)));
        }
    } else {
        let tone = match r.status {
            500.. => Tone::Bad,
            400..=499 => Tone::Warn,
            _ => Tone::Good,
        };
        line.push(Span::plain(format!(
            "  {}/{}  r{}  ",
            r.unit, r.proxy, r.revision
        )));
        line.push(Span::plain(format!("{} {} ", r.method, r.path)));
        line.push(Span::new(r.status.to_string(), tone));
    }
    line.push(Span::plain(format!("  {}", micros(r.latency_us as f64))));
    let steps: Vec<String> = r
        .steps
        .iter()
        .map(|st| match &st.decision {
            Some(d) => format!("{}: {} {d}", st.sequence, st.step),
            None => format!("{}: {}", st.sequence, st.step),
        })
        .collect();
    if !steps.is_empty() {
        line.push(Span::new(format!("  [{}]", steps.join("; ")), Tone::Dim));
    }
    if let Some(a) = &r.answered {
        line.push(Span::plain(format!(
            "  → {} {} ({})",
            a.endpoint,
            a.address,
            micros(a.latency_us as f64)
        )));
    }
    if let Some(fault) = &r.fault {
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
