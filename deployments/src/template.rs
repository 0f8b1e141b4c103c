//! Templates of mediation steps: literal text with `${...}` placeholders. Parsed once (at
//! validation and at deploy time), evaluated per request by the data plane.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Method,
    Path,
    /// The whole body as text.
    Body,
    Query(String),
    /// Header name, lower-cased.
    Header(String),
    /// A JSON pointer into the body (`${json./order/id}`).
    Json(String),
    Prop(String),
    /// A runtime flag of the unit: `true` or `false`.
    Flag(String),
    UnitName,
    UnitVersion,
    UnitRevision,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub segments: Vec<Segment>,
}

pub const VARIABLES: &[&str] = &[
    "method",
    "path",
    "body",
    "query.NAME",
    "header.NAME",
    "json./POINTER",
    "prop.NAME",
    "flag.NAME",
    "unit.name",
    "unit.version",
    "unit.revision",
];

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                format!("unclosed placeholder in \"{text}\": add the closing `}}`")
            })?;
            segments.push(Segment::Var(parse_var(&after[..end])?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template { segments })
    }

    /// True when the template reads the request body.
    pub fn reads_body(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Var(Var::Json(_) | Var::Body)))
    }

    /// The template is exactly one placeholder (so a JSON value can keep its type).
    pub fn single_var(&self) -> Option<&Var> {
        match self.segments.as_slice() {
            [Segment::Var(v)] => Some(v),
            _ => None,
        }
    }

    pub fn literal(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [] => Some(""),
            [Segment::Text(t)] => Some(t),
            _ => None,
        }
    }
}

fn parse_var(inner: &str) -> Result<Var, String> {
    let inner = inner.trim();
    let named = |prefix: &str| {
        inner
            .strip_prefix(prefix)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
    };
    let var = match inner {
        "method" => Var::Method,
        "path" => Var::Path,
        "body" => Var::Body,
        "unit.name" => Var::UnitName,
        "unit.version" => Var::UnitVersion,
        "unit.revision" => Var::UnitRevision,
        _ => {
            if let Some(n) = named("query.") {
                Var::Query(n)
            } else if let Some(n) = named("header.") {
                Var::Header(n.to_ascii_lowercase())
            } else if let Some(p) = named("json.") {
                if !p.starts_with('/') {
                    return Err(format!(
                        "JSON pointer \"{p}\" must start with '/', e.g. ${{json./order/id}}"
                    ));
                }
                Var::Json(p)
            } else if let Some(n) = named("prop.") {
                Var::Prop(n)
            } else if let Some(n) = named("flag.") {
                Var::Flag(n)
            } else {
                let hint = crate::diag::did_you_mean(inner, VARIABLES.iter().copied())
                    .unwrap_or_else(|| format!("known placeholders: {}", VARIABLES.join(", ")));
                return Err(format!("unknown placeholder ${{{inner}}}; {hint}"));
            }
        }
    };
    Ok(var)
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Var::Method => write!(f, "method"),
            Var::Path => write!(f, "path"),
            Var::Body => write!(f, "body"),
            Var::Query(n) => write!(f, "query.{n}"),
            Var::Header(n) => write!(f, "header.{n}"),
            Var::Json(p) => write!(f, "json.{p}"),
            Var::Prop(n) => write!(f, "prop.{n}"),
            Var::Flag(n) => write!(f, "flag.{n}"),
            Var::UnitName => write!(f, "unit.name"),
            Var::UnitVersion => write!(f, "unit.version"),
            Var::UnitRevision => write!(f, "unit.revision"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_placeholders() {
        let t = Template::parse("order ${json./id} from ${header.X-Client}!").unwrap();
        assert_eq!(
            t.segments,
            vec![
                Segment::Text("order ".into()),
                Segment::Var(Var::Json("/id".into())),
                Segment::Text(" from ".into()),
                Segment::Var(Var::Header("x-client".into())),
                Segment::Text("!".into()),
            ]
        );
        assert!(t.reads_body());
        assert_eq!(
            Template::parse("${unit.version}").unwrap().single_var(),
            Some(&Var::UnitVersion)
        );
        assert_eq!(Template::parse("plain").unwrap().literal(), Some("plain"));
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        assert!(Template::parse("${hedaer.x}")
            .unwrap_err()
            .contains("unknown placeholder ${hedaer.x}; known placeholders: method"));
        assert!(Template::parse("${metod}")
            .unwrap_err()
            .contains("did you mean \"method\"?"));
        assert!(Template::parse("a ${method")
            .unwrap_err()
            .contains("unclosed"));
        assert!(Template::parse("${json.id}")
            .unwrap_err()
            .contains("must start with '/'"));
    }
}
