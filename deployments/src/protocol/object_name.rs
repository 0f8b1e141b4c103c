//! JMX-style object names (`domain:key=value,...`) that address management beans.
//! Owns parsing (including JMX quoted values), canonical and given-order formatting, and
//! pattern matching (`*`/`?` in domain and values, `,*` property-list wildcard).
//! Invariants: the domain is non-empty and single-line; keys are non-empty, unique and free of
//! reserved characters; properties keep their given order, but equality, hashing and ordering ignore it.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string (or builder input) is not a valid [`ObjectName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectNameError {
    #[error(
        "object name is empty; expected <domain>:<key>=<value>[,<key>=<value>...], \
         e.g. esb:type=Proxy,unit=orders,name=list"
    )]
    Empty,
    #[error(
        "object name \"{input}\" has no ':' between the domain and the key properties; \
         write it as <domain>:<key>=<value>, e.g. esb:type=Server"
    )]
    MissingColon { input: String },
    #[error(
        "object name \"{input}\" has an empty domain; put a domain such as \"esb\" before the ':'"
    )]
    EmptyDomain { input: String },
    #[error("object name \"{input}\" has the character {ch:?} in its domain; domains may not contain ':' or line breaks")]
    InvalidDomainChar { input: String, ch: char },
    #[error(
        "object name \"{input}\" has no key properties after ':'; add at least one <key>=<value> \
         (or '*' for a pattern), e.g. esb:type=Server"
    )]
    EmptyPropertyList { input: String },
    #[error(
        "object name \"{input}\" has an empty key property (two commas in a row, or a leading or \
         trailing comma); remove the extra ','"
    )]
    EmptyProperty { input: String },
    #[error("object name \"{input}\" has a key property with an empty key before '='; write it as <key>=<value>")]
    EmptyKey { input: String },
    #[error("object name \"{input}\": key property \"{property}\" has no '='; write it as <key>=<value>")]
    MissingEquals { input: String, property: String },
    #[error("object name \"{input}\" has the key \"{key}\" more than once; each key may appear only once")]
    DuplicateKey { input: String, key: String },
    #[error(
        "object name \"{input}\": key \"{key}\" has an empty value; give it a value, or write \
         {key}=\"\" for an explicitly empty one"
    )]
    EmptyValue { input: String, key: String },
    #[error(
        "object name \"{input}\": key \"{key}\" contains {ch:?}, which is not allowed in keys \
         (':' ',' '=' '*' '?' '\"' and line breaks are reserved)"
    )]
    InvalidKeyChar {
        input: String,
        key: String,
        ch: char,
    },
    #[error(
        "object name \"{input}\": the value of key \"{key}\" contains {ch:?}, which is only allowed \
         in a quoted value; write {key}=\"...\" and escape '\"' and '\\' inside it with a backslash"
    )]
    InvalidValueChar {
        input: String,
        key: String,
        ch: char,
    },
    #[error("object name \"{input}\": the quoted value of key \"{key}\" is not terminated; add the closing '\"'")]
    UnterminatedQuote { input: String, key: String },
    #[error(
        "object name \"{input}\": the quoted value of key \"{key}\" contains the unknown escape \
         \\{ch}; only \\\" \\\\ \\* \\? and \\n are allowed"
    )]
    InvalidEscape {
        input: String,
        key: String,
        ch: char,
    },
    #[error(
        "object name \"{input}\": the quoted value of key \"{key}\" is followed by {ch:?}; a closing \
         quote must be followed by ',' or the end of the name"
    )]
    TextAfterQuote {
        input: String,
        key: String,
        ch: char,
    },
    #[error(
        "object name \"{input}\" uses the property-list wildcard '*' more than once; use it once, \
         e.g. esb:type=Proxy,*"
    )]
    DuplicateWildcard { input: String },
}

/// One `key=value` pair. `wild` is true when the value contains real (unescaped) `*`/`?`
/// wildcards; in that case every `*`/`?` of `value` is a wildcard.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Property {
    key: String,
    value: String,
    wild: bool,
}

/// A JMX-style object name such as `esb:type=Proxy,unit=orders,name=list`, or a pattern such as
/// `esb:type=Proxy,*`.
///
/// * [`Display`](fmt::Display) and [`canonical`](Self::canonical) give the canonical form (keys sorted).
/// * [`original`](Self::original) keeps the order the properties were given in; serde uses it, as
///   Jolokia echoes names in given order.
/// * Quoted values are decoded: `name="a,b"` has the value `a,b`, and `name="abc"` equals `name=abc`.
#[derive(Debug, Clone)]
pub struct ObjectName {
    domain: String,
    props: Vec<Property>,
    property_wildcard: bool,
}

