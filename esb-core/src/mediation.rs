//! Mediation: sequences compiled at deploy time (templates parsed, references resolved to
//! runtime objects, header names validated) and run per request. A sequence ends by
//! continuing, answering (`respond`), or having chosen an endpoint (`switch`).

use crate::amqp::{AmqpLink, AmqpLinks, Outgoing};
use crate::body::{full, json_response, Body, ReadError};
use crate::endpoint::{EndpointRuntime, SendError};
use crate::message::Message;
use crate::template::{eval, JsonTemplate, UnitVars};
use deployments::model::{Sequence as SequenceDef, Step, Unit};
use deployments::template::Template;
use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub struct CompiledSequence {
    pub name: String,
    steps: Vec<CStep>,
}

enum Cond {
    Equals(String),
    NotEquals(String),
    Contains(String),
    StartsWith(String),
    Exists(bool),
}

enum Target {
    Sequence(Arc<CompiledSequence>),
    Endpoint(Arc<EndpointRuntime>),
}

enum CStep {
    Log(Template),
    SetHeader(HeaderName, Template),
    RemoveHeader(HeaderName),
    SetProperty(String, Template),
    Filter {
        on: Template,
        cond: Cond,
        then: Vec<CStep>,
        otherwise: Vec<CStep>,
    },
    Switch {
        on: Template,
        cases: Cases,
        default: Option<Target>,
    },
    Transform {
        body: JsonTemplate,
        content_type: HeaderValue,
    },
    Respond {
        status: StatusCode,
        body: RespondBody,
        headers: Vec<(HeaderName, Template)>,
    },
    Call(Arc<EndpointRuntime>),
    Publish {
        link: Arc<AmqpLink>,
        exchange: String,
        routing_key: Template,
        confirm: bool,
        persistent: bool,
        headers: Vec<(String, Template)>,
    },
}

/// A `switch`'s cases. A handful (the usual) are compared in turn, which costs less per
/// request than hashing the value; many are looked up in a map.
enum Cases {
    Few(Vec<(Box<str>, Target)>),
    Many(HashMap<String, Target>),
}

impl Cases {
    const FEW: usize = 8;

    fn new(cases: Vec<(String, Target)>) -> Cases {
        if cases.len() <= Self::FEW {
            Cases::Few(cases.into_iter().map(|(k, t)| (k.into(), t)).collect())
        } else {
            Cases::Many(cases.into_iter().collect())
        }
    }

    fn get(&self, value: &str) -> Option<&Target> {
        match self {
            Cases::Few(v) => v.iter().find(|(k, _)| **k == *value).map(|(_, t)| t),
            Cases::Many(m) => m.get(value),
        }
    }
}

enum RespondBody {
    Empty,
    Text(Template),
    Json(JsonTemplate),
}

/// How a sequence ended.
pub enum Flow {
    Continue,
    Respond(Response<Body>),
}

/// Errors while running steps; each maps to a status.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("request body too large: {0}")]
    TooLarge(ReadError),
    #[error("{0}")]
    Read(ReadError),
    #[error("call failed: {0}")]
    Call(#[from] SendError),
    #[error("{0}")]
    Publish(String),
}

/// What a running sequence needs besides the message.
pub struct Ctx<'a> {
    pub unit: &'a UnitVars,
    pub max_body: u64,
    pub client_addr: Option<std::net::SocketAddr>,
    pub scheme: &'a str,
    /// Set by a `switch` that chose an endpoint.
    pub route: Option<Arc<EndpointRuntime>>,
    /// What the request did, while someone taps its proxy ([`crate::tap`]).
    pub trace: Option<Box<crate::tap::Trace>>,
}

/// Compiles every sequence of a validated unit, resolving references to `endpoints`.
pub fn compile_all(
    unit: &Unit,
    endpoints: &HashMap<String, Arc<EndpointRuntime>>,
    links: &AmqpLinks,
) -> Result<HashMap<String, Arc<CompiledSequence>>, String> {
    let mut done = HashMap::new();
    let refs = Refs {
        eps: endpoints,
        links,
    };
    for s in &unit.sequences {
        compile(unit, s, &refs, &mut done)?;
    }
    Ok(done)
}

/// What steps may refer to: the unit's endpoints and the root config's amqp transports.
struct Refs<'a> {
    eps: &'a HashMap<String, Arc<EndpointRuntime>>,
    links: &'a AmqpLinks,
}

