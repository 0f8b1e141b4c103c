//! The reading side of the executor: status, object tables and sheets, bean search and
//! generic reads, and the "did you mean" lookups used when a name is not found. Pattern reads
//! fall back to search + read for servers that do not read patterns.

use deployments::protocol::{did_you_mean, Attributes, ObjectName, Request, Response};
use serde_json::{json, Value};

use crate::exec::{attrs_of, manager, server, value_of, words, CmdError, Executor};
use crate::lang::error::UsageError;
use crate::lang::kind::{Kind, Target};
use crate::present::output::{Block, Output, Span, Tone};
use crate::present::view::{self, Row};

/// Rows of a pattern read (`{name: {attrs}}`), sorted by unit and name; `None` when the value
/// is not of that shape.
fn pattern_rows(v: &Value) -> Option<Vec<Row>> {
    let Value::Object(m) = v else { return None };
    let mut rows = Vec::with_capacity(m.len());
    for (k, attrs) in m {
        let name = ObjectName::parse(k).ok()?;
        rows.push((name, attrs_of(attrs)));
    }
    rows.sort_by(|a, b| {
        (a.0.get("unit"), a.0.get("name")).cmp(&(b.0.get("unit"), b.0.get("name")))
    });
    Some(rows)
}

impl Executor {
    pub(crate) fn status(&self, now: u64) -> Result<Output, CmdError> {
        let units = Kind::Unit.pattern(None);
        let rs = self.bulk(vec![
            Request::read(server(), None),
            Request::read(manager(), None),
            Request::read(units.clone(), None),
        ])?;
        let srv = attrs_of(value_of(&rs[0], "read esb:type=Server")?);
        let dm = rs[1].value.as_ref().map(attrs_of).unwrap_or_default();
        let rows = self.rows(&rs[2], &units)?;
        Ok(view::status(&srv, &dm, &rows, now))
    }

    /// Rows of a pattern read, falling back to search + read when the server does not read
    /// patterns; a 404 (nothing matches) is no rows.
    pub(crate) fn rows(&self, r: &Response, pattern: &ObjectName) -> Result<Vec<Row>, CmdError> {
        match r.status {
            404 => Ok(Vec::new()),
            200 => match r.value.as_ref().and_then(pattern_rows) {
                Some(rows) => Ok(rows),
                None => self.rows_by_search(pattern),
            },
            _ => self.rows_by_search(pattern),
        }
    }

    pub(crate) fn rows_by_search(&self, pattern: &ObjectName) -> Result<Vec<Row>, CmdError> {
        let r = self.one(Request::search(pattern.clone()))?;
        let names: Vec<ObjectName> = words(value_of(&r, &format!("search {pattern}"))?)
            .iter()
            .filter_map(|n| ObjectName::parse(n).ok())
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let rs = self.bulk(
            names
                .iter()
                .map(|n| Request::read(n.clone(), None))
                .collect(),
        )?;
        let mut rows: Vec<Row> = names
            .into_iter()
            .zip(rs)
            .filter(|(_, r)| r.is_ok())
            .map(|(n, r)| (n, r.value.as_ref().map(attrs_of).unwrap_or_default()))
            .collect();
        rows.sort_by(|a, b| {
            (a.0.get("unit"), a.0.get("name")).cmp(&(b.0.get("unit"), b.0.get("name")))
        });
        Ok(rows)
    }

    pub(crate) fn list(
        &self,
        kind: Kind,
        unit: Option<&str>,
        now: u64,
    ) -> Result<Output, CmdError> {
        let pattern = kind.pattern(unit);
        let mut reqs = vec![Request::read(pattern.clone(), None)];
        if let Some(u) = unit {
            reqs.push(Request::read(Target::Unit(u.into()).bean(), Some("State")));
        }
        let rs = self.bulk(reqs)?;
        if let (Some(u), Some(r)) = (unit, rs.get(1)) {
            if r.status == 404 {
                return Err(self.missing(&Target::Unit(u.into())));
            }
        }
        let rows = self.rows(&rs[0], &pattern)?;
        Ok(view::list(kind, &rows, unit, now))
    }

    pub(crate) fn show(&self, t: &Target, now: u64) -> Result<Output, CmdError> {
        let r = self.one(Request::read(t.bean(), None))?;
        if r.status == 404 {
            return Err(self.missing(t));
        }
        let attrs = attrs_of(value_of(&r, &format!("show {t}"))?);
        let mut out = Output::new(Value::Object(attrs.clone()));
        for b in view::sheet(Some(&t.to_string()), &attrs, now) {
            out.push(b);
        }
        Ok(out)
    }

    pub(crate) fn beans(&self, pattern: Option<&str>) -> Result<Output, CmdError> {
        let (search, filter) = match pattern {
            Some(p) if p.contains(':') => (p.to_string(), None),
            Some(p) => ("esb:*".to_string(), Some(p.to_lowercase())),
            None => ("esb:*".to_string(), None),
        };
        let name = ObjectName::parse(&search).map_err(|e| UsageError::new(e.to_string()))?;
        let r = self.one(Request::search(name))?;
        let mut names = match r.status {
            404 => Vec::new(),
            _ => words(value_of(&r, &format!("beans {search}"))?),
        };
        if let Some(f) = filter {
            names.retain(|n| n.to_lowercase().contains(&f));
        }
        names.sort();
        let json = json!(names);
        let lines = if names.is_empty() {
            vec![vec![Span::new("no beans match", Tone::Dim)]]
        } else {
            names.iter().map(|n| vec![Span::plain(n.clone())]).collect()
        };
        Ok(Output::new(json).with(Block::Lines(lines)))
    }

