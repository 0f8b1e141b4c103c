//! Parsing a unit's sources into the typed [`Unit`]: follows `include`s inside the unit
//! (missing files and cycles are errors), deserializes every element on its own so that all
//! errors of a unit are reported together, each with file:line:col, element and hint.

use crate::diag::{did_you_mean, unknown_key_hint, Diagnostic, LineIndex};
use crate::model::{
    element_label, Check, Consumer, Endpoint, Guard, Origin, Proxy, Sequence, Task, Unit,
};
use crate::source::{UnitSources, UNIT_FILE};
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Deserialize as _;
use std::collections::BTreeMap;
use std::sync::Arc;

const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "description",
    "include",
    "proxy",
    "sequence",
    "endpoint",
    "task",
    "check",
    "flags",
    "guard",
    "consumer",
];

/// Turns spans of one unit's files into diagnostics.
#[derive(Debug, Default)]
pub struct Locator {
    files: BTreeMap<String, LocatedFile>,
}

#[derive(Debug)]
struct LocatedFile {
    /// The file's names, shared by the origins of its elements.
    rel: Arc<str>,
    display: Arc<str>,
    index: LineIndex,
}

impl Locator {
    fn add(&mut self, rel: &str, display: String, text: &str) {
        let file = LocatedFile {
            rel: rel.into(),
            display: display.into(),
            index: LineIndex::new(text),
        };
        self.files.insert(rel.to_owned(), file);
    }

    /// A diagnostic at byte `offset` of unit file `rel`.
    pub fn at(&self, rel: &str, offset: usize, message: impl Into<String>) -> Diagnostic {
        match self.files.get(rel) {
            Some(f) => {
                let (line, col) = f.index.position(offset);
                Diagnostic::new(&*f.display, line, col, message)
            }
            None => Diagnostic::new(rel, 1, 1, message),
        }
    }

    /// Where an element that starts at byte `offset` of unit file `rel` was defined.
    fn origin(&self, rel: &str, offset: usize) -> Origin {
        match self.files.get(rel) {
            Some(f) => {
                let (line, col) = f.index.position(offset);
                Origin {
                    rel: f.rel.clone(),
                    file: f.display.clone(),
                    line,
                    col,
                }
            }
            None => Origin {
                rel: rel.into(),
                file: rel.into(),
                line: 1,
                col: 1,
            },
        }
    }
}

/// A parsed unit plus what is needed to locate its elements in the sources.
#[derive(Debug, Clone)]
pub struct ParsedUnit {
    pub unit: Unit,
    pub locator: Arc<Locator>,
    /// The files the unit is made of: `unit.toml` and every file it includes.
    pub files: Vec<String>,
}

/// Parses a unit. Errors of every file and element are collected.
pub fn parse_unit(sources: &UnitSources) -> Result<ParsedUnit, Vec<Diagnostic>> {
    let mut p = Parser {
        sources,
        locator: Locator::default(),
        unit: Unit {
            name: sources.name.clone(),
            ..Unit::default()
        },
        errors: Vec::new(),
        stack: Vec::new(),
        visited: Vec::new(),
    };
    for (rel, text) in &sources.files {
        p.locator.add(rel, sources.display_path(rel), text);
    }
    if !crate::source::is_valid_unit_name(&sources.name) {
        p.errors.push(
            Diagnostic::new(
                sources.display_path(UNIT_FILE),
                1,
                1,
                format!("invalid unit name \"{}\"", sources.name),
            )
            .hint(Some(
                "unit names match [a-z0-9][a-z0-9_-]* (lower case, no dots or slashes)".into(),
            )),
        );
    }
    if sources.files.contains_key(UNIT_FILE) {
        p.visit(UNIT_FILE, None);
    } else {
        p.errors.push(
            Diagnostic::new(
                sources.display_path(UNIT_FILE),
                1,
                1,
                "unit has no unit.toml",
            )
            .hint(Some("every unit directory needs a unit.toml".into())),
        );
    }
    if p.errors.is_empty() {
        Ok(ParsedUnit {
            unit: p.unit,
            locator: Arc::new(p.locator),
            files: p.visited,
        })
    } else {
        Err(p.errors)
    }
}

