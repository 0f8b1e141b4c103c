//! The streams of the management endpoint: `/events` (server-sent events, resumable with
//! `Last-Event-ID`, or the `recent` ones at once) and `/tap` (one record per finished
//! request of a proxy, or per attempt of a consumer, while a client watches).

use super::*;

/// The decoded query parameters of a request, in order.
fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    let query = req.uri().query().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

impl Mgmt {
    pub(super) fn events(&self, req: &Request<Incoming>) -> Response<Body> {
        let query = query_pairs(req);
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let recent = q("recent").and_then(|v| v.parse::<usize>().ok());
        let last_id = req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| q("last-event-id"))
            .and_then(|v| v.parse::<u64>().ok());
        let bus = &self.server.events;
        let body: Body = if let Some(n) = recent {
            let text: String = bus.recent(n).iter().map(|e| sse(e)).collect();
            full(text)
        } else {
            let (past, rx) = bus.subscribe(last_id);
            let head: String = past.iter().map(|e| sse(e)).collect();
            let first = futures_util::stream::once(async move {
                Ok::<_, crate::body::BoxError>(Frame::data(Bytes::from(format!(
                    ": connected\nretry: 1000\n\n{head}"
                ))))
            });
            let live = futures_util::stream::unfold(rx, |mut rx| async move {
                loop {
                    let next =
                        tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv()).await;
                    let chunk = match next {
                        Err(_) => ": keep-alive\n\n".to_owned(),
                        Ok(Ok(e)) => sse(&e),
                        Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                        Ok(Err(_)) => return None,
                    };
                    return Some((
                        Ok::<_, crate::body::BoxError>(Frame::data(Bytes::from(chunk))),
                        rx,
                    ));
                }
            });
            Body::boxed(StreamBody::new(first.chain(live)))
        };
        let mut r = Response::new(body);
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        r.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        r
    }
}

/// `GET /tap?proxy=P[&unit=U][&limit=N]`: server-sent events, one `tap` event per finished
/// request of the proxy, for as long as the client stays (or N records); with
/// `consumer=C` instead of `proxy`, one per attempt of the consumer at a message. Records
/// are made only while a tap is open; a client that falls behind gets a `lost` event.
async fn tap_target(
    server: &crate::server::Server,
    name: &str,
    unit: Option<&str>,
    consumer: bool,
) -> Result<(), String> {
    let units = server.engine.snapshot();
    let mut known: Vec<String> = Vec::new();
    for (u, state) in units.iter() {
        let names: Vec<&str> = if consumer {
            state.consumers.keys().map(String::as_str).collect()
        } else {
            match state.current.as_ref() {
                Some(rev) => rev.proxies.iter().map(|p| p.name.as_str()).collect(),
                None => continue,
            }
        };
        for n in names {
            if n == name && unit.is_none_or(|x| x == u.as_str()) {
                return Ok(());
            }
            known.push(format!("{u}/{n}"));
        }
    }
    known.sort();
    let kind = if consumer { "consumer" } else { "proxy" };
    let what = match unit {
        Some(u) => format!("unit \"{u}\" has no {kind} \"{name}\""),
        None => format!("no unit has a {kind} \"{name}\""),
    };
    let plural = if consumer { "consumers" } else { "proxies" };
    let list = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    Err(format!("{what}; {plural}: {list}"))
}

impl Mgmt {
    pub(super) async fn tap(&self, req: &Request<Incoming>) -> Response<Body> {
        let pairs = query_pairs(req);
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let named = match (get("proxy"), get("consumer")) {
            (Some(p), None) if !p.is_empty() => Some((p, false)),
            (None, Some(c)) if !c.is_empty() => Some((c, true)),
            _ => None,
        };
        if let Some((name, consumer)) = named {
            let unit = get("unit").filter(|u| !u.is_empty());
            if let Err(why) = tap_target(&self.server, name, unit, consumer).await {
                return error(StatusCode::NOT_FOUND, &why);
            }
        }
        tap(req)
    }
}

fn tap(req: &Request<Incoming>) -> Response<Body> {
    let query = query_pairs(req);
    let q = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let (name, consumer) = match (q("proxy"), q("consumer")) {
        (Some(p), None) => (p, false),
        (None, Some(c)) => (c, true),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "name the proxy or the consumer: /tap?proxy=NAME or /tap?consumer=NAME \
                 (and &unit=UNIT, &limit=N)",
            )
        }
    };
    let limit = match q("limit").map(|l| l.parse::<u64>()) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit must be a positive number"),
    };
    let tapper = crate::tap::Tapper::new(crate::tap::Filter {
        name,
        unit: q("unit"),
        consumer,
    });
    let first = futures_util::stream::once(async move {
        Ok::<_, crate::body::BoxError>(Frame::data(Bytes::from_static(
            b": tapping\nretry: 1000\n\n",
        )))
    });
    let live = futures_util::stream::unfold(
        (tapper, limit.unwrap_or(u64::MAX)),
        |(mut tapper, left)| async move {
            if left == 0 {
                return None;
            }
            let next = tokio::time::timeout(std::time::Duration::from_secs(15), tapper.next());
            let (chunk, left) = match next.await {
                Err(_) => (": keep-alive\n\n".to_owned(), left),
                Ok(Some(Ok(r))) => (
                    format!(
                        "event: tap\ndata: {}\n\n",
                        serde_json::to_string(&*r).unwrap_or_default()
                    ),
                    left - 1,
                ),
                Ok(Some(Err(n))) => (
                    format!(
                        "event: lost\ndata: {}\n\n",
                        serde_json::to_string(&crate::tap::Lost { lost: n }).unwrap_or_default()
                    ),
                    left,
                ),
                Ok(None) => return None,
            };
            Some((
                Ok::<_, crate::body::BoxError>(Frame::data(Bytes::from(chunk))),
                (tapper, left),
            ))
        },
    );
    let mut r = Response::new(Body::boxed(StreamBody::new(first.chain(live))));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    r
}

fn sse(e: &crate::events::Event) -> String {
    format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        e.id,
        e.kind.name(),
        serde_json::to_string(e).unwrap_or_default()
    )
}