fn is_wild_char(c: char) -> bool {
    c == '*' || c == '?'
}

fn invalid_key_char(c: char) -> bool {
    matches!(c, ':' | ',' | '=' | '*' | '?' | '"' | '\n' | '\r')
}

impl ObjectName {
    /// Parses `domain:key=value[,key=value...][,*]`.
    pub fn parse(input: &str) -> Result<Self, ObjectNameError> {
        if input.is_empty() {
            return Err(ObjectNameError::Empty);
        }
        let owned = || input.to_string();
        let colon = input
            .find(':')
            .ok_or_else(|| ObjectNameError::MissingColon { input: owned() })?;
        let domain = &input[..colon];
        check_domain(domain, input)?;
        let rest = &input[colon + 1..];
        if rest.is_empty() {
            return Err(ObjectNameError::EmptyPropertyList { input: owned() });
        }

        let mut props: Vec<Property> = Vec::new();
        let mut property_wildcard = false;
        let chars: Vec<char> = rest.chars().collect();
        let mut i = 0;
        loop {
            // One element: `*`, or `key=value`.
            if i >= chars.len() || chars[i] == ',' {
                return Err(ObjectNameError::EmptyProperty { input: owned() });
            }
            if chars[i] == '*' && (i + 1 == chars.len() || chars[i + 1] == ',') {
                if property_wildcard {
                    return Err(ObjectNameError::DuplicateWildcard { input: owned() });
                }
                property_wildcard = true;
                i += 1;
            } else {
                let key_start = i;
                while i < chars.len() && chars[i] != '=' && chars[i] != ',' {
                    i += 1;
                }
                let key: String = chars[key_start..i].iter().collect();
                if i >= chars.len() || chars[i] == ',' {
                    return Err(ObjectNameError::MissingEquals {
                        input: owned(),
                        property: key,
                    });
                }
                if key.is_empty() {
                    return Err(ObjectNameError::EmptyKey { input: owned() });
                }
                if let Some(ch) = key.chars().find(|&c| invalid_key_char(c)) {
                    return Err(ObjectNameError::InvalidKeyChar {
                        input: owned(),
                        key,
                        ch,
                    });
                }
                i += 1; // skip '='
                let (value, wild) = if i < chars.len() && chars[i] == '"' {
                    i += 1;
                    let mut value = String::new();
                    let mut wild = false;
                    let mut closed = false;
                    while i < chars.len() {
                        let c = chars[i];
                        i += 1;
                        match c {
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\\' => {
                                let Some(&e) = chars.get(i) else {
                                    break;
                                };
                                i += 1;
                                value.push(match e {
                                    '"' | '\\' | '*' | '?' => e,
                                    'n' => '\n',
                                    other => {
                                        return Err(ObjectNameError::InvalidEscape {
                                            input: owned(),
                                            key,
                                            ch: other,
                                        })
                                    }
                                });
                            }
                            c => {
                                wild |= is_wild_char(c);
                                value.push(c);
                            }
                        }
                    }
                    if !closed {
                        return Err(ObjectNameError::UnterminatedQuote {
                            input: owned(),
                            key,
                        });
                    }
                    if i < chars.len() && chars[i] != ',' {
                        return Err(ObjectNameError::TextAfterQuote {
                            input: owned(),
                            key,
                            ch: chars[i],
                        });
                    }
                    (value, wild)
                } else {
                    let start = i;
                    while i < chars.len() && chars[i] != ',' {
                        let c = chars[i];
                        if matches!(c, '=' | ':' | '"' | '\n' | '\r') {
                            return Err(ObjectNameError::InvalidValueChar {
                                input: owned(),
                                key,
                                ch: c,
                            });
                        }
                        i += 1;
                    }
                    let value: String = chars[start..i].iter().collect();
                    if value.is_empty() {
                        return Err(ObjectNameError::EmptyValue {
                            input: owned(),
                            key,
                        });
                    }
                    let wild = value.chars().any(is_wild_char);
                    (value, wild)
                };
                if props.iter().any(|p| p.key == key) {
                    return Err(ObjectNameError::DuplicateKey {
                        input: owned(),
                        key,
                    });
                }
                props.push(Property { key, value, wild });
            }
            if i >= chars.len() {
                break;
            }
            // chars[i] == ',' here
            i += 1;
        }
        Ok(ObjectName {
            domain: domain.to_string(),
            props,
            property_wildcard,
        })
    }

    /// Builds a name from a domain and literal `(key, value)` pairs in the given order.
    /// Values are taken literally (a `*` in a value is not a wildcard; it is quoted on output).
    ///
    /// # Panics
    /// If the domain or a key is invalid (see [`try_new`](Self::try_new) for the fallible form).
    pub fn new(domain: &str, properties: &[(&str, &str)]) -> Self {
        match Self::try_new(domain, properties) {
            Ok(name) => name,
            Err(e) => panic!("ObjectName::new: {e}"),
        }
    }

    /// Fallible form of [`new`](Self::new).
    pub fn try_new(domain: &str, properties: &[(&str, &str)]) -> Result<Self, ObjectNameError> {
        let input = || {
            let list: Vec<String> = properties.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{domain}:{}", list.join(","))
        };
        check_domain(domain, &input())?;
        if properties.is_empty() {
            return Err(ObjectNameError::EmptyPropertyList { input: input() });
        }
        let mut props: Vec<Property> = Vec::with_capacity(properties.len());
        for (key, value) in properties {
            if key.is_empty() {
                return Err(ObjectNameError::EmptyKey { input: input() });
            }
            if let Some(ch) = key.chars().find(|&c| invalid_key_char(c)) {
                return Err(ObjectNameError::InvalidKeyChar {
                    input: input(),
                    key: key.to_string(),
                    ch,
                });
            }
            if props.iter().any(|p| p.key == *key) {
                return Err(ObjectNameError::DuplicateKey {
                    input: input(),
                    key: key.to_string(),
                });
            }
            props.push(Property {
                key: key.to_string(),
                value: value.to_string(),
                wild: false,
            });
        }
        Ok(ObjectName {
            domain: domain.to_string(),
            props,
            property_wildcard: false,
        })
    }

    /// Returns this name with the property-list wildcard added (`esb:type=Proxy` → `esb:type=Proxy,*`).
    pub fn with_property_wildcard(mut self) -> Self {
        self.property_wildcard = true;
        self
    }

    /// The domain (the part before `:`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The (decoded) value of key property `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// Key properties in the order they were given.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.props
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
    }

    /// True for any kind of pattern: wildcard in the domain, in a value, or `,*`.
    pub fn is_pattern(&self) -> bool {
        self.is_domain_pattern() || self.is_property_pattern()
    }

    /// True when the domain contains `*` or `?`.
    pub fn is_domain_pattern(&self) -> bool {
        self.domain.chars().any(is_wild_char)
    }

    /// True when the property list ends in (or is) the wildcard `*`.
    pub fn is_property_list_pattern(&self) -> bool {
        self.property_wildcard
    }

    /// True when a property value contains a wildcard, or the property list is a pattern.
    pub fn is_property_pattern(&self) -> bool {
        self.property_wildcard || self.props.iter().any(|p| p.wild)
    }

    /// Canonical form: `domain:` + keys sorted alphabetically (+ `,*` for list patterns).
    pub fn canonical(&self) -> String {
        format!("{}:{}", self.domain, self.canonical_key_list())
    }

    /// Canonical key property list (no domain), e.g. `name=list,type=Proxy,unit=orders`.
    /// This is the second-level key of a Jolokia `list` response.
    pub fn canonical_key_list(&self) -> String {
        let mut sorted: Vec<&Property> = self.props.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        render_list(sorted.into_iter(), self.property_wildcard)
    }

    /// Given-order form, e.g. `esb:type=Proxy,unit=orders,name=list`.
    pub fn original(&self) -> String {
        format!("{}:{}", self.domain, self.key_list())
    }

    /// Key property list in given order (no domain).
    pub fn key_list(&self) -> String {
        render_list(self.props.iter(), self.property_wildcard)
    }

    /// Does `name` match this pattern? `*` matches any run of characters and `?` exactly one,
    /// in the domain and in property values; a trailing `,*` allows extra properties in `name`.
    /// A non-pattern matches only an equal name (property order is irrelevant).
    pub fn matches(&self, name: &ObjectName) -> bool {
        if !self.is_pattern() {
            return self == name;
        }
        let domain_ok = if self.is_domain_pattern() {
            wildcard_match(&self.domain, &name.domain)
        } else {
            self.domain == name.domain
        };
        if !domain_ok {
            return false;
        }
        if !self.property_wildcard && self.props.len() != name.props.len() {
            return false;
        }
        self.props.iter().all(|p| match name.get(&p.key) {
            None => false,
            Some(v) if p.wild => wildcard_match(&p.value, v),
            Some(v) => p.value == v,
        })
    }

    fn sorted_props(&self) -> Vec<&Property> {
        let mut sorted: Vec<&Property> = self.props.iter().collect();
        sorted.sort();
        sorted
    }
}