fn compile(
    unit: &Unit,
    def: &SequenceDef,
    eps: &Refs<'_>,
    done: &mut HashMap<String, Arc<CompiledSequence>>,
) -> Result<Arc<CompiledSequence>, String> {
    if let Some(s) = done.get(def.name.get_ref()) {
        return Ok(s.clone());
    }
    let steps = def
        .steps
        .iter()
        .map(|s| compile_step(unit, s.get_ref(), eps, done))
        .collect::<Result<_, _>>()?;
    let seq = Arc::new(CompiledSequence {
        name: def.name.get_ref().clone(),
        steps,
    });
    done.insert(def.name.get_ref().clone(), seq.clone());
    Ok(seq)
}

fn template(t: &str) -> Result<Template, String> {
    Template::parse(t)
}

fn header_name(n: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("invalid header name \"{n}\""))
}

fn endpoint(
    eps: &HashMap<String, Arc<EndpointRuntime>>,
    name: &str,
) -> Result<Arc<EndpointRuntime>, String> {
    eps.get(name)
        .cloned()
        .ok_or_else(|| format!("endpoint \"{name}\" not found"))
}

fn compile_steps(
    unit: &Unit,
    steps: &[deployments::Spanned<Step>],
    eps: &Refs<'_>,
    done: &mut HashMap<String, Arc<CompiledSequence>>,
) -> Result<Vec<CStep>, String> {
    steps
        .iter()
        .map(|s| compile_step(unit, s.get_ref(), eps, done))
        .collect()
}

fn compile_step(
    unit: &Unit,
    step: &Step,
    eps: &Refs<'_>,
    done: &mut HashMap<String, Arc<CompiledSequence>>,
) -> Result<CStep, String> {
    Ok(match step {
        Step::Log(t) => CStep::Log(template(t)?),
        Step::SetHeader(nv) => CStep::SetHeader(header_name(&nv.name)?, template(&nv.value)?),
        Step::RemoveHeader(n) => CStep::RemoveHeader(header_name(n)?),
        Step::SetProperty(nv) => CStep::SetProperty(nv.name.clone(), template(&nv.value)?),
        Step::Filter(f) => {
            let cond = if let Some(v) = &f.equals {
                Cond::Equals(v.clone())
            } else if let Some(v) = &f.not_equals {
                Cond::NotEquals(v.clone())
            } else if let Some(v) = &f.contains {
                Cond::Contains(v.clone())
            } else if let Some(v) = &f.starts_with {
                Cond::StartsWith(v.clone())
            } else {
                Cond::Exists(f.exists.unwrap_or(true))
            };
            CStep::Filter {
                on: template(&f.on)?,
                cond,
                then: compile_steps(unit, &f.then, eps, done)?,
                otherwise: compile_steps(unit, &f.otherwise, eps, done)?,
            }
        }
        Step::Switch(sw) => {
            let mut target = |name: &str| -> Result<Target, String> {
                match unit.sequence(name) {
                    Some(def) => Ok(Target::Sequence(compile(unit, def, eps, done)?)),
                    None => Ok(Target::Endpoint(endpoint(eps.eps, name)?)),
                }
            };
            let mut cases = Vec::with_capacity(sw.cases.len());
            for (k, v) in &sw.cases {
                cases.push((k.clone(), target(v.get_ref())?));
            }
            let default = sw
                .default
                .as_ref()
                .map(|d| target(d.get_ref()))
                .transpose()?;
            CStep::Switch {
                on: template(&sw.on)?,
                cases: Cases::new(cases),
                default,
            }
        }
        Step::Transform(t) => CStep::Transform {
            body: JsonTemplate::compile(&t.body),
            content_type: HeaderValue::from_str(&t.content_type)
                .map_err(|_| format!("invalid content type \"{}\"", t.content_type))?,
        },
        Step::Respond(r) => CStep::Respond {
            status: StatusCode::from_u16(r.status)
                .map_err(|_| format!("invalid status {}", r.status))?,
            body: match (&r.body, &r.json) {
                (Some(b), _) => RespondBody::Text(template(b)?),
                (None, Some(j)) => RespondBody::Json(JsonTemplate::compile(j)),
                (None, None) => RespondBody::Empty,
            },
            headers: r
                .headers
                .iter()
                .map(|(k, v)| Ok((header_name(k)?, template(v)?)))
                .collect::<Result<_, String>>()?,
        },
        Step::Call(c) => CStep::Call(endpoint(eps.eps, c.endpoint.get_ref())?),
        Step::Publish(p) => CStep::Publish {
            link: eps
                .links
                .get(p.transport.get_ref())
                .cloned()
                .ok_or_else(|| format!("amqp transport \"{}\" not found", p.transport.get_ref()))?,
            exchange: p.exchange.clone(),
            routing_key: template(&p.routing_key)?,
            confirm: p.confirm,
            persistent: p.persistent,
            headers: p
                .headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), template(v)?)))
                .collect::<Result<_, String>>()?,
        },
    })
}

