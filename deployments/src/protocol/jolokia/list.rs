//! `list` metadata (attributes, operations, arguments) and the list tree with paths and depth limits.

use super::*;

/// Attribute metadata in a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrInfo {
    #[serde(rename = "type")]
    pub type_: String,
    pub desc: String,
    pub rw: bool,
}

/// Operation argument metadata in a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub desc: String,
}

/// What running an operation does, as JMX's `MBeanOperationInfo` impact: `Info` only reads
/// (diff, history, validate), `Action` may change state. Not part of Jolokia's list output;
/// the server uses it to decide what is audited and what is refused while it cannot audit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Impact {
    Info,
    /// The default: an operation not marked otherwise counts as a state change.
    #[default]
    Action,
}

impl Impact {
    pub fn changes_state(self) -> bool {
        self == Impact::Action
    }
}

/// Operation metadata in a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpInfo {
    pub args: Vec<ArgInfo>,
    pub ret: String,
    pub desc: String,
    #[serde(skip)]
    pub impact: Impact,
}

/// MBean metadata in a list response: `{"desc":..,"attr":{..},"op":{..}}`; like Jolokia, an
/// empty `attr` or `op` map is omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MBeanInfo {
    pub desc: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attr: BTreeMap<String, AttrInfo>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub op: BTreeMap<String, OpInfo>,
}

impl MBeanInfo {
    /// An MBean with a description and no attributes or operations.
    pub fn new(desc: &str) -> MBeanInfo {
        MBeanInfo {
            desc: desc.to_string(),
            ..MBeanInfo::default()
        }
    }

    /// Adds an attribute (`rw`: writable).
    pub fn with_attr(mut self, name: &str, type_: &str, desc: &str, rw: bool) -> MBeanInfo {
        self.attr.insert(
            name.to_string(),
            AttrInfo {
                type_: type_.to_string(),
                desc: desc.to_string(),
                rw,
            },
        );
        self
    }

    /// Adds an operation that may change state; `args` are `(name, type, desc)`.
    pub fn with_op(
        self,
        name: &str,
        args: &[(&str, &str, &str)],
        ret: &str,
        desc: &str,
    ) -> MBeanInfo {
        self.with_op_impact(name, args, ret, desc, Impact::Action)
    }

    /// Adds an operation that only reads (diff, history, validate).
    pub fn with_read_op(
        self,
        name: &str,
        args: &[(&str, &str, &str)],
        ret: &str,
        desc: &str,
    ) -> MBeanInfo {
        self.with_op_impact(name, args, ret, desc, Impact::Info)
    }

    /// Adds an operation with its impact.
    pub fn with_op_impact(
        mut self,
        name: &str,
        args: &[(&str, &str, &str)],
        ret: &str,
        desc: &str,
        impact: Impact,
    ) -> MBeanInfo {
        let args = args
            .iter()
            .map(|(n, t, d)| ArgInfo {
                name: n.to_string(),
                type_: t.to_string(),
                desc: d.to_string(),
            })
            .collect();
        self.op.insert(
            name.to_string(),
            OpInfo {
                args,
                ret: ret.to_string(),
                desc: desc.to_string(),
                impact,
            },
        );
        self
    }

    /// As the JSON object used in list responses.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("desc".into(), Value::String(self.desc.clone()));
        if !self.attr.is_empty() {
            m.insert("attr".into(), attrs_json(self.attr.iter()));
        }
        if !self.op.is_empty() {
            m.insert("op".into(), ops_json(self.op.iter()));
        }
        Value::Object(m)
    }
}

pub(super) fn attr_json(a: &AttrInfo) -> Value {
    json!({ "type": a.type_, "desc": a.desc, "rw": a.rw })
}

pub(super) fn op_json(o: &OpInfo) -> Value {
    let args: Vec<Value> = o
        .args
        .iter()
        .map(|a| json!({ "name": a.name, "type": a.type_, "desc": a.desc }))
        .collect();
    json!({ "args": args, "ret": o.ret, "desc": o.desc })
}

pub(super) fn attrs_json<'a>(it: impl Iterator<Item = (&'a String, &'a AttrInfo)>) -> Value {
    Value::Object(it.map(|(k, a)| (k.clone(), attr_json(a))).collect())
}

pub(super) fn ops_json<'a>(it: impl Iterator<Item = (&'a String, &'a OpInfo)>) -> Value {
    Value::Object(it.map(|(k, o)| (k.clone(), op_json(o))).collect())
}

/// Builds the value of a `list` response: `{ <domain>: { <canonical key list>: <MBeanInfo> } }`.
///
/// `path` (split with [`split_path`]) navigates: `<domain>` → `{key list: info}`,
/// `<domain>/<key list>` (any property order) → the MBean's info, `.../desc|attr|op`,
/// `.../attr/<name>` or `.../op/<name>`, then keys inside that (e.g. `.../attr/<name>/type`).
/// A pattern is not allowed as a path element.
///
/// `max_depth` (Jolokia's `maxDepth`) truncates the value at that many levels below the node
/// the path selects: objects deeper than that become the number `1`, other values are kept
/// (so depth 1 → `{"esb": 1}`, depth 2 → `{"esb": {"name=..,type=..": 1}}`). `None` or `Some(0)`
/// means unlimited. This is Jolokia's behaviour.
///
/// Errors: an unknown domain is 404 (`DomainNotFound`), an unknown MBean 404 (`InstanceNotFound`),
/// an unknown attribute 404, an unknown operation 400, any other bad path element 400.
pub fn list_tree(
    infos: &[(ObjectName, MBeanInfo)],
    path: Option<&str>,
    max_depth: Option<usize>,
) -> Result<Value, ManagementError> {
    list_tree_named(infos, path, max_depth, true)
}