fn check_domain(domain: &str, input: &str) -> Result<(), ObjectNameError> {
    if domain.is_empty() {
        return Err(ObjectNameError::EmptyDomain {
            input: input.to_string(),
        });
    }
    if let Some(ch) = domain.chars().find(|&c| matches!(c, ':' | '\n' | '\r')) {
        return Err(ObjectNameError::InvalidDomainChar {
            input: input.to_string(),
            ch,
        });
    }
    Ok(())
}

fn render_list<'a>(props: impl Iterator<Item = &'a Property>, wildcard: bool) -> String {
    let mut parts: Vec<String> = props
        .map(|p| format!("{}={}", p.key, render_value(&p.value, p.wild)))
        .collect();
    if wildcard {
        parts.push("*".to_string());
    }
    parts.join(",")
}

/// Renders a value so that parsing it back yields the same value and wildcard-ness.
fn render_value(value: &str, wild: bool) -> String {
    let needs_quotes = value.is_empty()
        || value
            .chars()
            .any(|c| matches!(c, ',' | '=' | ':' | '"' | '\n' | '\r'))
        || (!wild && value.chars().any(is_wild_char));
    if !needs_quotes {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '*' | '?' if !wild => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Glob match where `*` matches any (possibly empty) run of characters and `?` one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl fmt::Display for ObjectName {
    /// Canonical form (keys sorted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl FromStr for ObjectName {
    type Err = ObjectNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectName::parse(s)
    }
}

impl PartialEq for ObjectName {
    fn eq(&self, other: &Self) -> bool {
        self.domain == other.domain
            && self.property_wildcard == other.property_wildcard
            && self.sorted_props() == other.sorted_props()
    }
}

impl Eq for ObjectName {}

impl Hash for ObjectName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.domain.hash(state);
        self.property_wildcard.hash(state);
        self.sorted_props().hash(state);
    }
}

