//! Operation argument types: how each is decoded from the JSON arguments of an `exec`
//! (leniently, as Jolokia clients send them: numbers as strings, `"10%"`, comma lists) and
//! encoded back, and which JMX type name the list metadata gives it. A decode error says
//! what the argument must be; [`super::ops`] prefixes it with the argument's place and name.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What an argument is, beyond its JMX type: the audit redacts by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    Bool,
    Text,
    Number,
    Names,
    /// Deployed content (unit TOML or files): recorded as a digest, never as text.
    Content,
    /// A URL, which may carry a password: recorded masked.
    Url,
}

/// A type an operation argument can have.
pub trait ArgValue: Sized {
    /// The JMX type name in list metadata.
    const TYPE: &'static str;
    const KIND: ArgKind;
    /// The value, or what it must be (`" must be a boolean, got 3"`).
    fn decode(v: Option<&Value>) -> Result<Self, String>;
    fn encode(&self) -> Value;
}

fn got(v: Option<&Value>) -> String {
    v.cloned().unwrap_or(Value::Null).to_string()
}

impl ArgValue for bool {
    const TYPE: &'static str = "boolean";
    const KIND: ArgKind = ArgKind::Bool;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        match v {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.as_str() {
                "true" | "on" | "1" => Ok(true),
                "false" | "off" | "0" => Ok(false),
                _ => Err(format!(" must be a boolean, got {}", got(v))),
            },
            _ => Err(format!(" must be a boolean, got {}", got(v))),
        }
    }
    fn encode(&self) -> Value {
        Value::Bool(*self)
    }
}

impl ArgValue for String {
    const TYPE: &'static str = "java.lang.String";
    const KIND: ArgKind = ArgKind::Text;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        match v {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(format!(" must be a string, got {}", got(v))),
        }
    }
    fn encode(&self) -> Value {
        Value::String(self.clone())
    }
}

impl ArgValue for u64 {
    const TYPE: &'static str = "long";
    const KIND: ArgKind = ArgKind::Number;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        let n = match v {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        n.ok_or_else(|| format!(" must be a whole number, got {}", got(v)))
    }
    fn encode(&self) -> Value {
        Value::from(*self)
    }
}

/// Optional text: null, a missing or an empty string are `None` (surrounding blanks are
/// dropped).
impl ArgValue for Option<String> {
    const TYPE: &'static str = "java.lang.String";
    const KIND: ArgKind = ArgKind::Text;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
            _ => Err(format!(" must be a string (or empty), got {}", got(v))),
        }
    }
    fn encode(&self) -> Value {
        Value::String(self.clone().unwrap_or_default())
    }
}

/// A revision number where null or 0 mean the active one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionOrActive(pub Option<u64>);

impl ArgValue for RevisionOrActive {
    const TYPE: &'static str = "long";
    const KIND: ArgKind = ArgKind::Number;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        match v {
            None | Some(Value::Null) => Ok(RevisionOrActive(None)),
            _ => u64::decode(v).map(|n| RevisionOrActive((n > 0).then_some(n))),
        }
    }
    fn encode(&self) -> Value {
        self.0.map(Value::from).unwrap_or(Value::Null)
    }
}

/// A share of requests in percent, 0 to 100: `10`, `12.5` or `"10%"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percent(pub f64);

impl ArgValue for Percent {
    const TYPE: &'static str = "double";
    const KIND: ArgKind = ArgKind::Number;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        let p = match v {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().trim_end_matches('%').trim().parse().ok(),
            _ => None,
        };
        p.filter(|p| (0.0..=100.0).contains(p))
            .map(Percent)
            .ok_or_else(|| {
                " must be a share of requests from 0 to 100, e.g. 10 or \"10%\"".to_owned()
            })
    }
    fn encode(&self) -> Value {
        Value::from(self.0)
    }
}

/// Unit names: an array of strings, or one comma-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names(pub Vec<String>);

