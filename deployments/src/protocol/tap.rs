//! The records of `GET /tap` (serde both ways): one [`TapRecord`] per finished request of a
//! tapped proxy, or per attempt of a tapped consumer at a message ([`ConsumerTap`] in place
//! of method, path and status), and the [`Lost`] note a tapper that fell behind gets.
//! Reading is lenient: what a record does not carry takes its default.

use serde::{Deserialize, Serialize};

/// A step that ran, and what it decided (a filter's branch, a switch's case).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepTrace {
    pub sequence: String,
    pub step: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// The address that answered and how long it took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Answered {
    pub endpoint: String,
    pub address: String,
    pub latency_us: u64,
}

/// One finished request of a tapped proxy, or one attempt of a tapped consumer at a
/// message (`consumer` set; no proxy, method, path or status then).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TapRecord {
    /// Milliseconds since the epoch, when the request (the attempt) ended.
    #[serde(default)]
    pub time: u64,
    #[serde(default)]
    pub unit: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub proxy: String,
    #[serde(flatten)]
    pub consumer: Option<ConsumerTap>,
    #[serde(default)]
    pub revision: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub status: u16,
    #[serde(default)]
    pub latency_us: u64,
    #[serde(default)]
    pub steps: Vec<StepTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<Answered>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// What a consumer's record has instead of a request: `consumer`, `source` (the
/// `transport/queue` or the inbox directory), `message` (the AMQP message id, the file's
/// name; empty when the message has none), `outcome` and `attempt` (from 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerTap {
    pub consumer: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub message: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub attempt: u32,
}

/// How an attempt at a message ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It went through: acknowledged (the file moved to done/).
    Ack,
    /// It failed and is tried again after a back-off.
    Retry,
    /// Its last attempt failed: dead-lettered (the file moved to failed/).
    DeadLetter,
}

/// The note a tapper gets when it fell behind: how many records it did not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    pub lost: u64,
}

/// One event of the tap stream as read: a record or a [`Lost`] note.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TapEvent {
    Lost(Lost),
    Record(Box<TapRecord>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_round_trip_and_read_as_events() {
        let proxy = TapRecord {
            time: 5,
            unit: "shop".into(),
            proxy: "orders".into(),
            revision: 3,
            method: "GET".into(),
            path: "/o".into(),
            status: 200,
            latency_us: 90,
            steps: vec![StepTrace {
                sequence: "s".into(),
                step: "log".into(),
                decision: None,
            }],
            ..Default::default()
        };
        let json = serde_json::to_value(&proxy).unwrap();
        assert_eq!(
            json,
            json!({"time": 5, "unit": "shop", "proxy": "orders", "revision": 3, "method": "GET",
                   "path": "/o", "status": 200, "latency_us": 90,
                   "steps": [{"sequence": "s", "step": "log"}]})
        );
        assert_eq!(
            serde_json::from_value::<TapEvent>(json).unwrap(),
            TapEvent::Record(Box::new(proxy))
        );
        let consumer = TapRecord {
            unit: "shop".into(),
            consumer: Some(ConsumerTap {
                consumer: "in".into(),
                source: "q".into(),
                message: String::new(),
                outcome: Outcome::DeadLetter,
                attempt: 2,
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&consumer).unwrap();
        assert_eq!(json["outcome"], "dead-letter");
        assert_eq!(serde_json::from_value::<TapRecord>(json).unwrap(), consumer);
        assert_eq!(
            serde_json::from_value::<TapEvent>(json!({"lost": 4})).unwrap(),
            TapEvent::Lost(Lost { lost: 4 })
        );
        assert_eq!(
            serde_json::to_value(Lost { lost: 4 }).unwrap(),
            json!({"lost": 4})
        );
    }
}