impl PartialOrd for ObjectName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ObjectName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.domain
            .cmp(&other.domain)
            .then_with(|| self.sorted_props().cmp(&other.sorted_props()))
            .then_with(|| self.property_wildcard.cmp(&other.property_wildcard))
    }
}

impl Serialize for ObjectName {
    /// Serialized as the given-order string (what Jolokia echoes back).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.original())
    }
}

impl<'de> Deserialize<'de> for ObjectName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        ObjectName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(s: &str) -> ObjectName {
        ObjectName::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parse_display_canonical_and_original() {
        let n = on("esb:type=Proxy,unit=orders,name=list");
        assert_eq!(n.domain(), "esb");
        assert_eq!(n.get("type"), Some("Proxy"));
        assert_eq!(n.get("unit"), Some("orders"));
        assert_eq!(n.get("name"), Some("list"));
        assert_eq!(n.get("nope"), None);
        assert_eq!(n.to_string(), "esb:name=list,type=Proxy,unit=orders");
        assert_eq!(n.canonical(), "esb:name=list,type=Proxy,unit=orders");
        assert_eq!(n.canonical_key_list(), "name=list,type=Proxy,unit=orders");
        assert_eq!(n.original(), "esb:type=Proxy,unit=orders,name=list");
        assert_eq!(n.key_list(), "type=Proxy,unit=orders,name=list");
        let props: Vec<_> = n.properties().collect();
        assert_eq!(
            props,
            vec![("type", "Proxy"), ("unit", "orders"), ("name", "list")]
        );
        assert!(!n.is_pattern());
    }

    #[test]
    fn equality_ignores_order_and_builder_matches_parse() {
        let a = on("esb:type=Proxy,unit=u,name=p");
        let b = on("esb:name=p,unit=u,type=Proxy");
        let c = ObjectName::new("esb", &[("type", "Proxy"), ("unit", "u"), ("name", "p")]);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(c.original(), "esb:type=Proxy,unit=u,name=p");
        let mut set = std::collections::HashSet::new();
        set.insert(a.clone());
        assert!(set.contains(&b));
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert_ne!(a, on("esb:type=Proxy,unit=u,name=q"));
        assert_ne!(a, on("esb2:type=Proxy,unit=u,name=p"));
    }

