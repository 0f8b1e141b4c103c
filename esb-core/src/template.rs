//! Evaluation of compiled templates against a message. Placeholders that find nothing
//! evaluate to the empty string; `${json./p}` reads the (already buffered) JSON body.

use crate::message::Message;
use deployments::template::{Segment, Template, Var};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// A runtime flag: its value, and whether an operator set it (then a new revision's
/// default does not override it).
#[derive(Debug, Default)]
pub struct Flag {
    value: AtomicBool,
    pinned: AtomicBool,
}

impl Flag {
    /// The value: the operator's if one set it, else the revision's default.
    pub fn value(&self, default: bool) -> bool {
        if self.is_pinned() {
            self.value.load(Relaxed)
        } else {
            default
        }
    }

    /// An operator's flip: kept across reloads and restarts.
    pub fn set(&self, on: bool) {
        self.value.store(on, Relaxed);
        self.pinned.store(true, Relaxed);
    }

    pub fn is_pinned(&self) -> bool {
        self.pinned.load(Relaxed)
    }
}

/// Values of the running unit revision used by `${unit.*}`, and its runtime flags
/// (`${flag.*}`), which operators flip without a deploy.
#[derive(Debug, Clone, Default)]
pub struct UnitVars {
    pub name: String,
    pub version: String,
    pub revision: String,
    /// Flag → (its shared state, this revision's default).
    pub flags: std::collections::HashMap<String, (std::sync::Arc<Flag>, bool)>,
}

pub fn eval<'m>(t: &'m Template, msg: &'m Message, unit: &'m UnitVars) -> Cow<'m, str> {
    match t.segments.as_slice() {
        [] => Cow::Borrowed(""),
        [Segment::Text(s)] => Cow::Borrowed(s),
        [Segment::Var(v)] => var(v, msg, unit),
        segments => {
            let mut out = String::new();
            for s in segments {
                match s {
                    Segment::Text(t) => out.push_str(t),
                    Segment::Var(v) => out.push_str(&var(v, msg, unit)),
                }
            }
            Cow::Owned(out)
        }
    }
}

fn var<'m>(v: &'m Var, msg: &'m Message, unit: &'m UnitVars) -> Cow<'m, str> {
    match v {
        Var::Method => Cow::Borrowed(msg.method.as_str()),
        Var::Path => Cow::Borrowed(msg.path()),
        Var::Body => msg
            .payload
            .bytes()
            .map(|b| String::from_utf8_lossy(b))
            .unwrap_or(Cow::Borrowed("")),
        Var::Query(name) => msg.query_param(name).unwrap_or(Cow::Borrowed("")),
        Var::Header(name) => Cow::Borrowed(
            msg.headers
                .get(name.as_str())
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        ),
        Var::Json(pointer) => match msg.json_pointer(pointer) {
            Some(v) => crate::json::as_text(v),
            None => Cow::Borrowed(""),
        },
        Var::Prop(name) => Cow::Borrowed(msg.prop(name).unwrap_or("")),
        Var::Flag(name) => Cow::Borrowed(match unit.flags.get(name) {
            Some((f, default)) if f.value(*default) => "true",
            _ => "false",
        }),
        Var::UnitName => Cow::Borrowed(&unit.name),
        Var::UnitVersion => Cow::Borrowed(&unit.version),
        Var::UnitRevision => Cow::Borrowed(&unit.revision),
    }
}

/// A JSON value template: string leaves are templates; a leaf that is exactly one
/// `${json./p}` keeps the JSON type of what it points at.
#[derive(Debug, Clone)]
pub enum JsonTemplate {
    Literal(serde_json::Value),
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// Compiles a validated TOML value (templates were checked by the validator).
    pub fn compile(v: &toml::Value) -> JsonTemplate {
        match v {
            toml::Value::String(s) => {
                let t = Template::parse(s).unwrap_or_default();
                match t.literal() {
                    Some(l) => JsonTemplate::Literal(serde_json::Value::String(l.to_owned())),
                    None => JsonTemplate::Text(t),
                }
            }
            toml::Value::Array(a) => {
                JsonTemplate::Array(a.iter().map(JsonTemplate::compile).collect())
            }
            // Members in the order serde_json's map keeps them, so that writing them out
            // directly gives the same text as serializing a rendered `Value`.
            toml::Value::Table(t) => {
                let order: serde_json::Map<String, serde_json::Value> = t
                    .keys()
                    .map(|k| (k.clone(), serde_json::Value::Null))
                    .collect();
                JsonTemplate::Object(
                    order
                        .keys()
                        .map(|k| (k.clone(), JsonTemplate::compile(&t[k])))
                        .collect(),
                )
            }
            other => JsonTemplate::Literal(
                serde_json::to_value(other).unwrap_or(serde_json::Value::Null),
            ),
        }
    }

    pub fn reads_body(&self) -> bool {
        match self {
            JsonTemplate::Literal(_) => false,
            JsonTemplate::Text(t) => t.reads_body(),
            JsonTemplate::Array(a) => a.iter().any(|x| x.reads_body()),
            JsonTemplate::Object(o) => o.iter().any(|(_, x)| x.reads_body()),
        }
    }

    pub fn render(&self, msg: &Message, unit: &UnitVars) -> serde_json::Value {
        match self {
            JsonTemplate::Literal(v) => v.clone(),
            JsonTemplate::Text(t) => {
                if let Some(Var::Json(p)) = t.single_var() {
                    return msg
                        .json_pointer(p)
                        .and_then(|v| serde_json::from_str(v.get()).ok())
                        .unwrap_or(serde_json::Value::Null);
                }
                serde_json::Value::String(eval(t, msg, unit).into_owned())
            }
            JsonTemplate::Array(a) => {
                serde_json::Value::Array(a.iter().map(|x| x.render(msg, unit)).collect())
            }
            JsonTemplate::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), x.render(msg, unit)))
                    .collect(),
            ),
        }
    }

    /// Writes the JSON [`JsonTemplate::render`] would build, without building it.
    pub fn render_to(&self, out: &mut Vec<u8>, msg: &Message, unit: &UnitVars) {
        match self {
            JsonTemplate::Literal(v) => {
                serde_json::to_writer(&mut *out, v).expect("a Vec takes any JSON")
            }
            JsonTemplate::Text(t) => {
                if let Some(Var::Json(p)) = t.single_var() {
                    match msg.json_pointer(p) {
                        Some(v) => crate::json::write_canonical(v, out),
                        None => out.extend_from_slice(b"null"),
                    }
                    return;
                }
                serde_json::to_writer(&mut *out, &*eval(t, msg, unit))
                    .expect("a Vec takes any JSON");
            }
            JsonTemplate::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    x.render_to(out, msg, unit);
                }
                out.push(b']');
            }
            JsonTemplate::Object(o) => {
                out.push(b'{');
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).expect("a Vec takes any JSON");
                    out.push(b':');
                    x.render_to(out, msg, unit);
                }
                out.push(b'}');
            }
        }
    }
}
