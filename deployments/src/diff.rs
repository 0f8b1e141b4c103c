//! Diff between two versions of a unit: elements added, removed and changed, and for a
//! changed element the fields that changed with old and new values. Elements are compared
//! through their serialized form, so every model field takes part without listing it here.

use crate::model::Unit;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UnitDiff {
    pub unit: String,
    pub changes: Vec<ElementChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementChange {
    pub kind: String,
    pub name: String,
    pub change: ChangeKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

impl UnitDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Names of `kind` elements that were changed or removed (their runtime is replaced).
    pub fn touched<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a str> {
        self.changes
            .iter()
            .filter(move |c| c.kind == kind)
            .map(|c| c.name.as_str())
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("diff serializes")
    }

    /// `+2 ~1 -0` style summary.
    pub fn summary(&self) -> String {
        let count = |k| self.changes.iter().filter(|c| c.change == k).count();
        format!(
            "+{} ~{} -{}",
            count(ChangeKind::Added),
            count(ChangeKind::Changed),
            count(ChangeKind::Removed)
        )
    }
}

/// Elements of `unit` as (kind, name, serialized value), in a stable order.
fn elements(unit: &Unit) -> Vec<(&'static str, String, Value)> {
    let mut out = Vec::new();
    let top = serde_json::json!({ "version": unit.label, "description": unit.description });
    out.push(("unit", unit.name.clone(), top));
    let mut push = |kind: &'static str, name: &str, v: Value| out.push((kind, name.to_owned(), v));
    for p in &unit.proxies {
        push("proxy", p.name.get_ref(), serde_json::to_value(p).unwrap());
    }
    for s in &unit.sequences {
        push(
            "sequence",
            s.name.get_ref(),
            serde_json::to_value(s).unwrap(),
        );
    }
    for e in &unit.endpoints {
        push(
            "endpoint",
            e.name.get_ref(),
            serde_json::to_value(e).unwrap(),
        );
    }
    for t in &unit.tasks {
        push("task", t.name.get_ref(), serde_json::to_value(t).unwrap());
    }
    for c in &unit.checks {
        push("check", c.name.get_ref(), serde_json::to_value(c).unwrap());
    }
    for (name, default) in &unit.flags {
        push("flag", name, serde_json::json!({ "default": default }));
    }
    if let Some(g) = &unit.guard {
        push("guard", "guard", serde_json::to_value(g).unwrap());
    }
    for c in &unit.consumers {
        push(
            "consumer",
            c.name.get_ref(),
            serde_json::to_value(c).unwrap(),
        );
    }
    out
}

/// What deploying `new` changes; with no running revision every element is added.
pub fn diff_from(old: Option<&Unit>, new: &Unit) -> UnitDiff {
    match old {
        Some(old) => diff_units(old, new),
        None => UnitDiff {
            unit: new.name.clone(),
            changes: elements(new)
                .into_iter()
                .map(|(kind, name, _)| ElementChange {
                    kind: kind.to_string(),
                    name,
                    change: ChangeKind::Added,
                    fields: vec![],
                })
                .collect(),
        },
    }
}

/// What changes when `old` is replaced by `new`.
pub fn diff_units(old: &Unit, new: &Unit) -> UnitDiff {
    let old_el = elements(old);
    let new_el = elements(new);
    // Indexed by (kind, name): diffing units of thousands of elements stays linear.
    let old_index: HashMap<(&str, &str), &Value> = old_el
        .iter()
        .map(|(k, n, v)| ((*k, n.as_str()), v))
        .collect();
    let new_index: HashSet<(&str, &str)> =
        new_el.iter().map(|(k, n, _)| (*k, n.as_str())).collect();
    let mut changes = Vec::new();
    for (kind, name, nv) in &new_el {
        match old_index
            .get(&(*kind, name.as_str()))
            .map(|ov| (kind, name, *ov))
        {
            None => changes.push(ElementChange {
                kind: kind.to_string(),
                name: name.clone(),
                change: ChangeKind::Added,
                fields: vec![],
            }),
            Some((_, _, ov)) if ov != nv => changes.push(ElementChange {
                kind: kind.to_string(),
                name: name.clone(),
                change: ChangeKind::Changed,
                fields: field_changes(ov, nv),
            }),
            _ => {}
        }
    }
    for (kind, name, _) in &old_el {
        if !new_index.contains(&(*kind, name.as_str())) {
            changes.push(ElementChange {
                kind: kind.to_string(),
                name: name.clone(),
                change: ChangeKind::Removed,
                fields: vec![],
            });
        }
    }
    UnitDiff {
        unit: new.name.clone(),
        changes,
    }
}

fn field_changes(old: &Value, new: &Value) -> Vec<FieldChange> {
    let (Value::Object(o), Value::Object(n)) = (old, new) else {
        return vec![FieldChange {
            field: String::new(),
            old: old.clone(),
            new: new.clone(),
        }];
    };
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let ov = o.get(k).cloned().unwrap_or(Value::Null);
            let nv = n.get(k).cloned().unwrap_or(Value::Null);
            (ov != nv).then(|| FieldChange {
                field: k.clone(),
                old: ov,
                new: nv,
            })
        })
        .collect()
}

