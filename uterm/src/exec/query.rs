//! The reading side of the executor: status, object tables and sheets, bean search and
//! generic reads, and the "did you mean" lookups used when a name is not found. Pattern reads
//! fall back to search + read for servers that do not read patterns.

use deployments::protocol::attrs::ManagerAttrs;
use deployments::protocol::{did_you_mean, ObjectName, Request, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::exec::error::CmdError;
use crate::exec::executor::{attrs_of, manager, server, value_of, words, Executor};
use crate::lang::kind::{Kind, Target};
use crate::present::output::Output;
use crate::present::view::{self, name_of, unit_of, Row};

/// Rows of a pattern read (`{name: {attrs}}`), sorted by unit and name; `None` when the value
/// is not of that shape.
pub(crate) fn pattern_rows(v: &Value) -> Option<Vec<Row>> {
    let Value::Object(m) = v else { return None };
    let mut rows = Vec::with_capacity(m.len());
    for (k, attrs) in m {
        let name = ObjectName::parse(k).ok()?;
        rows.push((name, attrs_of(attrs)));
    }
    sort_rows(&mut rows);
    Some(rows)
}

/// Sorts rows by unit, then name.
fn sort_rows(rows: &mut [Row]) {
    rows.sort_by_cached_key(|(n, _)| (unit_of(n), name_of(n)));
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
        sort_rows(&mut rows);
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
                    .map(|n| (unit_of(&n), name_of(&n)))
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
        let dm = ManagerAttrs::deserialize(rs[0].value.as_ref()?).ok()?;
        let mut known = dm.units;
        for u in dm.units_on_disk {
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