struct Parser<'a> {
    sources: &'a UnitSources,
    locator: Locator,
    unit: Unit,
    errors: Vec<Diagnostic>,
    stack: Vec<String>,
    visited: Vec<String>,
}

impl Parser<'_> {
    fn visit(&mut self, rel: &str, _from: Option<(&str, usize)>) {
        self.stack.push(rel.to_owned());
        self.visited.push(rel.to_owned());
        let sources = self.sources;
        let text = &sources.files[rel];
        if rel == UNIT_FILE && text.trim().is_empty() {
            self.errors.push(
                Diagnostic::new(self.sources.display_path(rel), 1, 1, "unit.toml is empty").hint(
                    Some(
                        "a unit needs at least one element; to remove a unit, delete its directory or unload it"
                            .into(),
                    ),
                ),
            );
            self.stack.pop();
            return;
        }
        let doc = match toml_edit::ImDocument::parse(text.as_str()) {
            Ok(doc) => doc,
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                let msg = e.message().trim().to_owned();
                self.errors.push(
                    self.locator
                        .at(rel, offset, format!("TOML syntax error: {msg}")),
                );
                self.stack.pop();
                return;
            }
        };
        for (key, item) in doc.iter() {
            let key_offset = doc
                .key(key)
                .and_then(|k| k.span())
                .map(|s| s.start)
                .unwrap_or(0);
            let item_offset = item.span().map(|s| s.start).unwrap_or(key_offset);
            match key {
                "version" | "description" if rel != UNIT_FILE => {
                    self.errors.push(self.locator.at(
                        rel,
                        key_offset,
                        format!("`{key}` belongs in unit.toml, not in an included file"),
                    ));
                }
                "version" | "description" => match item.as_str() {
                    Some(s) if key == "version" => self.unit.label = Some(s.to_owned()),
                    Some(s) => self.unit.description = Some(s.to_owned()),
                    None => self.errors.push(self.locator.at(
                        rel,
                        item_offset,
                        format!("`{key}` must be a string, e.g. {key} = \"1.2.0\""),
                    )),
                },
                "include" => self.includes(rel, item, item_offset),
                "proxy" => self.elements::<Proxy>(rel, "proxy", item, item_offset),
                "sequence" => self.elements::<Sequence>(rel, "sequence", item, item_offset),
                "endpoint" => self.elements::<Endpoint>(rel, "endpoint", item, item_offset),
                "task" => self.elements::<Task>(rel, "task", item, item_offset),
                "check" => self.elements::<Check>(rel, "check", item, item_offset),
                "flags" => self.flags(rel, item, item_offset),
                "guard" => self.guard(rel, item, item_offset),
                "consumer" => self.elements::<Consumer>(rel, "consumer", item, item_offset),
                other => {
                    self.errors.push(
                        self.locator
                            .at(rel, key_offset, format!("unknown key `{other}`"))
                            .hint(did_you_mean(other, TOP_LEVEL_KEYS.iter().copied()).or_else(
                                || Some(format!("a unit has: {}", TOP_LEVEL_KEYS.join(", "))),
                            )),
                    )
                }
            }
        }
        self.stack.pop();
    }

    fn includes(&mut self, rel: &str, item: &toml_edit::Item, offset: usize) {
        let Some(list) = item.as_array() else {
            self.errors.push(self.locator.at(
                rel,
                offset,
                "`include` must be an array of file names, e.g. include = [\"routes.toml\"]",
            ));
            return;
        };
        for v in list.iter() {
            let at = v.span().map(|s| s.start).unwrap_or(offset);
            let Some(name) = v.as_str() else {
                self.errors
                    .push(self.locator.at(rel, at, "include entries must be strings"));
                continue;
            };
            let Some(target) = resolve_include(rel, name) else {
                self.errors.push(
                    self.locator
                        .at(
                            rel,
                            at,
                            format!("include \"{name}\" leaves the unit directory"),
                        )
                        .hint(Some("includes are files inside the unit directory".into())),
                );
                continue;
            };
            if self.stack.contains(&target) {
                let mut chain = self.stack.clone();
                chain.push(target.clone());
                self.errors.push(
                    self.locator
                        .at(rel, at, format!("include cycle: {}", chain.join(" -> ")))
                        .hint(Some("remove one of the includes".into())),
                );
            } else if !self.sources.files.contains_key(&target) {
                let hint = did_you_mean(&target, self.sources.files.keys().map(|s| s.as_str()));
                self.errors.push(
                    self.locator
                        .at(
                            rel,
                            at,
                            format!("included file \"{name}\" not found in the unit directory"),
                        )
                        .hint(hint),
                );
            } else if !self.visited.contains(&target) {
                self.visit(&target, Some((rel, at)));
            }
        }
    }

    /// `[flags]`: flag name → default (true or false).
    fn flags(&mut self, rel: &str, item: &toml_edit::Item, offset: usize) {
        let Some(table) = item.as_table_like() else {
            self.errors.push(
                self.locator
                    .at(
                        rel,
                        offset,
                        "`flags` must be a table of true/false defaults",
                    )
                    .hint(Some("write [flags] and then e.g. beta = false".into())),
            );
            return;
        };
        for (name, v) in table.iter() {
            let at = v.span().map(|s| s.start).unwrap_or(offset);
            match v.as_bool() {
                Some(b) if crate::model::is_valid_element_name(name) => {
                    if self.unit.flags.insert(name.to_owned(), b).is_some() {
                        self.errors.push(self.locator.at(
                            rel,
                            at,
                            format!("flag `{name}` is declared twice"),
                        ));
                    }
                }
                Some(_) => self.errors.push(
                    self.locator
                        .at(rel, at, format!("invalid flag name `{name}`"))
                        .hint(Some("flag names are letters, digits, `-`, `_`, `.`".into())),
                ),
                None => self.errors.push(self.locator.at(
                    rel,
                    at,
                    format!("flag `{name}` must be true or false (its default)"),
                )),
            }
        }
    }

    /// `[guard]`: one per unit.
    fn guard(&mut self, rel: &str, item: &toml_edit::Item, offset: usize) {
        let value = match item.clone().into_value() {
            Ok(v) if v.is_inline_table() => v,
            _ => {
                self.errors.push(
                    self.locator
                        .at(rel, offset, "`guard` must be a table")
                        .hint(Some(
                            "write [guard] with max_error_rate, max_p99, window, min_requests"
                                .into(),
                        )),
                );
                return;
            }
        };
        if self.unit.guard.is_some() {
            self.errors.push(self.locator.at(
                rel,
                offset,
                "a unit has one [guard]; remove the other",
            ));
            return;
        }
        match Guard::deserialize(value.into_deserializer()) {
            Ok(mut g) => {
                g.origin = self.locator.origin(rel, offset);
                g.offset = offset;
                self.unit.guard = Some(g);
            }
            Err(e) => {
                let msg = e.message().trim().to_owned();
                let at = e.span().map(|s| s.start).unwrap_or(offset);
                let hint = unknown_key_hint(&msg).or_else(|| missing_field_hint(&msg));
                let mut d = self.locator.at(rel, at, msg).hint(hint);
                d.element = Some("guard".into());
                self.errors.push(d);
            }
        }
    }

    fn elements<T: DeserializeOwned + Element>(
        &mut self,
        rel: &str,
        kind: &str,
        item: &toml_edit::Item,
        offset: usize,
    ) {
        // One element's table is copied at a time (the deserializer takes values), and the
        // copies are fresh allocations: what the model keeps of them is not spread over the
        // document's memory, which is given back whole once parsing ends.
        let tables: Box<dyn Iterator<Item = toml_edit::Value> + '_> =
            if let Some(aot) = item.as_array_of_tables() {
                T::reserve(&mut self.unit, aot.len());
                Box::new(
                    aot.iter()
                        .filter_map(|t| toml_edit::Item::Table(t.clone()).into_value().ok()),
                )
            } else if let Some(arr) = item.as_array() {
                T::reserve(&mut self.unit, arr.len());
                Box::new(arr.iter().cloned())
            } else {
                self.errors.push(
                    self.locator
                        .at(rel, offset, format!("`{kind}` must be an array of tables"))
                        .hint(Some(format!("write each one as [[{kind}]]"))),
                );
                return;
            };
        for value in tables {
            let start = value.span().map(|s| s.start).unwrap_or(offset);
            let name = value
                .as_inline_table()
                .and_then(|t| t.get("name"))
                .and_then(|n| n.as_str())
                .map(str::to_owned);
            match T::deserialize(value.into_deserializer()) {
                Ok(mut element) => {
                    element.set_origin(self.locator.origin(rel, start));
                    element.push_into(&mut self.unit);
                }
                Err(e) => {
                    let msg = e.message().trim().to_owned();
                    let at = e.span().map(|s| s.start).unwrap_or(start);
                    let hint = unknown_key_hint(&msg).or_else(|| missing_field_hint(&msg));
                    let msg = friendlier(&msg);
                    let mut d = self.locator.at(rel, at, msg).hint(hint);
                    d.element = Some(match name {
                        Some(n) => element_label(kind, &n),
                        None => kind.to_owned(),
                    });
                    self.errors.push(d);
                }
            }
        }
    }
}

