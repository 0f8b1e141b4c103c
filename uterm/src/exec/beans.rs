//! Generic bean access, for what no command names: `beans [PATTERN]` (names), `info BEAN`
//! (its `list` metadata), `get BEAN [ATTRIBUTE...]`, `set BEAN ATTRIBUTE VALUE` and
//! `exec BEAN OPERATION [ARGUMENT...]`. A deployment outcome answered by `exec` is reported
//! like the command that would have produced it.

use deployments::protocol::outcome::RestartOutcome;
use deployments::protocol::{join_path, Attributes, ObjectName, Outcome, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::exec::error::CmdError;
use crate::exec::executor::{attrs_of, value_of, words, Executor};
use crate::exec::query::pattern_rows;
use crate::lang::error::UsageError;
use crate::present::output::{compact, Block, Output, Span, Tone};
use crate::present::{report, view};

impl Executor {
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

    pub(crate) fn info(&self, bean: &ObjectName) -> Result<Output, CmdError> {
        let path = join_path(&[bean.domain().to_string(), bean.key_list()]);
        let r = self.one(Request::list(Some(&path), None))?;
        let v = value_of(&r, &format!("info {}", bean.original()))
            .map_err(|e| self.bean_missing(e, &r, bean))?;
        Ok(view::info(&bean.original(), v))
    }

    pub(crate) fn set(
        &self,
        bean: &ObjectName,
        attribute: &str,
        value: &Value,
    ) -> Result<Output, CmdError> {
        let r = self.one(Request::write(bean.clone(), attribute, value.clone()))?;
        let what = format!("set {} {attribute}", bean.original());
        let old = value_of(&r, &what)
            .map_err(|e| self.bean_missing(e, &r, bean))?
            .clone();
        let line = format!(
            "{} {attribute}: {} → {}",
            bean.original(),
            compact(&old, 60),
            compact(value, 60)
        );
        let json = json!({
            "mbean": bean.original(), "attribute": attribute, "old": old, "new": value,
        });
        Ok(Output::line(json, vec![Span::plain(line)]))
    }

    pub(crate) fn exec(
        &self,
        bean: &ObjectName,
        operation: &str,
        arguments: &[Value],
        now: u64,
    ) -> Result<Output, CmdError> {
        let r = self.one(Request::exec(bean.clone(), operation, arguments.to_vec()))?;
        let what = format!("exec {} {operation}", bean.original());
        let v = value_of(&r, &what).map_err(|e| self.bean_missing(e, &r, bean))?;
        // A deployment outcome (or a batch of them) reads as the command that would have
        // produced it; a warm restart's outcome likewise.
        let is_outcome = |x: &Value| Outcome::deserialize(x).is_ok();
        if is_outcome(v)
            || v.as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(is_outcome))
        {
            let (out, failed) = report::outcomes(v);
            if failed {
                return Err(CmdError::with_output(format!("{what}: rejected"), out));
            }
            return Ok(out);
        }
        if RestartOutcome::deserialize(v).is_ok() {
            let (out, ok) = report::restart(v);
            if !ok {
                return Err(CmdError::with_output(format!("{what}: rejected"), out));
            }
            return Ok(out);
        }
        Ok(view::value(v, now))
    }
}
