//! JSON pointers (RFC 6901) resolved on a body's bytes without building the document:
//! the body is indexed level by level as pointers go through it ([`Index`]: where each
//! member is, strings not copied), so each part is read once however many pointers look
//! into it; a value comes back as its raw JSON text in the body (a body that is not JSON
//! has none).
//! [`write_canonical`] writes such a value as serializing it from `serde_json::Value` would.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

/// The value `pointer` names in the JSON document `doc`, if `doc` is JSON and has it.
pub fn pointer<'a>(doc: &'a [u8], pointer: &str) -> Option<&'a RawValue> {
    pointer_in(doc, &Index::build(doc)?, pointer)
}

/// Where the members (or elements) of a JSON value are in the document, each member's own
/// index built when a pointer first goes through it: every part of a body is read once
/// however many pointers look into it.
#[derive(Debug)]
pub struct Index {
    whole: Range<usize>,
    top: Top,
    children: Vec<OnceLock<Option<Index>>>,
}

#[derive(Debug)]
enum Top {
    Object(Vec<(String, Range<usize>)>),
    Array(Vec<Range<usize>>),
    Scalar,
}

impl Index {
    /// Reads (and so validates) the whole document; `None` if it is not JSON.
    pub fn build(doc: &[u8]) -> Option<Index> {
        let start = doc.iter().position(|b| !b.is_ascii_whitespace())?;
        let end = doc.len() - doc.iter().rev().position(|b| !b.is_ascii_whitespace())?;
        Index::build_at(doc, start..end)
    }

    /// The index of the value at `range` of `doc` (ranges stay absolute).
    fn build_at(doc: &[u8], range: Range<usize>) -> Option<Index> {
        let part = doc.get(range.clone())?;
        let mut de = serde_json::Deserializer::from_slice(part);
        let top = Members.deserialize(&mut de).ok()?;
        de.end().ok()?;
        let at = |v: &RawValue| {
            let start = v.get().as_ptr() as usize - doc.as_ptr() as usize;
            start..start + v.get().len()
        };
        let top = match top {
            TopRaw::Object(m) => Top::Object(m.into_iter().map(|(k, v)| (k, at(v))).collect()),
            TopRaw::Array(a) => Top::Array(a.into_iter().map(at).collect()),
            TopRaw::Scalar => Top::Scalar,
        };
        let n = match &top {
            Top::Object(m) => m.len(),
            Top::Array(a) => a.len(),
            Top::Scalar => 0,
        };
        Some(Index {
            whole: range,
            top,
            children: (0..n).map(|_| OnceLock::new()).collect(),
        })
    }

    /// The position and range of the member a reference token names.
    fn member(&self, token: &str) -> Option<(usize, &Range<usize>)> {
        match &self.top {
            // The last of repeated keys, as serde_json's map keeps it.
            Top::Object(members) => members
                .iter()
                .enumerate()
                .rev()
                .find(|(_, (k, _))| k == token)
                .map(|(i, (_, r))| (i, r)),
            Top::Array(elements) => {
                let i = index(token)?;
                elements.get(i).map(|r| (i, r))
            }
            Top::Scalar => None,
        }
    }
}

/// [`pointer`] with the document's [`Index`] built already.
pub fn pointer_in<'a>(doc: &'a [u8], index: &Index, pointer: &str) -> Option<&'a RawValue> {
    let raw = |r: &Range<usize>| -> Option<&'a RawValue> {
        serde_json::from_slice::<&RawValue>(doc.get(r.clone())?).ok()
    };
    if pointer.is_empty() {
        return raw(&index.whole);
    }
    let mut tokens = pointer.strip_prefix('/')?.split('/').peekable();
    let mut level = index;
    loop {
        let token = unescape(tokens.next()?);
        let (i, range) = level.member(&token)?;
        if tokens.peek().is_none() {
            return raw(range);
        }
        level = level.children[i]
            .get_or_init(|| Index::build_at(doc, range.clone()))
            .as_ref()?;
    }
}