/// Resolves an include relative to the including file; `None` if it escapes the unit.
fn resolve_include(from: &str, name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for seg in name.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

fn missing_field_hint(msg: &str) -> Option<String> {
    let field = msg.strip_prefix("missing field `")?.strip_suffix('`')?;
    Some(format!("add `{field} = ...`"))
}

fn friendlier(msg: &str) -> String {
    if msg.contains("untagged enum AddressDef") {
        "invalid address: write a URL string or { url = \"http://host:port\", weight = N }".into()
    } else {
        msg.to_owned()
    }
}

/// What the parser needs of each element kind.
trait Element {
    fn set_origin(&mut self, origin: Origin);
    fn push_into(self, unit: &mut Unit);
    /// Room for `n` more elements of this kind (their count is known before parsing).
    fn reserve(unit: &mut Unit, n: usize);
}

macro_rules! element {
    ($t:ty, $field:ident) => {
        impl Element for $t {
            fn set_origin(&mut self, origin: Origin) {
                self.origin = origin;
            }
            fn push_into(self, unit: &mut Unit) {
                unit.$field.push(self);
            }
            fn reserve(unit: &mut Unit, n: usize) {
                unit.$field.reserve_exact(n);
            }
        }
    };
}
element!(Proxy, proxies);
element!(Sequence, sequences);
element!(Endpoint, endpoints);
element!(Task, tasks);
element!(Check, checks);
element!(Consumer, consumers);

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(files: &[(&str, &str)]) -> UnitSources {
        let mut s = UnitSources::from_content("orders", "");
        s.files.clear();
        for (k, v) in files {
            s.files.insert((*k).into(), (*v).into());
        }
        s
    }

    #[test]
    fn parses_every_element_kind_and_step() {
        let text = r#"
version = "1.2.0"
[[proxy]]
name = "orders"
path = "/orders"
methods = ["GET", "POST"]
sequence = "in"
endpoint = "backend"

[[sequence]]
name = "in"
steps = [
  { log = "order ${json./id}" },
  { set_header = { name = "x-v", value = "${unit.version}" } },
  { remove_header = "x-secret" },
  { set_property = { name = "p", value = "1" } },
  { filter = { on = "${header.x}", equals = "a", then = [{ log = "a" }], else = [{ log = "b" }] } },
  { switch = { on = "${header.x-region}", cases = { eu = "backend" }, default = "backend" } },
  { transform = { body = { id = "${json./id}", n = 1 } } },
  { call = { endpoint = "backend" } },
  { respond = { status = 201, body = "done" } },
]

[[endpoint]]
name = "backend"
addresses = ["http://127.0.0.1:9000", { url = "http://127.0.0.1:9001", weight = 3 }]
strategy = "weighted"
timeout = "2s"
suspend = { after_failures = 2, initial = "1s" }

[[task]]
name = "tick"
every = "10s"
sequence = "in"
"#;
        let p = parse_unit(&unit(&[("unit.toml", text)])).unwrap();
        let u = &p.unit;
        assert_eq!(u.label.as_deref(), Some("1.2.0"));
        assert_eq!(u.proxies[0].methods.len(), 2);
        assert_eq!(u.sequences[0].steps.len(), 9);
        assert_eq!(u.endpoints[0].addresses[1].get_ref().weight(), 3);
        assert_eq!(u.endpoints[0].timeout, std::time::Duration::from_secs(2));
        assert_eq!(
            u.endpoints[0].suspend.max,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(u.tasks[0].every, std::time::Duration::from_secs(10));
        assert_eq!((u.proxies[0].origin.line, u.proxies[0].origin.col), (3, 1));
    }

    #[test]
    fn every_broken_element_is_reported() {
        let text = "[[proxy]]\nname = \"a\"\npath = \"/a\"\nendpint = \"x\"\n\n[[endpoint]]\nname = \"e\"\naddresses = []\ntimeout = \"soon\"\n";
        let errs = parse_unit(&unit(&[("unit.toml", text)])).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].line, errs[0].col), (4, 1));
        assert_eq!(errs[0].element.as_deref(), Some("proxy \"a\""));
        assert_eq!(errs[0].hint.as_deref(), Some("did you mean \"endpoint\"?"));
        assert_eq!(errs[1].line, 9);
        assert!(errs[1].message.contains("invalid duration"), "{}", errs[1]);
    }

    #[test]
    fn includes_are_followed_and_checked() {
        let ok = parse_unit(&unit(&[
            ("unit.toml", "include = [\"more/e.toml\"]\n"),
            (
                "more/e.toml",
                "[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n",
            ),
        ]))
        .unwrap();
        assert_eq!(&*ok.unit.endpoints[0].origin.file, "orders/more/e.toml");

        let missing =
            parse_unit(&unit(&[("unit.toml", "include = [\"nope.toml\"]\n")])).unwrap_err();
        assert!(missing[0].message.contains("not found"), "{}", missing[0]);

        let cycle = parse_unit(&unit(&[
            ("unit.toml", "include = [\"a.toml\"]\n"),
            ("a.toml", "include = [\"unit.toml\"]\n"),
        ]))
        .unwrap_err();
        assert!(
            cycle[0]
                .message
                .contains("include cycle: unit.toml -> a.toml -> unit.toml"),
            "{}",
            cycle[0]
        );

        let escape =
            parse_unit(&unit(&[("unit.toml", "include = [\"../x.toml\"]\n")])).unwrap_err();
        assert!(
            escape[0].message.contains("leaves the unit directory"),
            "{}",
            escape[0]
        );
    }

    #[test]
    fn syntax_errors_and_unknown_top_level_keys_are_located() {
        let e = parse_unit(&unit(&[("unit.toml", "[[proxy]\nname = 1\n")])).unwrap_err();
        assert!(e[0].message.starts_with("TOML syntax error"), "{}", e[0]);
        assert_eq!(e[0].line, 1);
        let e = parse_unit(&unit(&[("unit.toml", "\n[[proxys]]\nname = \"a\"\n")])).unwrap_err();
        assert_eq!(e[0].line, 2);
        assert_eq!(e[0].hint.as_deref(), Some("did you mean \"proxy\"?"));
    }

    #[test]
    fn unknown_step_kind_gets_a_hint() {
        let text = "[[sequence]]\nname = \"s\"\nsteps = [\n  { lgo = \"x\" },\n]\n";
        let e = parse_unit(&unit(&[("unit.toml", text)])).unwrap_err();
        assert_eq!(e[0].line, 4, "{}", e[0]);
        assert_eq!(e[0].hint.as_deref(), Some("did you mean \"log\"?"));
    }
}
