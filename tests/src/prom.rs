//! A strict check of the Prometheus text exposition format 0.0.4 (promtool is not installed
//! on CI): metric and label names, quoted and escaped label values, numeric values, one TYPE
//! line per family, and the samples of each family together.

/// `Ok(())` when `text` is valid exposition text, else the first offending line.
pub fn check_exposition(text: &str) -> Result<(), String> {
    use std::collections::{HashMap, HashSet};
    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    fn valid_value(v: &str) -> bool {
        matches!(v, "+Inf" | "-Inf" | "NaN") || v.parse::<f64>().is_ok()
    }
    /// `{a="x",b="y"}` → Ok(rest after the closing brace).
    fn labels(s: &str) -> Result<&str, String> {
        let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                return Ok(r);
            }
            let eq = rest.find('=').ok_or("label without =")?;
            let name = &rest[..eq];
            if !valid_name(name) || name.contains(':') {
                return Err(format!("bad label name {name:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value must be quoted")?;
            let mut escaped = false;
            let mut end = None;
            for (i, c) in rest.char_indices() {
                match (escaped, c) {
                    (true, '\\' | '"' | 'n') => escaped = false,
                    (true, other) => return Err(format!("bad escape \\{other}")),
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    (false, '\n') => return Err("newline in a label value".into()),
                    _ => {}
                }
            }
            rest = &rest[end.ok_or("unterminated label value")? + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !valid_name(name) {
                        return Err(at("bad metric name".into()));
                    }
                    if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at("second TYPE line for the metric".into()));
                    }
                }
                (Some("HELP"), Some(name), _) if !valid_name(name) => {
                    return Err(at("bad metric name".into()))
                }
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at("bad metric name".into()));
        }
        let rest = if line[name_end..].starts_with('{') {
            labels(&line[name_end..]).map_err(at)?
        } else {
            &line[name_end..]
        };
        let mut fields = rest.split_whitespace();
        let value = fields.next().ok_or_else(|| at("no value".into()))?;
        if !valid_value(value) {
            return Err(at(format!("bad value {value:?}")));
        }
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing text".into()));
        }
        let family = ["_sum", "_count", "_bucket"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                matches!(
                    types.get(base).map(String::as_str),
                    Some("summary" | "histogram")
                )
                .then(|| base.to_owned())
            })
            .unwrap_or_else(|| name.to_owned());
        if current.as_deref() != Some(family.as_str()) {
            if let Some(prev) = current.take() {
                finished.insert(prev);
            }
            if finished.contains(&family) {
                return Err(at(format!("samples of {family} are not together")));
            }
            current = Some(family);
        }
    }
    Ok(())
}