    pub(crate) fn get(
        &self,
        bean: &ObjectName,
        attributes: &[String],
        now: u64,
    ) -> Result<Output, CmdError> {
        let attribute = match attributes {
            [] => None,
            [one] => Some(Attributes::One(one.clone())),
            many => Some(Attributes::Many(many.to_vec())),
        };
        let req = Request::Read {
            mbean: bean.clone(),
            attribute,
            path: None,
            config: None,
        };
        let r = self.one(req)?;
        let v = value_of(&r, &format!("get {}", bean.original()))
            .map_err(|e| self.bean_missing(e, &r, bean))?;
        if bean.is_pattern() {
            let mut out = Output::new(v.clone());
            for (name, attrs) in pattern_rows(v).unwrap_or_default() {
                for b in view::sheet(Some(&name.original()), &attrs, now) {
                    out.push(b);
                }
            }
            if out.blocks.is_empty() {
                out.push(Block::Lines(vec![vec![Span::new(
                    "no beans match",
                    Tone::Dim,
                )]]));
            }
            return Ok(out);
        }
        if attributes.len() == 1 {
            return Ok(view::value(v, now));
        }
        let mut out = Output::new(v.clone());
        for b in view::sheet(None, &attrs_of(v), now) {
            out.push(b);
        }
        Ok(out)
    }

    /// A 404 for a generic bean: say how to find the names.
    pub(crate) fn bean_missing(&self, e: CmdError, r: &Response, bean: &ObjectName) -> CmdError {
        if r.status == 404
            && r.error_type.as_deref() == Some("javax.management.InstanceNotFoundException")
        {
            return CmdError::failed(format!("no bean {}", bean.original())).with_hint(Some(
                "list the names with `beans` (or `beans PATTERN`)".into(),
            ));
        }
        e
    }

    /// "no proxy orders/lst; did you mean orders/list?" — searches the names of that kind.
    pub(crate) fn missing(&self, t: &Target) -> CmdError {
        let kind = t.kind();
        // (unit, name) of every object of this kind.
        let known: Vec<(Option<String>, String)> = self
            .client()
            .bulk(&[Request::search(kind.pattern(None))])
            .ok()
            .and_then(|mut rs| rs.pop())
            .and_then(|r| r.value)
            .map(|v| {
                words(&v)
                    .iter()
                    .filter_map(|n| ObjectName::parse(n).ok())
                    .map(|n| {
                        let unit = n.get("unit").map(str::to_string);
                        (unit, n.get("name").unwrap_or("").to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let wanted = t.name();
        let hint = match t {
            Target::Element { unit, name, .. } => {
                // Compare names within the unit (a shared `unit/` prefix says nothing), then
                // look for the same name in another unit.
                let in_unit: Vec<&str> = known
                    .iter()
                    .filter(|(u, _)| u.as_deref() == Some(unit.as_str()))
                    .map(|(_, n)| n.as_str())
                    .collect();
                let elsewhere = known
                    .iter()
                    .find(|(u, n)| n == name && u.as_deref() != Some(unit.as_str()));
                match (did_you_mean(name, in_unit.iter().copied()), elsewhere) {
                    (Some(s), _) => format!("did you mean {} {unit}/{s}?", kind.word()),
                    (None, Some((Some(u), n))) => {
                        format!("did you mean {} {u}/{n}?", kind.word())
                    }
                    _ if in_unit.is_empty() => {
                        format!("unit {unit} has no {} loaded", kind.plural())
                    }
                    _ => format!("{} of {unit}: {}", kind.plural(), in_unit.join(", ")),
                }
            }
            _ => {
                let names = known.iter().map(|(_, n)| n.as_str());
                match did_you_mean(&wanted, names) {
                    Some(s) => format!("did you mean {} {s}?", kind.word()),
                    None if known.is_empty() => format!("there are no {} loaded", kind.plural()),
                    None => format!("`list {}` shows them", kind.plural()),
                }
            }
        };
        let what = if kind == Kind::Unit {
            "is loaded"
        } else {
            "exists"
        };
        CmdError::failed(format!("no {} {wanted} {what}", kind.word())).with_hint(Some(hint))
    }

    /// For a failed operation on a unit: a "did you mean" when the name is unknown.
    pub(crate) fn unit_hint(&self, unit: &str) -> Option<String> {
        let rs = self.client().bulk(&[Request::read(manager(), None)]).ok()?;
        let dm = attrs_of(rs[0].value.as_ref()?);
        let mut known = words(dm.get("Units").unwrap_or(&Value::Null));
        for u in words(dm.get("UnitsOnDisk").unwrap_or(&Value::Null)) {
            if !known.contains(&u) {
                known.push(u);
            }
        }
        if known.iter().any(|k| k == unit) {
            return None;
        }
        Some(match did_you_mean(unit, known.iter().map(String::as_str)) {
            Some(s) => format!("no unit \"{unit}\"; did you mean \"{s}\"?"),
            None => format!(
                "no unit \"{unit}\" is loaded or on disk (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        })
    }
}