/// [`list_tree`] with Jolokia's `canonicalNaming`: when `canonical` is false the key lists
/// of the MBeans are written as the server names them (`type=Proxy,unit=u,name=p`) instead
/// of sorted. Paths are matched in any property order either way.
pub fn list_tree_named(
    infos: &[(ObjectName, MBeanInfo)],
    path: Option<&str>,
    max_depth: Option<usize>,
    canonical: bool,
) -> Result<Value, ManagementError> {
    let segs = match path {
        Some(p) => split_path(p)?,
        None => Vec::new(),
    };
    let mut domains: BTreeMap<&str, BTreeMap<String, (String, &MBeanInfo)>> = BTreeMap::new();
    for (name, info) in infos {
        let shown = if canonical {
            name.canonical_key_list()
        } else {
            name.key_list()
        };
        domains
            .entry(name.domain())
            .or_default()
            .insert(name.canonical_key_list(), (shown, info));
    }
    let beans_json = |beans: &BTreeMap<String, (String, &MBeanInfo)>| -> Value {
        Value::Object(
            beans
                .values()
                .map(|(k, i)| (k.clone(), i.to_json()))
                .collect(),
        )
    };

    let mut segs = segs.into_iter();
    let Some(domain) = segs.next() else {
        let all: Map<String, Value> = domains
            .iter()
            .map(|(d, beans)| (d.to_string(), beans_json(beans)))
            .collect();
        return Ok(truncate(Value::Object(all), max_depth));
    };
    if domain.contains(['*', '?']) {
        return Err(ManagementError::BadRequest(format!(
            "list path domain \"{domain}\" is a pattern; a list path must name a domain exactly \
             (use a search request to match names by pattern)"
        )));
    }
    let Some(beans) = domains.get(domain.as_str()) else {
        return Err(ManagementError::DomainNotFound {
            suggestion: suggest(&domain, domains.keys().copied()).map(str::to_string),
            domain,
        });
    };
    let Some(key_list) = segs.next() else {
        return Ok(truncate(beans_json(beans), max_depth));
    };
    let name = ObjectName::parse(&format!("{domain}:{key_list}")).map_err(|e| {
        ManagementError::BadRequest(format!(
            "list path element \"{key_list}\" is not a valid key property list: {e}"
        ))
    })?;
    if name.is_pattern() {
        return Err(ManagementError::BadRequest(format!(
            "cannot use the MBean pattern {} as a list path; name one MBean exactly \
             (use a search request to match names by pattern)",
            name.original()
        )));
    }
    let (_, info) = beans
        .get(&name.canonical_key_list())
        .ok_or_else(|| ManagementError::instance_not_found(&name))?;
    let Some(what) = segs.next() else {
        return Ok(truncate(info.to_json(), max_depth));
    };
    let (mut value, mut prefix) = match what.as_str() {
        "desc" => (Value::String(info.desc.clone()), "desc".to_string()),
        "attr" => match segs.next() {
            None => (attrs_json(info.attr.iter()), "attr".to_string()),
            Some(attr) => {
                let a = info.attr.get(&attr).ok_or_else(|| {
                    ManagementError::attribute_not_found(
                        &name,
                        &attr,
                        info.attr.keys().map(String::as_str),
                    )
                })?;
                (attr_json(a), format!("attr/{}", escape_path_segment(&attr)))
            }
        },
        "op" => match segs.next() {
            None => (ops_json(info.op.iter()), "op".to_string()),
            Some(op) => {
                let o = info.op.get(&op).ok_or_else(|| {
                    ManagementError::no_such_operation(
                        &name,
                        &op,
                        info.op.keys().map(String::as_str),
                    )
                })?;
                (op_json(o), format!("op/{}", escape_path_segment(&op)))
            }
        },
        other => {
            return Err(ManagementError::BadRequest(format!(
                "illegal list path element \"{other}\" below MBean {}; use desc, attr or op",
                name.original()
            )))
        }
    };
    for seg in segs {
        let next = match &value {
            Value::Object(m) => m.get(&seg).cloned(),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i).cloned()),
            _ => None,
        };
        value = next.ok_or_else(|| {
            let valid = match &value {
                Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
                Value::Array(a) => format!("indexes 0..{}", a.len()),
                _ => "nothing (it is a leaf value)".to_string(),
            };
            ManagementError::BadRequest(format!(
                "list path element \"{seg}\" does not exist below \"{prefix}\" of MBean {}; \
                 valid there: {valid}",
                name.original()
            ))
        })?;
        prefix = format!("{prefix}/{}", escape_path_segment(&seg));
    }
    Ok(truncate(value, max_depth))
}

pub(super) fn truncate(value: Value, max_depth: Option<usize>) -> Value {
    match max_depth {
        None | Some(0) => value,
        Some(d) => truncate_level(value, d),
    }
}

pub(super) fn truncate_level(value: Value, depth: usize) -> Value {
    match value {
        Value::Object(_) if depth == 0 => Value::from(1),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, truncate_level(v, depth - 1)))
                .collect(),
        ),
        other => other,
    }
}
