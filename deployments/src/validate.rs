//! Validation of DESIGN §3: names unique per kind, references resolve inside the unit,
//! transports exist in the root config, templates/URLs/paths are well formed, and no two
//! proxies — in the same or different units — claim the same transport + path + method.

use crate::diag::{did_you_mean, Diagnostic};
use crate::model::{element_label, Proxy, Step, Strategy, Unit};
use crate::parse::{Locator, ParsedUnit};
use crate::root::RootConfig;
use crate::template::Template;
use serde_spanned::Spanned;
use std::collections::{BTreeMap, BTreeSet};

pub const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

/// `[a-z0-9][a-z0-9_-]*`: safe as a directory name and in object names.
pub fn is_valid_unit_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= 64
}

/// Element names: letters, digits, `-`, `_`, `.`; no separators used by object names.
pub fn is_valid_element_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A unit that parsed and validated: ready to be built by the server.
pub type ValidUnit = ParsedUnit;

/// Parses and validates one unit on its own (against the root config only).
pub fn check_unit(
    root: &RootConfig,
    sources: &crate::UnitSources,
) -> Result<ValidUnit, Vec<Diagnostic>> {
    let parsed = crate::parse_unit(sources)?;
    let errors = validate_unit(root, &parsed);
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// Every rule that concerns one unit alone.
pub fn validate_unit(root: &RootConfig, parsed: &ParsedUnit) -> Vec<Diagnostic> {
    let mut v = Validator {
        unit: &parsed.unit,
        loc: &parsed.locator,
        errors: Vec::new(),
    };
    v.run(root);
    v.errors
}

/// Route claims of one proxy: (transport, normalised path, methods; empty = any).
pub fn route_claims<'a>(
    root: &'a RootConfig,
    proxy: &'a Proxy,
) -> Vec<(String, String, BTreeSet<String>)> {
    let transports: Vec<String> = if proxy.transports.is_empty() {
        root.transport_names().map(str::to_owned).collect()
    } else {
        proxy
            .transports
            .iter()
            .map(|t| t.get_ref().clone())
            .collect()
    };
    let methods: BTreeSet<String> = proxy
        .methods
        .iter()
        .map(|m| m.get_ref().to_ascii_uppercase())
        .collect();
    let path = normalize_path(proxy.path.get_ref());
    transports
        .into_iter()
        .map(|t| (t, path.clone(), methods.clone()))
        .collect()
}

/// `/orders/` and `/orders` are the same route.
pub fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_owned()
    }
}

fn methods_overlap(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    a.is_empty() || b.is_empty() || a.intersection(b).next().is_some()
}

/// Cross-unit rule: `unit` must not claim a transport + path + method another unit claims.
/// `others` are the units it will run beside (its own previous revision excluded).
pub fn check_conflicts(
    root: &RootConfig,
    unit: &ParsedUnit,
    others: &[&ParsedUnit],
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for proxy in &unit.unit.proxies {
        'claims: for (t, path, methods) in route_claims(root, proxy) {
            for other in others.iter().filter(|o| o.unit.name != unit.unit.name) {
                for op in &other.unit.proxies {
                    for (ot, opath, om) in route_claims(root, op) {
                        if ot == t && opath == path && methods_overlap(&methods, &om) {
                            errors.push(
                                unit.locator
                                    .at(&proxy.origin.rel, proxy.path.span().start, format!(
                                        "path \"{path}\" on transport \"{t}\" is already claimed by proxy \"{}\" of unit \"{}\"",
                                        op.name.get_ref(),
                                        other.unit.name
                                    ))
                                    .element(element_label("proxy", proxy.name.get_ref()))
                                    .hint(Some("choose another path, or restrict `methods`/`transports` so the routes differ".into())),
                            );
                            continue 'claims;
                        }
                    }
                }
            }
        }
    }
    errors
}

/// Validates a whole set of units against the root config: each on its own and every pair
/// for conflicts. Returns the errors per unit name (units without errors are absent).
pub fn validate_set(root: &RootConfig, units: &[&ParsedUnit]) -> BTreeMap<String, Vec<Diagnostic>> {
    let mut out: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
    for (i, u) in units.iter().enumerate() {
        let mut errs = validate_unit(root, u);
        // Only earlier units count as owners, so a conflict is reported once, on the later unit.
        errs.extend(check_conflicts(root, u, &units[..i]));
        if !errs.is_empty() {
            out.entry(u.unit.name.clone()).or_default().extend(errs);
        }
    }
    out
}