enum TopRaw<'de> {
    Object(Vec<(String, &'de RawValue)>),
    Array(Vec<&'de RawValue>),
    Scalar,
}

/// Reads the top level: its members' keys and raw values.
struct Members;

impl<'de> DeserializeSeed<'de> for Members {
    type Value = TopRaw<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Members {
    type Value = TopRaw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            members.push((k, map.next_value::<&'de RawValue>()?));
        }
        Ok(TopRaw::Object(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::new();
        while let Some(v) = seq.next_element::<&'de RawValue>()? {
            elements.push(v);
        }
        Ok(TopRaw::Array(elements))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(TopRaw::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(TopRaw::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(TopRaw::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(TopRaw::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(TopRaw::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(TopRaw::Scalar)
    }
}

/// The text a string template gets for a JSON value: a string's contents, nothing for
/// `null`, the JSON text of anything else.
pub fn as_text(v: &RawValue) -> Cow<'_, str> {
    let raw = v.get();
    match raw.as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<&str>(raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default()),
        },
        Some(b'n') => Cow::Borrowed(""),
        Some(b't' | b'f') => Cow::Borrowed(raw),
        _ => Cow::Owned(
            serde_json::from_str::<serde_json::Value>(raw)
                .map(|v| v.to_string())
                .unwrap_or_default(),
        ),
    }
}

/// Writes a JSON value exactly as `serde_json` serializes it once parsed (compact, keys in
/// its order, numbers normalized): verbatim when the raw text already is that, which is
/// the case for literals and for strings without escapes.
pub fn write_canonical(v: &RawValue, out: &mut Vec<u8>) {
    let raw = v.get();
    let verbatim = match raw.as_bytes().first() {
        Some(b'"') => !raw.contains('\\'),
        Some(b't' | b'f' | b'n') => true,
        _ => false,
    };
    if verbatim {
        out.extend_from_slice(raw.as_bytes());
    } else {
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(v) => serde_json::to_writer(out, &v).expect("a Vec takes any JSON"),
            Err(_) => out.extend_from_slice(b"null"),
        }
    }
}

/// A reference token with `~1` and `~0` unescaped.
fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// An array index as `serde_json::Value::pointer` reads it.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const DOC: &str = r#"{"order":{"id":"o-1","qty":3,"price":1.50,"tags":["a","b"],
        "esc":"a\"b","a/b":1,"m~n":2,"nested":{ "k" : [1, {"x": null}] }},"order":{"id":"last"},
        "pad":"xxxxxxxx"}"#;

    /// Every pointer gives what `serde_json::Value::pointer` gives.
    #[test]
    fn pointers_agree_with_serde_json() {
        let whole: Value = serde_json::from_str(DOC).unwrap();
        for p in [
            "",
            "/order",
            "/order/id",
            "/pad",
            "/missing",
            "/order/missing",
            "/pad/x",
            "x",
            "/order/nope/deeper",
        ] {
            let ours =
                pointer(DOC.as_bytes(), p).map(|r| serde_json::from_str::<Value>(r.get()).unwrap());
            assert_eq!(ours.as_ref(), whole.pointer(p), "pointer {p:?}");
        }
        let inner = r#"{"id":"o-1","qty":3,"price":1.50,"tags":["a","b"],"esc":"a\"b","a/b":1,"m~n":2,"nested":{ "k" : [1, {"x": null}] }}"#;
        let whole: Value = serde_json::from_str(&format!(r#"{{"order":{inner}}}"#)).unwrap();
        let doc = format!(r#"{{"order":{inner}}}"#);
        for p in [
            "/order/qty",
            "/order/price",
            "/order/tags",
            "/order/tags/1",
            "/order/tags/2",
            "/order/tags/01",
            "/order/esc",
            "/order/a~1b",
            "/order/m~0n",
            "/order/nested/k/1/x",
            "/order/nested/k/0",
            "/order/nested/k/+1",
        ] {
            let ours =
                pointer(doc.as_bytes(), p).map(|r| serde_json::from_str::<Value>(r.get()).unwrap());
            assert_eq!(ours.as_ref(), whole.pointer(p), "pointer {p:?}");
        }
    }

    #[test]
    fn a_body_that_is_not_json_has_no_pointers() {
        assert!(pointer(br#"{"a":1} trailing"#, "/a").is_none());
        assert!(pointer(br#"{"a":1,"b":}"#, "/a").is_none());
        assert!(pointer(b"plain text", "/a").is_none());
    }

    #[test]
    fn canonical_writing_matches_serde_json() {
        let doc =
            json!({"s": "plain", "e": "a\"b\u{e9}", "n": 1.50, "o": {"b": 1, "a": [true, null]}});
        let text = r#"{"s":"plain","e":"a\"b\u00e9","n":1.50,"o":{ "b": 1, "a": [true, null] }}"#;
        for p in ["/s", "/e", "/n", "/o", "/o/a/0", "/o/a/1"] {
            let mut out = Vec::new();
            write_canonical(pointer(text.as_bytes(), p).unwrap(), &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(doc.pointer(p).unwrap()).unwrap(),
                "pointer {p}"
            );
        }
        assert_eq!(
            as_text(pointer(text.as_bytes(), "/e").unwrap()),
            "a\"b\u{e9}"
        );
        assert_eq!(as_text(pointer(text.as_bytes(), "/o/a/1").unwrap()), "");
        assert_eq!(as_text(pointer(text.as_bytes(), "/n").unwrap()), "1.5");
    }
}