impl fmt::Display for UnitDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "unit \"{}\": no changes", self.unit);
        }
        for c in &self.changes {
            writeln!(f, "{} {} \"{}\"", c.change.sign(), c.kind, c.name)?;
            for fc in &c.fields {
                writeln!(f, "    {}: {} -> {}", fc.field, fc.old, fc.new)?;
            }
        }
        Ok(())
    }
}

impl ChangeKind {
    /// `+`, `-` or `~`.
    pub fn sign(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Changed => '~',
        }
    }
}

/// A JSON value on one line: strings quoted, anything longer than `max` characters cut with
/// `…`.
pub fn one_line(v: &Value, max: usize) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

impl fmt::Display for FieldChange {
    /// `path: "/a" → "/b"`, each value cut to 60 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} → {}",
            self.field,
            one_line(&self.old, 60),
            one_line(&self.new, 60)
        )
    }
}

impl fmt::Display for ElementChange {
    /// `~ proxy list: path: "/a" → "/b"` for one changed field; with several, the element on
    /// its line and each field on a line below, indented by four spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.change.sign(), self.kind, self.name)?;
        match self.fields.as_slice() {
            [] => Ok(()),
            [one] => write!(f, ": {one}"),
            many => many.iter().try_for_each(|fc| write!(f, "\n    {fc}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_unit, UnitSources};

    fn unit(text: &str) -> Unit {
        parse_unit(&UnitSources::from_content("u", text))
            .unwrap()
            .unit
    }

    #[test]
    fn reports_added_removed_and_changed_fields() {
        let old = unit("[[proxy]]\nname = \"a\"\npath = \"/a\"\nendpoint = \"e\"\n[[proxy]]\nname = \"gone\"\npath = \"/g\"\nendpoint = \"e\"\n[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n");
        let new = unit("[[proxy]]\nname = \"a\"\npath = \"/b\"\nendpoint = \"e\"\n[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n[[task]]\nname = \"t\"\nevery = \"1s\"\nsequence = \"s\"\n");
        let d = diff_units(&old, &new);
        assert_eq!(d.summary(), "+1 ~1 -1");
        let changed = d
            .changes
            .iter()
            .find(|c| c.change == ChangeKind::Changed)
            .unwrap();
        assert_eq!(
            (changed.kind.as_str(), changed.name.as_str()),
            ("proxy", "a")
        );
        assert_eq!(
            changed.fields,
            vec![FieldChange {
                field: "path".into(),
                old: "/a".into(),
                new: "/b".into()
            }]
        );
        let text = d.to_string();
        assert!(
            text.contains("~ proxy \"a\"\n    path: \"/a\" -> \"/b\""),
            "{text}"
        );
        assert!(text.contains("- proxy \"gone\""), "{text}");
        assert!(text.contains("+ task \"t\""), "{text}");
        assert_eq!(changed.to_string(), "~ proxy a: path: \"/a\" → \"/b\"");
        assert_eq!(d.to_json()["changes"][0]["change"], "changed");
    }

    #[test]
    fn identical_units_and_moved_lines_have_no_diff() {
        let a = unit("[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n");
        let b = unit("\n# comment\n[[endpoint]]\naddresses = [\"http://h:1\"]\nname = \"e\"\n");
        assert!(diff_units(&a, &b).is_empty());
        assert_eq!(diff_units(&a, &b).to_string(), "unit \"u\": no changes\n");
    }

    #[test]
    fn a_new_unit_is_all_additions() {
        let d = diff_from(
            None,
            &unit("version = \"1\"\n[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n"),
        );
        assert_eq!(d.summary(), "+2 ~0 -0");
        assert!(d.changes.iter().all(|c| c.change == ChangeKind::Added));
    }

    #[test]
    fn label_change_is_a_unit_level_change() {
        let d = diff_units(&unit("version = \"1\""), &unit("version = \"2\""));
        assert_eq!(d.changes[0].kind, "unit");
        assert_eq!(d.changes[0].fields[0].field, "version");
    }
}