struct Validator<'a> {
    unit: &'a Unit,
    loc: &'a Locator,
    errors: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn err(&mut self, file: &str, offset: usize, element: &str, msg: String, hint: Option<String>) {
        self.errors
            .push(self.loc.at(file, offset, msg).element(element).hint(hint));
    }

    fn run(&mut self, root: &RootConfig) {
        let u = self.unit;
        self.unique("proxy", u.proxies.iter().map(|p| (&p.name, &p.origin.rel)));
        self.unique(
            "sequence",
            u.sequences.iter().map(|p| (&p.name, &p.origin.rel)),
        );
        self.unique(
            "endpoint",
            u.endpoints.iter().map(|p| (&p.name, &p.origin.rel)),
        );
        self.unique("task", u.tasks.iter().map(|p| (&p.name, &p.origin.rel)));
        let seqs: Vec<&str> = u
            .sequences
            .iter()
            .map(|s| s.name.get_ref().as_str())
            .collect();
        let eps: Vec<&str> = u
            .endpoints
            .iter()
            .map(|s| s.name.get_ref().as_str())
            .collect();

        let mut claims: Vec<(String, String, BTreeSet<String>, &str)> = Vec::new();
        for p in &u.proxies {
            let f = &p.origin.rel;
            let el = element_label("proxy", p.name.get_ref());
            let path = p.path.get_ref();
            if !path.starts_with('/') || path.contains(char::is_whitespace) {
                self.err(
                    f,
                    p.path.span().start,
                    &el,
                    format!("invalid path \"{path}\""),
                    Some("paths start with '/' and contain no spaces, e.g. \"/orders\"".into()),
                );
            }
            for m in &p.methods {
                if !METHODS.contains(&m.get_ref().to_ascii_uppercase().as_str()) {
                    self.err(
                        f,
                        m.span().start,
                        &el,
                        format!("unknown HTTP method \"{}\"", m.get_ref()),
                        did_you_mean(&m.get_ref().to_ascii_uppercase(), METHODS.iter().copied()),
                    );
                }
            }
            for t in &p.transports {
                if root.transport(t.get_ref()).is_none() {
                    self.err(
                        f,
                        t.span().start,
                        &el,
                        format!(
                            "transport \"{}\" does not exist in the root config",
                            t.get_ref()
                        ),
                        root.transport_hint(t.get_ref()),
                    );
                }
            }
            self.reference(f, &el, "sequence", p.sequence.as_ref(), &seqs);
            self.reference(f, &el, "sequence", p.out_sequence.as_ref(), &seqs);
            self.reference(f, &el, "sequence", p.fault_sequence.as_ref(), &seqs);
            self.reference(f, &el, "endpoint", p.endpoint.as_ref(), &eps);
            if p.sequence.is_none() && p.endpoint.is_none() {
                self.err(
                    f,
                    p.name.span().start,
                    &el,
                    "proxy has neither `endpoint` nor `sequence`".into(),
                    Some("add `endpoint = \"...\"`, or a `sequence` that responds".into()),
                );
            }
            for (t, path, methods) in route_claims(root, p) {
                if let Some((_, _, _, other)) = claims.iter().find(|(ct, cp, cm, _)| {
                    *ct == t && *cp == path && methods_overlap(cm, &methods)
                }) {
                    let other = other.to_string();
                    self.err(f, p.path.span().start, &el, format!("path \"{path}\" on transport \"{t}\" is already claimed by proxy \"{other}\" of unit \"{}\"", u.name), Some("choose another path, or restrict `methods` so the routes differ".into()));
                    break;
                }
                claims.push((t, path, methods, p.name.get_ref()));
            }
        }
        for s in &u.sequences {
            let el = element_label("sequence", s.name.get_ref());
            let f = s.origin.rel.clone();
            self.steps(&f, &el, &s.steps, &seqs, &eps);
        }
        self.sequence_cycles();
        for e in &u.endpoints {
            let el = element_label("endpoint", e.name.get_ref());
            let f = &e.origin.rel;
            if e.addresses.is_empty() {
                self.err(
                    f,
                    e.name.span().start,
                    &el,
                    "endpoint has no addresses".into(),
                    Some("add addresses = [\"http://host:port\"]".into()),
                );
            }
            for a in &e.addresses {
                let url = a.get_ref().url();
                match url::Url::parse(url) {
                    Ok(parsed)
                        if matches!(parsed.scheme(), "http" | "https")
                            && parsed.host_str().is_some() => {}
                    Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => self.err(
                        f,
                        a.span().start,
                        &el,
                        format!("address \"{url}\" has scheme \"{}\"", parsed.scheme()),
                        Some("addresses are http:// or https:// URLs".into()),
                    ),
                    Ok(_) => self.err(
                        f,
                        a.span().start,
                        &el,
                        format!("address \"{url}\" has no host"),
                        None,
                    ),
                    Err(err) => self.err(
                        f,
                        a.span().start,
                        &el,
                        format!("invalid address URL \"{url}\": {err}"),
                        Some("write e.g. \"http://127.0.0.1:9000\"".into()),
                    ),
                }
                if e.strategy == Strategy::Weighted && a.get_ref().weight() == 0 {
                    self.err(
                        f,
                        a.span().start,
                        &el,
                        "weight must be at least 1".into(),
                        None,
                    );
                }
            }
            if e.suspend.factor < 1.0 || e.suspend.after_failures == 0 {
                self.err(
                    f,
                    e.name.span().start,
                    &el,
                    "suspend needs after_failures >= 1 and factor >= 1.0".into(),
                    None,
                );
            }
            if e.timeout.is_zero() {
                self.err(
                    f,
                    e.name.span().start,
                    &el,
                    "timeout must be greater than zero".into(),
                    None,
                );
            }
        }
        for t in &u.tasks {
            let el = element_label("task", t.name.get_ref());
            let f = t.origin.rel.clone();
            self.reference(&f, &el, "sequence", Some(&t.sequence), &seqs);
            if t.every < std::time::Duration::from_millis(10) {
                self.err(
                    &f,
                    t.name.span().start,
                    &el,
                    "`every` must be at least 10ms".into(),
                    None,
                );
            }
        }
    }

    fn unique<'b>(
        &mut self,
        kind: &str,
        names: impl Iterator<Item = (&'b Spanned<String>, &'b String)>,
    ) {
        let mut seen = BTreeSet::new();
        for (name, file) in names {
            let el = element_label(kind, name.get_ref());
            if !is_valid_element_name(name.get_ref()) {
                self.err(
                    file,
                    name.span().start,
                    &el,
                    format!("invalid {kind} name"),
                    Some(
                        "use letters, digits, '-', '_' and '.', starting with a letter or digit"
                            .into(),
                    ),
                );
            }
            if !seen.insert(name.get_ref().clone()) {
                self.err(
                    file,
                    name.span().start,
                    &el,
                    format!("duplicate {kind} name \"{}\"", name.get_ref()),
                    Some(format!("{kind} names must be unique within a unit")),
                );
            }
        }
    }

    fn reference(
        &mut self,
        file: &str,
        el: &str,
        kind: &str,
        r: Option<&Spanned<String>>,
        names: &[&str],
    ) {
        if let Some(r) = r {
            if !names.contains(&r.get_ref().as_str()) {
                self.err(
                    file,
                    r.span().start,
                    el,
                    format!(
                        "{kind} \"{}\" not found in unit \"{}\"",
                        r.get_ref(),
                        self.unit.name
                    ),
                    did_you_mean(r.get_ref(), names.iter().copied()),
                );
            }
        }
    }

    fn template(&mut self, file: &str, offset: usize, el: &str, text: &str) {
        if let Err(e) = Template::parse(text) {
            self.err(file, offset, el, e, None);
        }
    }

    fn steps(&mut self, f: &str, el: &str, steps: &[Spanned<Step>], seqs: &[&str], eps: &[&str]) {
        for step in steps {
            let at = step.span().start;
            match step.get_ref() {
                Step::Log(t) | Step::RemoveHeader(t) => self.template(f, at, el, t),
                Step::SetHeader(nv) | Step::SetProperty(nv) => {
                    if nv.name.trim().is_empty() || nv.name.contains(char::is_whitespace) {
                        self.err(f, at, el, format!("invalid name \"{}\"", nv.name), None);
                    }
                    self.template(f, at, el, &nv.value);
                }
                Step::Filter(flt) => {
                    self.template(f, at, el, &flt.on);
                    let conditions = [
                        flt.equals.is_some(),
                        flt.not_equals.is_some(),
                        flt.contains.is_some(),
                        flt.starts_with.is_some(),
                        flt.exists.is_some(),
                    ];
                    if conditions.iter().filter(|c| **c).count() != 1 {
                        self.err(
                            f,
                            at,
                            el,
                            "filter needs exactly one condition".into(),
                            Some(
                                "add one of equals, not_equals, contains, starts_with, exists"
                                    .into(),
                            ),
                        );
                    }
                    self.steps(f, el, &flt.then, seqs, eps);
                    self.steps(f, el, &flt.otherwise, seqs, eps);
                }
                Step::Switch(sw) => {
                    self.template(f, at, el, &sw.on);
                    if sw.cases.is_empty() {
                        self.err(
                            f,
                            at,
                            el,
                            "switch has no cases".into(),
                            Some("add cases = { value = \"sequence-or-endpoint\" }".into()),
                        );
                    }
                    for target in sw.cases.values().chain(sw.default.iter()) {
                        let name = target.get_ref().as_str();
                        let in_seq = seqs.contains(&name);
                        let in_ep = eps.contains(&name);
                        if in_seq && in_ep {
                            self.err(
                                f,
                                target.span().start,
                                el,
                                format!(
                                    "switch target \"{name}\" is both a sequence and an endpoint"
                                ),
                                Some("rename one of them".into()),
                            );
                        } else if !in_seq && !in_ep {
                            let all: Vec<&str> = seqs.iter().chain(eps.iter()).copied().collect();
                            self.err(f, target.span().start, el, format!("switch target \"{name}\" is neither a sequence nor an endpoint of unit \"{}\"", self.unit.name), did_you_mean(name, all));
                        }
                    }
                }
                Step::Transform(t) => self.json_template(f, at, el, &t.body),
                Step::Respond(r) => {
                    if !(100..=599).contains(&r.status) {
                        self.err(
                            f,
                            at,
                            el,
                            format!("invalid status {}", r.status),
                            Some("use 100..599".into()),
                        );
                    }
                    if r.body.is_some() && r.json.is_some() {
                        self.err(
                            f,
                            at,
                            el,
                            "respond has both `body` and `json`".into(),
                            Some("keep one of them".into()),
                        );
                    }
                    if let Some(b) = &r.body {
                        self.template(f, at, el, b);
                    }
                    if let Some(j) = &r.json {
                        self.json_template(f, at, el, j);
                    }
                    for v in r.headers.values() {
                        self.template(f, at, el, v);
                    }
                }
                Step::Call(c) => self.reference(f, el, "endpoint", Some(&c.endpoint), eps),
            }
        }
    }

    fn json_template(&mut self, f: &str, at: usize, el: &str, v: &toml::Value) {
        match v {
            toml::Value::String(s) => self.template(f, at, el, s),
            toml::Value::Array(a) => a.iter().for_each(|x| self.json_template(f, at, el, x)),
            toml::Value::Table(t) => t.values().for_each(|x| self.json_template(f, at, el, x)),
            _ => {}
        }
    }

    /// A switch that leads back to a sequence already running would never end.
    fn sequence_cycles(&mut self) {
        let u = self.unit;
        let edges: BTreeMap<&str, Vec<&str>> = u
            .sequences
            .iter()
            .map(|s| {
                let mut out = Vec::new();
                collect_switch_targets(&s.steps, &mut out);
                (
                    s.name.get_ref().as_str(),
                    out.into_iter()
                        .filter(|t| u.sequence(t).is_some())
                        .collect(),
                )
            })
            .collect();
        for s in &u.sequences {
            let start = s.name.get_ref().as_str();
            let mut path = vec![start];
            if let Some(cycle) = find_cycle(start, &edges, &mut path) {
                let el = element_label("sequence", start);
                self.err(
                    &s.origin.rel,
                    s.name.span().start,
                    &el,
                    format!("sequences switch in a cycle: {}", cycle.join(" -> ")),
                    Some("a switch must not lead back to a sequence already running".into()),
                );
                return;
            }
        }
    }
}

fn collect_switch_targets<'a>(steps: &'a [Spanned<Step>], out: &mut Vec<&'a str>) {
    for s in steps {
        match s.get_ref() {
            Step::Switch(sw) => out.extend(
                sw.cases
                    .values()
                    .chain(sw.default.iter())
                    .map(|t| t.get_ref().as_str()),
            ),
            Step::Filter(f) => {
                collect_switch_targets(&f.then, out);
                collect_switch_targets(&f.otherwise, out);
            }
            _ => {}
        }
    }
}

fn find_cycle<'a>(
    node: &'a str,
    edges: &BTreeMap<&'a str, Vec<&'a str>>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    for &next in edges.get(node).map(|v| v.as_slice()).unwrap_or(&[]) {
        if next == path[0] {
            let mut c = path.clone();
            c.push(next);
            return Some(c);
        }
        if !path.contains(&next) {
            path.push(next);
            if let Some(c) = find_cycle(next, edges, path) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}