impl CStep {
    fn reads_body(&self) -> bool {
        match self {
            CStep::Log(t) | CStep::SetHeader(_, t) | CStep::SetProperty(_, t) => t.reads_body(),
            CStep::Filter { on, .. } | CStep::Switch { on, .. } => on.reads_body(),
            CStep::Transform { body, .. } => body.reads_body(),
            CStep::Respond { body, headers, .. } => {
                headers.iter().any(|(_, t)| t.reads_body())
                    || match body {
                        RespondBody::Empty => false,
                        RespondBody::Text(t) => t.reads_body(),
                        RespondBody::Json(j) => j.reads_body(),
                    }
            }
            CStep::RemoveHeader(_) | CStep::Call(_) => false,
            // The whole body is published.
            CStep::Publish { .. } => true,
        }
    }
}

/// A called endpoint's status, content type and body.
type CallResponse = (StatusCode, Option<HeaderValue>, bytes::Bytes);

/// Reads a called endpoint's response into memory (bounded).
fn read_response(
    resp: Response<crate::outbound::BackendBody>,
    limit: u64,
    name: String,
) -> Pin<Box<dyn Future<Output = Result<CallResponse, StepError>> + Send>> {
    Box::pin(async move {
        let status = resp.status();
        let ct = resp.headers().get(http::header::CONTENT_TYPE).cloned();
        match http_body_util::Limited::new(resp.into_body(), limit as usize)
            .collect()
            .await
        {
            Ok(c) => Ok((status, ct, c.to_bytes())),
            Err(e) => Err(StepError::Call(SendError::Backend(format!(
                "reading the response of endpoint \"{name}\" failed: {e}"
            )))),
        }
    })
}

fn read_error(e: ReadError) -> StepError {
    match e {
        ReadError::TooLarge { .. } => StepError::TooLarge(e),
        other => StepError::Read(other),
    }
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Flow, StepError>> + Send + 'a>>;

impl CompiledSequence {
    /// Runs the sequence inside the caller's future: no allocation for the sequence a
    /// proxy starts with; only what it branches into (`filter`, a `switch` to a sequence)
    /// is boxed, as those may nest.
    pub async fn run(&self, msg: &mut Message, ctx: &mut Ctx<'_>) -> Result<Flow, StepError> {
        steps_in_place(&self.steps, msg, ctx, &self.name).await
    }
}

fn run_steps<'a>(
    steps: &'a [CStep],
    msg: &'a mut Message,
    ctx: &'a mut Ctx<'_>,
    seq: &'a str,
) -> StepFuture<'a> {
    Box::pin(steps_in_place(steps, msg, ctx, seq))
}