    #[test]
    fn quoted_values() {
        let n = on(r#"esb:type=Proxy,name="a,b""#);
        assert_eq!(n.get("name"), Some("a,b"));
        assert_eq!(n.to_string(), r#"esb:name="a,b",type=Proxy"#);

        let n = on(r#"esb:name="say \"hi\" \\ there=1:2""#);
        assert_eq!(n.get("name"), Some(r#"say "hi" \ there=1:2"#));
        assert_eq!(n.to_string(), r#"esb:name="say \"hi\" \\ there=1:2""#);
        assert_eq!(on(&n.to_string()), n);

        // Quotes that are not needed are normalized away.
        assert_eq!(on(r#"esb:name="abc""#), on("esb:name=abc"));
        assert_eq!(on(r#"esb:name="abc""#).to_string(), "esb:name=abc");
        // Explicitly empty value.
        let e = on(r#"esb:name="""#);
        assert_eq!(e.get("name"), Some(""));
        assert_eq!(e.to_string(), r#"esb:name="""#);
        // Escaped wildcard is literal, newline escape.
        let lit = on(r#"esb:name="a\*b\nc""#);
        assert_eq!(lit.get("name"), Some("a*b\nc"));
        assert!(!lit.is_pattern());
        assert_eq!(lit.to_string(), r#"esb:name="a\*b\nc""#);
        // Builder values with special characters are quoted on output and round-trip.
        let b = ObjectName::new("esb", &[("name", "x,y*"), ("type", "T")]);
        assert!(!b.is_pattern());
        assert_eq!(b.original(), r#"esb:name="x,y\*",type=T"#);
        assert_eq!(on(&b.original()), b);
    }

    #[test]
    fn parse_errors() {
        use ObjectNameError as E;
        assert_eq!(ObjectName::parse(""), Err(E::Empty));
        assert!(matches!(
            ObjectName::parse("esb-type=Proxy"),
            Err(E::MissingColon { .. })
        ));
        assert!(matches!(
            ObjectName::parse(":type=Proxy"),
            Err(E::EmptyDomain { .. })
        ));
        assert!(matches!(
            ObjectName::parse("esb:"),
            Err(E::EmptyPropertyList { .. })
        ));
        assert!(matches!(
            ObjectName::parse("esb:=Proxy"),
            Err(E::EmptyKey { .. })
        ));
        assert!(matches!(
            ObjectName::parse("esb:type=Proxy,,name=x"),
            Err(E::EmptyProperty { .. })
        ));
        assert!(matches!(
            ObjectName::parse("esb:type=Proxy,"),
            Err(E::EmptyProperty { .. })
        ));
        assert_eq!(
            ObjectName::parse("esb:type=Proxy,name"),
            Err(E::MissingEquals {
                input: "esb:type=Proxy,name".into(),
                property: "name".into()
            })
        );
        assert_eq!(
            ObjectName::parse("esb:type=A,type=B"),
            Err(E::DuplicateKey {
                input: "esb:type=A,type=B".into(),
                key: "type".into()
            })
        );
        assert!(matches!(
            ObjectName::parse("esb:type="),
            Err(E::EmptyValue { .. })
        ));
        assert!(matches!(
            ObjectName::parse("esb:ty*pe=A"),
            Err(E::InvalidKeyChar { ch: '*', .. })
        ));
        assert!(matches!(
            ObjectName::parse("esb:type=a=b"),
            Err(E::InvalidValueChar { ch: '=', .. })
        ));
        assert!(matches!(
            ObjectName::parse("esb:type=a:b"),
            Err(E::InvalidValueChar { ch: ':', .. })
        ));
        assert!(matches!(
            ObjectName::parse(r#"esb:name="abc"#),
            Err(E::UnterminatedQuote { .. })
        ));
        assert!(matches!(
            ObjectName::parse(r#"esb:name="a\qb""#),
            Err(E::InvalidEscape { ch: 'q', .. })
        ));
        assert!(matches!(
            ObjectName::parse(r#"esb:name="ab"c"#),
            Err(E::TextAfterQuote { ch: 'c', .. })
        ));
        assert!(matches!(
            ObjectName::parse("esb:*,*"),
            Err(E::DuplicateWildcard { .. })
        ));
        assert!(ObjectName::try_new("esb", &[]).is_err());
        assert!(ObjectName::try_new("esb", &[("a", "1"), ("a", "2")]).is_err());
        assert!(ObjectName::try_new("", &[("a", "1")]).is_err());
        // Messages say what is wrong and what to do.
        let msg = ObjectName::parse("esb-type=Proxy").unwrap_err().to_string();
        assert!(
            msg.contains("no ':'") && msg.contains("esb:type=Server"),
            "{msg}"
        );
        let msg = ObjectName::parse("esb:type=A,type=B")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("\"type\" more than once"), "{msg}");
    }

    #[test]
    fn patterns() {
        let p = on("esb:type=Proxy,*");
        assert!(p.is_pattern() && p.is_property_list_pattern());
        assert_eq!(p.to_string(), "esb:type=Proxy,*");
        assert!(p.matches(&on("esb:type=Proxy,unit=orders,name=list")));
        assert!(p.matches(&on("esb:type=Proxy")));
        assert!(!p.matches(&on("esb:type=Unit,name=orders")));
        assert!(!p.matches(&on("other:type=Proxy,name=x")));

        let all = on("esb:*");
        assert_eq!(all.to_string(), "esb:*");
        assert!(all.matches(&on("esb:type=Server")));
        assert!(all.matches(&on("esb:type=Proxy,unit=u,name=p")));
        assert!(!all.matches(&on("java.lang:type=Memory")));

        let any_domain = on("*:type=Unit,*");
        assert!(any_domain.is_domain_pattern());
        assert!(any_domain.matches(&on("esb:type=Unit,name=orders")));
        assert!(any_domain.matches(&on("other:name=x,type=Unit")));
        assert!(!any_domain.matches(&on("esb:type=Proxy,name=x")));

        let q = on("es?:type=Unit,name=ord*");
        assert!(q.is_pattern() && !q.is_property_list_pattern());
        assert!(q.matches(&on("esb:type=Unit,name=orders")));
        assert!(q.matches(&on("esx:name=ord,type=Unit")));
        assert!(!q.matches(&on("esbb:type=Unit,name=orders")));
        assert!(!q.matches(&on("esb:type=Unit,name=billing")));
        // Without `,*` the key set must be exactly the same.
        assert!(!q.matches(&on("esb:type=Unit,name=orders,extra=1")));

        let mid = on("esb:type=Proxy,name=l?s*");
        assert!(mid.matches(&on("esb:type=Proxy,name=list")));
        assert!(mid.matches(&on("esb:type=Proxy,name=lost-and-found")));
        assert!(!mid.matches(&on("esb:type=Proxy,name=ls")));

        // Quoted wildcard is real, escaped one literal.
        assert!(on(r#"esb:name="a,*""#).matches(&on(r#"esb:name="a,bc""#)));
        let lit = on(r#"esb:name="a\*""#);
        assert!(lit.matches(&on(r#"esb:name="a\*""#)));
        assert!(!lit.matches(&on("esb:name=ab")));

        // Non-patterns match only equal names, in any order.
        let exact = on("esb:type=Proxy,unit=u,name=p");
        assert!(exact.matches(&on("esb:name=p,type=Proxy,unit=u")));
        assert!(!exact.matches(&on("esb:type=Proxy,unit=u")));
        assert!(!exact.matches(&on("esb:type=Proxy,unit=u,name=p,x=1")));
        assert!(!exact.matches(&on("esb:type=Proxy,unit=u,name=p,*")));

        let built = ObjectName::new("esb", &[("type", "Proxy")]).with_property_wildcard();
        assert_eq!(built, p);
        assert_eq!(on("esb:*,type=Proxy"), p);
    }

    #[test]
    fn wildcard_matcher() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(wildcard_match("a*b*c", "abc"));
        assert!(!wildcard_match("a*b*c", "abcd"));
        assert!(wildcard_match("??", "ab"));
        assert!(!wildcard_match("??", "abc"));
        assert!(wildcard_match("*a", "aaa"));
    }

    #[test]
    fn serde_as_string() {
        let n = on("esb:type=Proxy,name=p");
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json, serde_json::json!("esb:type=Proxy,name=p"));
        let back: ObjectName = serde_json::from_value(json).unwrap();
        assert_eq!(back, n);
        let err = serde_json::from_value::<ObjectName>(serde_json::json!("nocolon")).unwrap_err();
        assert!(err.to_string().contains("no ':'"), "{err}");
    }
}