impl ArgValue for Names {
    const TYPE: &'static str = "[Ljava.lang.String;";
    const KIND: ArgKind = ArgKind::Names;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        match v {
            Some(Value::Array(a)) => a
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Names)
                .ok_or_else(|| format!(" must be an array of names (strings), got {}", got(v))),
            Some(Value::String(s)) => Ok(Names(
                s.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect(),
            )),
            _ => Err(format!(" must be an array of names, got {}", got(v))),
        }
    }
    fn encode(&self) -> Value {
        Value::from(self.0.clone())
    }
}

/// Pushed content: the text of `unit.toml`, or its files (relative path → text) holding a
/// `unit.toml` and the files it includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    UnitToml(String),
    Files(BTreeMap<String, String>),
}

impl Default for Content {
    fn default() -> Self {
        Content::UnitToml(String::new())
    }
}

impl ArgValue for Content {
    const TYPE: &'static str = "java.lang.Object";
    const KIND: ArgKind = ArgKind::Content;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        match v {
            Some(Value::Object(files)) => files
                .iter()
                .map(|(path, text)| match text {
                    Value::String(t) => Ok((path.clone(), t.clone())),
                    other => Err(format!(
                        ": file \"{path}\" must be a string of text, got {other}"
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Content::Files),
            _ => String::decode(v).map(Content::UnitToml).map_err(|_| {
                format!(
                    " must be the text of unit.toml or an object of files (path → text), got {}",
                    got(v)
                )
            }),
        }
    }
    fn encode(&self) -> Value {
        serde_json::to_value(self).expect("content serializes")
    }
}

/// The URL of an endpoint address (it may hold credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressUrl(pub String);

impl ArgValue for AddressUrl {
    const TYPE: &'static str = "java.lang.String";
    const KIND: ArgKind = ArgKind::Url;
    fn decode(v: Option<&Value>) -> Result<Self, String> {
        String::decode(v).map(AddressUrl)
    }
    fn encode(&self) -> Value {
        Value::String(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T: ArgValue + PartialEq + std::fmt::Debug>(v: T) {
        assert_eq!(T::decode(Some(&v.encode())).unwrap(), v);
    }

    #[test]
    fn arguments_decode_leniently_and_round_trip() {
        assert_eq!(bool::decode(Some(&json!("on"))), Ok(true));
        assert!(bool::decode(Some(&json!(3)))
            .unwrap_err()
            .contains("boolean"));
        assert_eq!(u64::decode(Some(&json!("12"))), Ok(12));
        assert_eq!(String::decode(Some(&json!(7))), Ok("7".into()));
        assert_eq!(Percent::decode(Some(&json!("10%"))), Ok(Percent(10.0)));
        assert!(Percent::decode(Some(&json!(101))).is_err());
        assert_eq!(
            Names::decode(Some(&json!("a, b,"))),
            Ok(Names(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            RevisionOrActive::decode(Some(&json!(0))),
            Ok(RevisionOrActive(None))
        );
        assert_eq!(RevisionOrActive::decode(None), Ok(RevisionOrActive(None)));
        assert_eq!(<Option<String>>::decode(Some(&json!(" "))), Ok(None));
        let bad = Content::decode(Some(&json!({"unit.toml": 1}))).unwrap_err();
        assert!(bad.contains("file \"unit.toml\""), "{bad}");
        round_trip(true);
        round_trip(42u64);
        round_trip("x".to_owned());
        round_trip(Some("x-canary=1".to_owned()));
        round_trip(None::<String>);
        round_trip(Percent(12.5));
        round_trip(Names(vec!["a".into()]));
        round_trip(RevisionOrActive(Some(3)));
        round_trip(RevisionOrActive(None));
        round_trip(Content::UnitToml("[unit]".into()));
        round_trip(Content::Files(
            [("unit.toml".to_owned(), "x".to_owned())].into(),
        ));
        round_trip(AddressUrl("http://h:1".into()));
    }
}