async fn steps_in_place(
    steps: &[CStep],
    msg: &mut Message,
    ctx: &mut Ctx<'_>,
    seq: &str,
) -> Result<Flow, StepError> {
    for step in steps {
        if step.reads_body() {
            if let Err(e) = msg.read_body(ctx.max_body).await {
                return Err(read_error(e));
            }
        }
        match step {
            CStep::Log(t) => {
                if let Some(tr) = ctx.trace.as_deref_mut() {
                    tr.step(seq, "log", None);
                }
                tracing::info!(target: "esb::mediation", unit = %ctx.unit.name, sequence = seq, "{}", eval(t, msg, ctx.unit));
            }
            CStep::SetHeader(name, t) => {
                if let Some(tr) = ctx.trace.as_deref_mut() {
                    tr.step(seq, format!("set_header {name}"), None);
                }
                if let Ok(v) = HeaderValue::from_str(&eval(t, msg, ctx.unit)) {
                    msg.headers.insert(name.clone(), v);
                }
            }
            CStep::RemoveHeader(name) => {
                if let Some(tr) = ctx.trace.as_deref_mut() {
                    tr.step(seq, format!("remove_header {name}"), None);
                }
                msg.headers.remove(name);
            }
            CStep::SetProperty(name, t) => {
                if let Some(tr) = ctx.trace.as_deref_mut() {
                    tr.step(seq, format!("set_property {name}"), None);
                }
                let v = eval(t, msg, ctx.unit).into_owned();
                msg.set_prop(name, v);
            }
            CStep::Filter {
                on,
                cond,
                then,
                otherwise,
            } => {
                let v = eval(on, msg, ctx.unit);
                let hit = match cond {
                    Cond::Equals(x) => v == x.as_str(),
                    Cond::NotEquals(x) => v != x.as_str(),
                    Cond::Contains(x) => v.contains(x.as_str()),
                    Cond::StartsWith(x) => v.starts_with(x.as_str()),
                    Cond::Exists(want) => v.is_empty() != *want,
                };
                if let Some(tr) = ctx.trace.as_deref_mut() {
                    let d = format!("{} ({v:?})", if hit { "then" } else { "else" });
                    tr.step(seq, "filter", Some(d));
                }
                let branch = if hit { then } else { otherwise };
                if let Flow::Respond(r) = run_steps(branch, msg, ctx, seq).await? {
                    return Ok(Flow::Respond(r));
                }
            }
            CStep::Switch { on, cases, default } => {
                let chosen = {
                    let v = eval(on, msg, ctx.unit);
                    let case = cases.get(v.as_ref());
                    if let Some(tr) = ctx.trace.as_deref_mut() {
                        let to = match case.or(default.as_ref()) {
                            Some(Target::Endpoint(e)) => format!("endpoint {}", e.name),
                            Some(Target::Sequence(s)) => format!("sequence {}", s.name),
                            None => "nothing".into(),
                        };
                        let d = match case {
                            Some(_) => format!("case {v:?} → {to}"),
                            None => format!("default ({v:?}) → {to}"),
                        };
                        tr.step(seq, "switch", Some(d));
                    }
                    match case.or(default.as_ref()) {
                        Some(Target::Endpoint(e)) => {
                            ctx.route = Some(e.clone());
                            None
                        }
                        Some(Target::Sequence(s)) => Some(s.clone()),
                        None => None,
                    }
                };
                if let Some(s) = chosen {
                    if let Flow::Respond(r) = run_steps(&s.steps, msg, ctx, &s.name).await? {
                        return Ok(Flow::Respond(r));
                    }
                }
            }
            CStep::Transform { body, content_type } => {
                if let Some(tr) = ctx.trace.as_deref_mut() {
                    tr.step(seq, "transform", None);
                }
                let mut out = Vec::with_capacity(256);
                body.render_to(&mut out, msg, ctx.unit);
                msg.set_body(out.into(), Some(content_type.clone()));
            }
            CStep::Respond {
                status,
                body,
                headers,
            } => {
                if let Some(tr) = ctx.trace.as_deref_mut() {
                    tr.step(seq, "respond", Some(status.as_u16().to_string()));
                }
                let mut resp = match body {
                    RespondBody::Empty => Response::new(crate::body::empty()),
                    RespondBody::Text(t) => {
                        Response::new(full(eval(t, msg, ctx.unit).into_owned()))
                    }
                    RespondBody::Json(j) => json_response(*status, &j.render(msg, ctx.unit)),
                };
                *resp.status_mut() = *status;
                for (name, t) in headers {
                    let v = eval(t, msg, ctx.unit);
                    if v.is_empty() {
                        continue;
                    }
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        resp.headers_mut().insert(name.clone(), v);
                    }
                }
                return Ok(Flow::Respond(resp));
            }
            CStep::Call(ep) => {
                let resp = ep
                    .send(
                        msg,
                        ctx.client_addr,
                        ctx.scheme,
                        true,
                        crate::outbound::Fields::Map,
                    )
                    .await?;
                if let Some(tr) = ctx.trace.as_deref_mut() {
                    let by = resp.extensions().get::<crate::tap::AnsweredBy>();
                    let d = format!(
                        "{} from {}",
                        resp.status().as_u16(),
                        by.map_or("?", |a| a.0.as_str())
                    );
                    tr.step(seq, format!("call {}", ep.name), Some(d));
                }
                let (status, ct, bytes) =
                    read_response(resp, ctx.max_body, ep.name.clone()).await?;
                msg.set_body(bytes, ct);
                msg.status = Some(status);
                msg.set_prop("call.status", status.as_u16().to_string());
            }
            CStep::Publish {
                link,
                exchange,
                routing_key,
                confirm,
                persistent,
                headers,
            } => {
                let rk = eval(routing_key, msg, ctx.unit).into_owned();
                let mut table = lapin::types::FieldTable::default();
                for (k, t) in headers {
                    table.insert(
                        k.as_str().into(),
                        crate::amqp::text(eval(t, msg, ctx.unit).into_owned()),
                    );
                }
                let ct = msg
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = msg.payload.bytes().cloned().unwrap_or_default();
                link.publish(Outgoing {
                    exchange,
                    routing_key: &rk,
                    body: &body,
                    content_type: ct.as_deref(),
                    headers: table,
                    persistent: *persistent,
                    confirm: *confirm,
                })
                .await
                .map_err(StepError::Publish)?;
                msg.set_prop("publish.confirmed", confirm.to_string());
            }
        }
    }
    Ok(Flow::Continue)
}
