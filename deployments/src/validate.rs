//! Validation of DESIGN §3: names unique per kind, references resolve inside the unit,
//! transports exist in the root config, templates/URLs/paths are well formed, and no two
//! proxies — in the same or different units — claim the same transport + path + method.

use crate::diag::{did_you_mean, Diagnostic};
use crate::model::{element_label, Proxy, Step, Strategy, Unit};
use crate::parse::{Locator, ParsedUnit};
use crate::root::RootConfig;
use crate::template::Template;
use serde_spanned::Spanned;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

pub const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

pub use crate::model::is_valid_element_name;
pub use crate::source::is_valid_unit_name;

/// How deep sequences may nest: each switch into a sequence and each filter branch is one
/// level. The server runs nested steps recursively, so the depth is bounded here, before
/// anything is built (docs/limits.md).
pub const MAX_NESTING: usize = 64;

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

/// Names of one element kind in a unit.
type Names<'a> = BTreeSet<&'a str>;

/// Transport and normalised path of a route.
type RouteKey = (String, String);

/// Methods claimed on a route, and by which proxy of which unit.
type Claim<'a> = (BTreeSet<String>, &'a str, &'a str);

/// Route claims of one proxy: (transport, normalised path, methods; empty = any).
pub fn route_claims<'a>(
    root: &'a RootConfig,
    proxy: &'a Proxy,
) -> Vec<(String, String, BTreeSet<String>)> {
    let transports: Vec<String> = if proxy.transports.is_empty() {
        root.http_transport_names().map(str::to_owned).collect()
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
    // Index the others' claims once by (transport, path): the check stays linear in the
    // number of proxies, so deploying beside thousands of proxies stays fast.
    let mut claimed: HashMap<RouteKey, Vec<Claim<'_>>> = HashMap::new();
    for other in others.iter().filter(|o| o.unit.name != unit.unit.name) {
        for op in &other.unit.proxies {
            for (t, path, methods) in route_claims(root, op) {
                claimed.entry((t, path)).or_default().push((
                    methods,
                    op.name.get_ref(),
                    &other.unit.name,
                ));
            }
        }
    }
    let mut errors = Vec::new();
    for proxy in &unit.unit.proxies {
        for (t, path, methods) in route_claims(root, proxy) {
            let owner = claimed
                .get(&(t.clone(), path.clone()))
                .and_then(|list| list.iter().find(|(om, _, _)| methods_overlap(&methods, om)));
            if let Some((_, owner_proxy, owner_unit)) = owner {
                errors.push(
                    unit.locator
                        .at(&proxy.origin.rel, proxy.path.span().start, format!(
                            "path \"{path}\" on transport \"{t}\" is already claimed by proxy \"{owner_proxy}\" of unit \"{owner_unit}\""
                        ))
                        .element(element_label("proxy", proxy.name.get_ref()))
                        .hint(Some("choose another path, or restrict `methods`/`transports` so the routes differ".into())),
                );
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
        self.unique(
            "consumer",
            u.consumers.iter().map(|p| (&p.name, &p.origin.rel)),
        );
        // Sets: references are checked per proxy/step, so lookups must not be linear.
        let seqs: Names = u
            .sequences
            .iter()
            .map(|s| s.name.get_ref().as_str())
            .collect();
        let eps: Names = u
            .endpoints
            .iter()
            .map(|s| s.name.get_ref().as_str())
            .collect();

        let mut claims: HashMap<RouteKey, Vec<(BTreeSet<String>, &str)>> = HashMap::new();
        for p in &u.proxies {
            let f = &p.origin.rel;
            let el = element_label("proxy", p.name.get_ref());
            let path = p.path.get_ref();
            if !path.starts_with('/')
                || path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#')
            {
                self.err(
                    f,
                    p.path.span().start,
                    &el,
                    format!("invalid path \"{path}\""),
                    Some(
                        "paths start with '/' and contain no spaces, '?' or '#', e.g. \"/orders\""
                            .into(),
                    ),
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
                if root
                    .transport(t.get_ref())
                    .is_some_and(|d| !d.kind.is_http())
                {
                    self.err(
                        f,
                        t.span().start,
                        &el,
                        format!(
                            "transport \"{}\" is an amqp transport; proxies listen on http(s) transports",
                            t.get_ref()
                        ),
                        root.transport_hint_of(t.get_ref(), true),
                    );
                } else if root.transport(t.get_ref()).is_none() {
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
                let key = (t, path);
                let other = claims
                    .get(&key)
                    .and_then(|list| list.iter().find(|(cm, _)| methods_overlap(cm, &methods)))
                    .map(|(_, n)| n.to_string());
                if let Some(other) = other {
                    let (t, path) = key;
                    self.err(f, p.path.span().start, &el, format!("path \"{path}\" on transport \"{t}\" is already claimed by proxy \"{other}\" of unit \"{}\"", u.name), Some("choose another path, or restrict `methods` so the routes differ".into()));
                    break;
                }
                claims
                    .entry(key)
                    .or_default()
                    .push((methods, p.name.get_ref()));
            }
        }
        for s in &u.sequences {
            let el = element_label("sequence", s.name.get_ref());
            let f = s.origin.rel.clone();
            self.steps(root, &f, &el, &s.steps, &seqs, &eps);
        }
        self.sequence_graph();
        self.checks();
        self.guard();
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
                if let Some((msg, hint)) = address_problem(a.get_ref().url()) {
                    self.err(f, a.span().start, &el, msg, hint);
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
            for (key, d) in [
                ("timeout", e.timeout),
                ("connect_timeout", e.connect_timeout),
            ] {
                if d.is_zero() {
                    self.err(
                        f,
                        e.name.span().start,
                        &el,
                        format!("{key} must be greater than zero"),
                        None,
                    );
                }
            }
        }
        for c in &u.consumers {
            self.consumer(root, c, &seqs, &eps);
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

    /// `name` must be an amqp transport of the root config.
    fn amqp_transport(&mut self, root: &RootConfig, f: &str, el: &str, name: &Spanned<String>) {
        match root.transport(name.get_ref()) {
            Some(t) if t.kind == crate::root::TransportKind::Amqp => {}
            Some(t) => self.err(
                f,
                name.span().start,
                el,
                format!(
                    "transport \"{}\" is an {} transport, not amqp",
                    name.get_ref(),
                    t.kind.as_str()
                ),
                root.transport_hint_of(name.get_ref(), false),
            ),
            None => self.err(
                f,
                name.span().start,
                el,
                format!(
                    "transport \"{}\" does not exist in the root config",
                    name.get_ref()
                ),
                root.transport_hint_of(name.get_ref(), false),
            ),
        }
    }

    fn consumer(
        &mut self,
        root: &RootConfig,
        c: &crate::model::Consumer,
        seqs: &Names,
        eps: &Names,
    ) {
        let f = c.origin.rel.clone();
        let f = &*f;
        let el = element_label("consumer", c.name.get_ref());
        let at = c.name.span().start;
        match (&c.transport, &c.dir) {
            (Some(_), Some(d)) => self.err(
                f,
                d.span().start,
                &el,
                "consumer has both `transport` (a queue) and `dir` (an inbox)".into(),
                Some("a consumer reads one source: keep `transport` + `queue`, or `dir`".into()),
            ),
            (None, None) => self.err(
                f,
                at,
                &el,
                "consumer has neither `transport` + `queue` nor `dir`".into(),
                Some("add `transport = \"<amqp transport>\"` and `queue = \"...\"`, or `dir = \"inbox\"`".into()),
            ),
            (Some(t), None) => {
                self.amqp_transport(root, f, &el, t);
                match &c.queue {
                    None => self.err(
                        f,
                        t.span().start,
                        &el,
                        "amqp consumer without `queue`".into(),
                        Some("add `queue = \"orders\"`".into()),
                    ),
                    Some(q) if q.get_ref().trim().is_empty() || q.get_ref().len() > 255 => self
                        .err(
                            f,
                            q.span().start,
                            &el,
                            "queue names are 1 to 255 characters".into(),
                            None,
                        ),
                    Some(_) => {}
                }
                if c.prefetch == 0 {
                    self.err(f, at, &el, "prefetch must be at least 1".into(), None);
                }
                if c.concurrency > c.prefetch.max(1) {
                    self.err(
                        f,
                        at,
                        &el,
                        format!(
                            "concurrency {} is above prefetch {}: the extra workers would never get a message",
                            c.concurrency, c.prefetch
                        ),
                        Some("raise `prefetch` to at least `concurrency`".into()),
                    );
                }
            }
            (None, Some(d)) => {
                for (key, present) in [("queue", c.queue.is_some())] {
                    if present {
                        self.err(
                            f,
                            at,
                            &el,
                            format!("`{key}` is for amqp consumers"),
                            Some(format!("remove `{key}`, or use `transport` instead of `dir`")),
                        );
                    }
                }
                let dirs = [Some(d), c.done_dir.as_ref(), c.failed_dir.as_ref()];
                for x in dirs.iter().flatten() {
                    if x.get_ref().trim().is_empty() {
                        self.err(f, x.span().start, &el, "empty directory".into(), None);
                    }
                }
                let norm = |s: &str| s.trim_end_matches('/').to_owned();
                for x in [c.done_dir.as_ref(), c.failed_dir.as_ref()].iter().flatten() {
                    if norm(x.get_ref()) == norm(d.get_ref()) {
                        self.err(
                            f,
                            x.span().start,
                            &el,
                            "done/failed directory is the inbox itself".into(),
                            Some("processed files must leave the inbox: name another directory".into()),
                        );
                    }
                }
                if c.pattern.is_empty() || c.pattern.contains('/') {
                    self.err(
                        f,
                        at,
                        &el,
                        format!("invalid pattern \"{}\"", c.pattern),
                        Some("a file-name pattern with * and ?, e.g. \"*.json\"".into()),
                    );
                }
                if c.poll < std::time::Duration::from_millis(10) {
                    self.err(f, at, &el, "`poll` must be at least 10ms".into(), None);
                }
            }
        }
        self.reference(f, &el, "sequence", c.sequence.as_ref(), seqs);
        self.reference(f, &el, "endpoint", c.endpoint.as_ref(), eps);
        if c.sequence.is_none() && c.endpoint.is_none() {
            self.err(
                f,
                at,
                &el,
                "consumer has neither `sequence` nor `endpoint`".into(),
                Some("add `sequence = \"...\"` to mediate each message, or `endpoint = \"...\"` to POST it".into()),
            );
        }
        let of = &c.on_failure;
        if of.max_attempts == 0 {
            self.err(
                f,
                at,
                &el,
                "on_failure.max_attempts must be at least 1".into(),
                None,
            );
        }
        if of.dead_letter_exchange.is_some() != of.dead_letter_routing_key.is_some()
            && of.dead_letter_routing_key.is_none()
        {
            self.err(
                f,
                at,
                &el,
                "on_failure.dead_letter_exchange without dead_letter_routing_key".into(),
                Some(
                    "add dead_letter_routing_key (for the default exchange \"\": the queue name)"
                        .into(),
                ),
            );
        }
        if c.is_file()
            && (of.dead_letter_exchange.is_some() || of.dead_letter_routing_key.is_some())
        {
            self.err(
                f,
                at,
                &el,
                "dead-letter settings are for amqp consumers".into(),
                Some("failed files go to `failed_dir`".into()),
            );
        }
    }

    fn unique<'b>(
        &mut self,
        kind: &str,
        names: impl Iterator<Item = (&'b Spanned<String>, &'b Arc<str>)>,
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
        names: &Names,
    ) {
        if let Some(r) = r {
            if !names.contains(r.get_ref().as_str()) {
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

    fn header_name(&mut self, file: &str, offset: usize, el: &str, name: &str) {
        if !is_header_name(name) {
            self.err(
                file,
                offset,
                el,
                format!("invalid header name \"{name}\""),
                Some("header names are letters, digits and !#$%&'*+-.^_`|~ (no spaces, no placeholders)".into()),
            );
        }
    }

    fn template(&mut self, file: &str, offset: usize, el: &str, text: &str) {
        if let Ok(t) = Template::parse(text) {
            for seg in &t.segments {
                if let crate::template::Segment::Var(crate::template::Var::Flag(n)) = seg {
                    if !self.unit.flags.contains_key(n) {
                        let hint = did_you_mean(n, self.unit.flags.keys().map(|k| k.as_str()))
                            .or_else(|| Some(format!("declare it: [flags] {n} = false")));
                        self.err(
                            file,
                            offset,
                            el,
                            format!("flag \"{n}\" is not declared in [flags]"),
                            hint,
                        );
                    }
                }
            }
        }
        if let Err(e) = Template::parse(text) {
            // "unknown placeholder ${x}; did you mean ...": keep the hint apart, as elsewhere.
            match e.rsplit_once("; ") {
                Some((msg, hint)) if e.starts_with("unknown placeholder") => {
                    self.err(file, offset, el, msg.to_owned(), Some(hint.to_owned()))
                }
                _ => self.err(file, offset, el, e, None),
            }
        }
    }

    fn steps(
        &mut self,
        root: &RootConfig,
        f: &str,
        el: &str,
        steps: &[Spanned<Step>],
        seqs: &Names,
        eps: &Names,
    ) {
        for step in steps {
            let at = step.span().start;
            match step.get_ref() {
                Step::Log(t) => self.template(f, at, el, t),
                // Header names are literal, not templates: the server compiles them once.
                Step::RemoveHeader(name) => self.header_name(f, at, el, name),
                Step::SetHeader(nv) => {
                    self.header_name(f, at, el, &nv.name);
                    self.template(f, at, el, &nv.value);
                }
                Step::SetProperty(nv) => {
                    if nv.name.trim().is_empty() || nv.name.contains(char::is_whitespace) {
                        self.err(
                            f,
                            at,
                            el,
                            format!("invalid property name \"{}\"", nv.name),
                            Some("property names contain no spaces".into()),
                        );
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
                    self.steps(root, f, el, &flt.then, seqs, eps);
                    self.steps(root, f, el, &flt.otherwise, seqs, eps);
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
                        let in_seq = seqs.contains(name);
                        let in_ep = eps.contains(name);
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
                Step::Transform(t) => {
                    if !is_header_value(&t.content_type) {
                        self.err(
                            f,
                            at,
                            el,
                            format!("invalid content_type \"{}\"", t.content_type),
                            Some("write a media type, e.g. \"application/json\"".into()),
                        );
                    }
                    self.json_template(f, at, el, &t.body)
                }
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
                    for (name, v) in &r.headers {
                        self.header_name(f, at, el, name);
                        self.template(f, at, el, v);
                    }
                }
                Step::Call(c) => self.reference(f, el, "endpoint", Some(&c.endpoint), eps),
                Step::Publish(p) => {
                    self.amqp_transport(root, f, el, &p.transport);
                    self.template(f, at, el, &p.routing_key);
                    if p.exchange.is_empty() && p.routing_key.trim().is_empty() {
                        self.err(
                            f,
                            at,
                            el,
                            "publish to the default exchange without a routing key".into(),
                            Some(
                                "set `routing_key` to the queue name, or name an `exchange`".into(),
                            ),
                        );
                    }
                    for v in p.headers.values() {
                        self.template(f, at, el, v);
                    }
                }
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

    /// Checks must be well formed and reach a proxy of the unit.
    fn checks(&mut self) {
        let u = self.unit;
        self.unique("check", u.checks.iter().map(|c| (&c.name, &c.origin.rel)));
        for c in &u.checks {
            let el = element_label("check", c.name.get_ref());
            let f = c.origin.rel.clone();
            let at = c.path.span().start;
            let method = c.method.get_ref().to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                self.err(
                    &f,
                    c.method.span().start,
                    &el,
                    format!("unknown method \"{}\"", c.method.get_ref()),
                    did_you_mean(&method, METHODS.iter().copied()),
                );
            }
            let path = c.path.get_ref();
            if !path.starts_with('/') {
                self.err(
                    &f,
                    at,
                    &el,
                    format!("check path \"{path}\" must start with '/'"),
                    None,
                );
            } else {
                let route = path.split('?').next().unwrap_or(path);
                let served = u.proxies.iter().any(|p| {
                    let base = normalize_path(p.path.get_ref());
                    let under = route == base
                        || base == "/"
                        || route
                            .strip_prefix(base.as_str())
                            .is_some_and(|r| r.starts_with('/'));
                    let methods_ok = p.methods.is_empty()
                        || p.methods
                            .iter()
                            .any(|m| m.get_ref().eq_ignore_ascii_case(&method));
                    under && methods_ok
                });
                if !served {
                    self.err(&f, at, &el, format!("no proxy of unit \"{}\" serves {method} {route}", u.name), Some("a check runs through the unit's own proxies: point it at one of their paths".into()));
                }
            }
            for name in c.headers.keys().chain(c.expect.headers.keys()) {
                self.header_name(&f, at, &el, name);
            }
            if let Some(s) = c.expect.status {
                if !(100..=599).contains(&s) {
                    self.err(
                        &f,
                        at,
                        &el,
                        format!("invalid expected status {s}"),
                        Some("use 100..599".into()),
                    );
                }
            }
            for ptr in c.expect.json.keys() {
                if !ptr.starts_with('/') {
                    self.err(
                        &f,
                        at,
                        &el,
                        format!("JSON pointer \"{ptr}\" must start with '/'"),
                        Some("e.g. json = { \"/status\" = \"up\" }".into()),
                    );
                }
            }
            if c.timeout.is_zero() {
                self.err(&f, at, &el, "timeout must be longer than 0".into(), None);
            }
        }
    }

    fn guard(&mut self) {
        let Some(g) = &self.unit.guard else { return };
        let f = g.origin.rel.clone();
        let at = g.offset;
        if g.max_error_rate.is_none() && g.max_p99.is_none() {
            self.err(
                &f,
                at,
                "guard",
                "a guard needs max_error_rate or max_p99".into(),
                Some("e.g. max_error_rate = 5.0 (percent of 5xx answers)".into()),
            );
        }
        if g.max_error_rate
            .is_some_and(|r| !(0.0..=100.0).contains(&r))
        {
            self.err(
                &f,
                at,
                "guard",
                "max_error_rate is a percentage: 0 to 100".into(),
                None,
            );
        }
        if g.window.is_zero() {
            self.err(&f, at, "guard", "window must be longer than 0".into(), None);
        }
    }

    /// A switch that leads back to a sequence already running would never end, and a
    /// chain of switches and filters deeper than [`MAX_NESTING`] is refused (the server
    /// runs nested sequences on its stack). One iterative depth-first walk over the
    /// sequence graph, each sequence visited once: linear in the size of the unit.
    fn sequence_graph(&mut self) {
        let u = self.unit;
        let index: HashMap<&str, usize> = u
            .sequences
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.get_ref().as_str(), i))
            .collect();
        // Per sequence: its own filter nesting, and (target, filter depth of the switch).
        let mut local = vec![0usize; u.sequences.len()];
        let mut edges: Vec<Vec<(usize, usize)>> = Vec::with_capacity(u.sequences.len());
        for (i, s) in u.sequences.iter().enumerate() {
            let mut out = Vec::new();
            local[i] = collect_switch_targets(&s.steps, 0, &mut out);
            edges.push(
                out.into_iter()
                    .filter_map(|(t, d)| index.get(t).map(|&j| (j, d)))
                    .collect(),
            );
        }
        const NEW: u8 = 0;
        const ON_PATH: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; u.sequences.len()];
        let mut depth = vec![0usize; u.sequences.len()];
        for start in 0..u.sequences.len() {
            if state[start] != NEW {
                continue;
            }
            state[start] = ON_PATH;
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            while let Some(top) = stack.last_mut() {
                let (node, next) = *top;
                if let Some(&(t, _)) = edges[node].get(next) {
                    top.1 += 1;
                    match state[t] {
                        NEW => {
                            state[t] = ON_PATH;
                            stack.push((t, 0));
                        }
                        ON_PATH => {
                            let from = stack.iter().position(|(n, _)| *n == t).unwrap_or(0);
                            let mut cycle: Vec<&str> = stack[from..]
                                .iter()
                                .map(|(n, _)| u.sequences[*n].name.get_ref().as_str())
                                .collect();
                            cycle.push(u.sequences[t].name.get_ref());
                            let s = &u.sequences[t];
                            self.err(
                                &s.origin.rel,
                                s.name.span().start,
                                &element_label("sequence", s.name.get_ref()),
                                format!("sequences switch in a cycle: {}", cycle.join(" -> ")),
                                Some(
                                    "a switch must not lead back to a sequence already running"
                                        .into(),
                                ),
                            );
                            return;
                        }
                        _ => {}
                    }
                } else {
                    depth[node] = edges[node]
                        .iter()
                        .map(|&(t, d)| d + 1 + depth[t])
                        .fold(local[node], usize::max);
                    state[node] = DONE;
                    stack.pop();
                }
            }
        }
        // One error, on the entry of the deepest chain.
        if let Some((i, &d)) = depth.iter().enumerate().max_by_key(|(_, d)| **d) {
            if d > MAX_NESTING {
                let s = &u.sequences[i];
                self.err(
                    &s.origin.rel,
                    s.name.span().start,
                    &element_label("sequence", s.name.get_ref()),
                    format!(
                        "sequence nests {d} levels deep through switch and filter steps; the limit is {MAX_NESTING}"
                    ),
                    Some(
                        "flatten the chain: route with one switch over several cases instead of a switch per case"
                            .into(),
                    ),
                );
            }
        }
    }
}

/// An HTTP field name (RFC 9110 token), as the server's header map accepts it.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Visible ASCII, spaces and tabs: what an HTTP header value may hold.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// What is wrong with an endpoint address, if anything: (message, hint).
fn address_problem(url: &str) -> Option<(String, Option<String>)> {
    let example = || Some("write e.g. \"http://127.0.0.1:9000\"".to_owned());
    if !url.contains("://") {
        let authority = url.split('/').next().unwrap_or("");
        let host_port = !authority.is_empty()
            && authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        let hint = if host_port {
            Some(format!("add the scheme: \"http://{url}\""))
        } else {
            example()
        };
        return Some((
            format!("address \"{url}\" is not an http:// or https:// URL"),
            hint,
        ));
    }
    match url::Url::parse(url) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some((
            format!("address \"{url}\" has scheme \"{}\"", u.scheme()),
            Some("addresses are http:// or https:// URLs".into()),
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            Some((format!("address \"{url}\" has no host"), example()))
        }
        Ok(_) => None,
        Err(url::ParseError::EmptyHost) => {
            Some((format!("address \"{url}\" has no host"), example()))
        }
        Err(e) => Some((format!("invalid address URL \"{url}\": {e}"), example())),
    }
}

/// Collects the switch targets of `steps` with the filter depth each switch sits at, and
/// returns the deepest filter nesting of the steps themselves.
fn collect_switch_targets<'a>(
    steps: &'a [Spanned<Step>],
    depth: usize,
    out: &mut Vec<(&'a str, usize)>,
) -> usize {
    let mut deepest = depth;
    for s in steps {
        match s.get_ref() {
            Step::Switch(sw) => out.extend(
                sw.cases
                    .values()
                    .chain(sw.default.iter())
                    .map(|t| (t.get_ref().as_str(), depth)),
            ),
            Step::Filter(f) => {
                deepest = deepest
                    .max(collect_switch_targets(&f.then, depth + 1, out))
                    .max(collect_switch_targets(&f.otherwise, depth + 1, out));
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnitSources;
    use std::path::Path;

    fn root() -> RootConfig {
        RootConfig::parse(
            "[[transport]]\nname = \"http-a\"\nbind = \"127.0.0.1:18280\"\n[[transport]]\nname = \"rabbit\"\nkind = \"amqp\"\nurl = \"amqp://127.0.0.1:5672/%2f\"\n",
            "esb.toml",
            Path::new("."),
        )
        .unwrap()
    }

    /// The messages of every error of a unit made of `text`.
    fn errors(text: &str) -> Vec<String> {
        let parsed = crate::parse_unit(&UnitSources::from_content("u", text)).unwrap();
        validate_unit(&root(), &parsed)
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    const PROXY: &str = "[[proxy]]\nname = \"p\"\npath = \"/p\"\nendpoint = \"e\"\n";

    #[test]
    fn consumers_resolve_transports_queues_and_references() {
        let ok = "[[sequence]]\nname = \"s\"\nsteps = [{ publish = { transport = \"rabbit\", routing_key = \"out\" } }]\n[[consumer]]\nname = \"c\"\ntransport = \"rabbit\"\nqueue = \"in\"\nsequence = \"s\"\n[[consumer]]\nname = \"f\"\ndir = \"inbox\"\npattern = \"*.json\"\nsequence = \"s\"\n";
        assert_eq!(errors(ok), Vec::<String>::new());
        let e = errors("[[sequence]]\nname = \"s\"\n[[consumer]]\nname = \"c\"\ntransport = \"rabit\"\nqueue = \"in\"\nsequence = \"sq\"\n");
        assert!(
            e.iter()
                .any(|m| m.contains("transport \"rabit\" does not exist")
                    && m.contains("did you mean \"rabbit\"")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("sequence \"sq\" not found") && m.contains("consumer \"c\"")),
            "{e:?}"
        );
        let e = errors("[[sequence]]\nname = \"s\"\n[[consumer]]\nname = \"c\"\ntransport = \"http-a\"\nsequence = \"s\"\n");
        assert!(
            e.iter()
                .any(|m| m.contains("is an http transport, not amqp")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("without `queue`")), "{e:?}");
        let e = errors("[[sequence]]\nname = \"s\"\n[[consumer]]\nname = \"c\"\ndir = \"in\"\ndone_dir = \"in/\"\nsequence = \"s\"\n[[consumer]]\nname = \"d\"\n");
        assert!(e.iter().any(|m| m.contains("is the inbox itself")), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.contains("neither `transport` + `queue` nor `dir`")),
            "{e:?}"
        );
        let e = errors("[[sequence]]\nname = \"s\"\nsteps = [{ publish = { transport = \"http-a\", routing_key = \"\" } }]\n");
        assert!(e.iter().any(|m| m.contains("not amqp")), "{e:?}");
        assert!(
            e.iter().any(|m| m.contains("without a routing key")),
            "{e:?}"
        );
        let e = errors("[[proxy]]\nname = \"p\"\npath = \"/p\"\ntransports = [\"rabbit\"]\nsequence = \"s\"\n[[sequence]]\nname = \"s\"\n");
        assert!(
            e.iter()
                .any(|m| m.contains("proxies listen on http(s) transports")),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_consumer_keys_are_errors_with_a_hint() {
        let e = crate::parse_unit(&UnitSources::from_content(
            "u",
            "[[consumer]]\nname = \"c\"\nqeue = \"x\"\n",
        ))
        .unwrap_err();
        assert_eq!(e[0].line, 3, "{}", e[0]);
        assert_eq!(e[0].hint.as_deref(), Some("did you mean \"queue\"?"));
    }

    /// `n` sequences where sequence i switches to i+1 (a chain), or to i+1 and i+2 (a
    /// DAG whose number of paths grows like Fibonacci's numbers).
    fn switch_graph(n: usize, dag: bool) -> String {
        let mut t =
            String::from("[[endpoint]]\nname = \"e\"\naddresses = [\"http://127.0.0.1:9\"]\n");
        for i in 0..n {
            t.push_str(&format!("[[sequence]]\nname = \"s{i}\"\nsteps = [\n"));
            if i + 1 < n {
                let second = if dag && i + 2 < n { i + 2 } else { i + 1 };
                t.push_str(&format!(
                    "  {{ switch = {{ on = \"${{header.x}}\", cases = {{ a = \"s{}\", b = \"s{second}\" }}, default = \"e\" }} }},\n",
                    i + 1
                ));
            }
            t.push_str("  { log = \"x\" },\n]\n");
        }
        t
    }

    #[test]
    fn checks_flags_and_guards_are_validated() {
        let errs = errors(&format!(
            "{PROXY}[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n[[check]]\nname = \"c\"\npath = \"/elsewhere\"\n[[sequence]]\nname = \"s\"\nsteps = [{{ log = \"${{flag.beta}}\" }}]\n[guard]\nwindow = \"10s\"\n"
        ));
        let all = errs.join("\n");
        assert!(
            all.contains("no proxy of unit \"u\" serves GET /elsewhere"),
            "{all}"
        );
        assert!(
            all.contains("flag \"beta\" is not declared in [flags]"),
            "{all}"
        );
        assert!(
            all.contains("a guard needs max_error_rate or max_p99"),
            "{all}"
        );
        let ok = errors(&format!(
            "[flags]\nbeta = false\n{PROXY}[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n[[check]]\nname = \"c\"\npath = \"/p/x\"\nexpect = {{ status = 200 }}\n[[sequence]]\nname = \"s\"\nsteps = [{{ log = \"${{flag.beta}}\" }}]\n[guard]\nmax_error_rate = 5.0\n"
        ));
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn deep_switch_chains_are_refused_with_the_limit() {
        let errs = errors(&switch_graph(1000, false));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("sequence \"s0\"")
                && errs[0].contains("nests 999 levels deep")
                && errs[0].contains("the limit is 64"),
            "{errs:?}"
        );
        assert!(errors(&switch_graph(MAX_NESTING + 1, false)).is_empty());
        assert_eq!(errors(&switch_graph(MAX_NESTING + 2, false)).len(), 1);
    }

    #[test]
    fn switch_dags_validate_in_linear_time() {
        // 60 sequences with ~1.5e12 paths: a walk per path would never finish.
        let mut text = switch_graph(60, true);
        text.push_str(PROXY);
        assert!(errors(&text).is_empty());
        let errs = errors(&switch_graph(200, true));
        assert!(
            errs.iter().any(|e| e.contains("nests 199 levels")),
            "{errs:?}"
        );
    }

    fn endpoint(addresses: &str) -> String {
        format!("{PROXY}[[endpoint]]\nname = \"e\"\naddresses = [{addresses}]\n")
    }

    #[test]
    fn unit_names_are_safe_directory_names() {
        for ok in ["orders", "a", "0", "internal-services", "a_b-1"] {
            assert!(is_valid_unit_name(ok), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in [
            "../x", "..", ".", "a/b", "Bad.Name", "Orders", "-x", "_x", "", "a b", &long,
        ] {
            assert!(!is_valid_unit_name(bad), "{bad}");
        }
    }

    #[test]
    fn addresses_need_http_scheme_and_host() {
        assert!(errors(&endpoint("\"http://127.0.0.1:9000\", \"https://h/base\"")).is_empty());
        let e = errors(&endpoint("\"localhost:9000\""));
        assert!(
            e[0].contains(
                "is not an http:// or https:// URL; add the scheme: \"http://localhost:9000\""
            ),
            "{e:?}"
        );
        let e = errors(&endpoint("\"http://:9000\""));
        assert!(
            e[0].contains("address \"http://:9000\" has no host"),
            "{e:?}"
        );
        let e = errors(&endpoint("\"ftp://h:21\""));
        assert!(e[0].contains("has scheme \"ftp\""), "{e:?}");
        let e = errors(&endpoint("\"http://a b\""));
        assert!(e[0].contains("invalid address URL"), "{e:?}");
    }

    #[test]
    fn header_names_are_literal_tokens() {
        let seq = |step: &str| {
            format!("{PROXY}[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n[[sequence]]\nname = \"s\"\nsteps = [{step}]\n")
        };
        assert!(errors(&seq(
            "{ set_header = { name = \"X-A\", value = \"${method}\" } }"
        ))
        .is_empty());
        for bad in [
            "{ set_header = { name = \"x a\", value = \"1\" } }",
            "{ remove_header = \"${header.x}\" }",
            "{ respond = { headers = { \"x:y\" = \"1\" } } }",
        ] {
            let e = errors(&seq(bad));
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            assert!(e[0].contains("invalid header name"), "{e:?}");
        }
        let e = errors(&seq(
            "{ transform = { body = {}, content_type = \"a\\nb\" } }",
        ));
        assert!(e[0].contains("invalid content_type"), "{e:?}");
    }

    #[test]
    fn unknown_placeholders_carry_their_hint_apart() {
        let text = format!("{PROXY}[[endpoint]]\nname = \"e\"\naddresses = [\"http://h:1\"]\n[[sequence]]\nname = \"s\"\nsteps = [{{ log = \"${{metod}}\" }}]\n");
        let parsed = crate::parse_unit(&UnitSources::from_content("u", &text)).unwrap();
        let e = validate_unit(&root(), &parsed);
        assert_eq!(e[0].message, "unknown placeholder ${metod}");
        assert_eq!(e[0].hint.as_deref(), Some("did you mean \"method\"?"));
    }

    #[test]
    fn paths_with_query_or_fragment_never_match_and_are_refused() {
        let e = errors(&endpoint("\"http://h:1\"").replace("\"/p\"", "\"/p?x=1\""));
        assert!(e[0].contains("invalid path \"/p?x=1\""), "{e:?}");
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let e = errors(&format!(
            "{}connect_timeout = \"0s\"\n",
            endpoint("\"http://h:1\"")
        ));
        assert!(
            e[0].contains("connect_timeout must be greater than zero"),
            "{e:?}"
        );
    }

    #[test]
    fn conflicts_across_units_name_the_owner() {
        let a = crate::parse_unit(&UnitSources::from_content("a", &endpoint("\"http://h:1\"")))
            .unwrap();
        let b = crate::parse_unit(&UnitSources::from_content("b", &endpoint("\"http://h:1\"")))
            .unwrap();
        let errs = validate_set(&root(), &[&a, &b]);
        assert!(!errs.contains_key("a"));
        assert!(errs["b"][0]
            .message
            .contains("already claimed by proxy \"p\" of unit \"a\""));
    }
}
