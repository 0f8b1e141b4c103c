//! The `/jolokia` resource over HTTP: GET paths and POST bodies (bounded by `max_body`),
//! each request answered in the Jolokia envelope (`mimeType` honoured); a state change is
//! audited with the revisions of the units it concerns before and after.

use super::*;

impl Mgmt {
    pub(super) async fn jolokia(
        &self,
        req: Request<Incoming>,
        role: Role,
        peer: SocketAddr,
    ) -> Response<Body> {
        let limit = self.server.engine.root.management.max_body;
        match *req.method() {
            Method::GET => {
                let rest = req.uri().path().strip_prefix("/jolokia").unwrap_or("");
                let parsed = parse_get_request(rest, req.uri().query());
                let mime = parsed
                    .as_ref()
                    .ok()
                    .and_then(|r| r.config())
                    .and_then(|c| c.mime_type());
                let allow_get = *self
                    .server
                    .engine
                    .root
                    .management
                    .allow_get_changes
                    .get_ref();
                match parsed {
                    // Refused inside a 200 envelope: jolokia.js drops the body of a non-200.
                    Ok(r) => match jolokia::refuse_change_over_get(&r, allow_get) {
                        Some(refused) => {
                            if beans::changes_state(&r) {
                                self.server
                                    .audit
                                    .request(role, peer, &r, &refused, None, None);
                            }
                            envelope(&refused, StatusCode::OK, mime)
                        }
                        None => {
                            let answer = self.answer_one(&r, role, peer).await;
                            envelope(&answer, http_status(&answer), mime)
                        }
                    },
                    Err(e) => {
                        let resp = JResponse::from_error(Value::Null, &e);
                        envelope(&resp, http_status(&resp), mime)
                    }
                }
            }
            Method::POST => {
                let req_query = req.uri().query().map(str::to_owned);
                if req
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|n| n > limit)
                {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("request body larger than {limit} bytes ([management] max_body)"),
                    );
                }
                let body = match read_limited(req.into_body(), limit).await {
                    Ok(b) => b,
                    Err(status) => {
                        return error(
                            status,
                            &format!(
                                "request body larger than {limit} bytes ([management] max_body)"
                            ),
                        )
                    }
                };
                let mut mime = query_mime(req_query.as_deref());
                let items = match parse_post_body_each(&body) {
                    Ok(items) => items,
                    Err(e) => {
                        let r = JResponse::from_error(Value::Null, &e);
                        return envelope(&r, StatusCode::OK, mime);
                    }
                };
                let mut responses = Vec::new();
                for item in items.items {
                    let r = match item {
                        Ok(r) => {
                            if !items.is_bulk {
                                mime = r.config().and_then(|c| c.mime_type()).or(mime);
                            }
                            self.answer_one(&r, role, peer).await
                        }
                        Err(rejected) => JResponse::from_error(rejected.raw, &rejected.error),
                    };
                    responses.push(r);
                }
                if items.is_bulk {
                    envelope(&responses, StatusCode::OK, mime)
                } else {
                    let r = responses.remove(0);
                    let status = http_status(&r);
                    envelope(&r, status, mime)
                }
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
        }
    }

    /// Answers one request; a state change is audited with the revisions before and after.
    async fn answer_one(
        &self,
        r: &deployments::protocol::Request,
        role: Role,
        peer: SocketAddr,
    ) -> JResponse {
        if !beans::changes_state(r) {
            return jolokia::answer(&self.server, r, role).await;
        }
        let engine = &self.server.engine;
        let audited = audit_units(r);
        let before = crate::audit::revisions_of(engine, &audited).await;
        let answer = jolokia::answer(&self.server, r, role).await;
        // Refused because the audit log cannot be written: nothing to record.
        if answer.status != 503 {
            let after = crate::audit::revisions_of(engine, &audited).await;
            self.server
                .audit
                .request(role, peer, r, &answer, before, after);
        }
        answer
    }
}

/// A Jolokia answer; `mime` is the `mimeType` processing parameter (JSON by default).
fn envelope(
    value: &impl serde::Serialize,
    status: StatusCode,
    mime: Option<&'static str>,
) -> Response<Body> {
    let mut r = Response::new(full(serde_json::to_vec(value).expect("json")));
    *r.status_mut() = status;
    let content_type = match mime {
        Some("text/plain") => "text/plain; charset=utf-8",
        _ => "application/json",
    };
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

/// `mimeType` from the query string of a POST (it applies to the whole answer).
fn query_mime(query: Option<&str>) -> Option<&'static str> {
    deployments::protocol::parse_query(query?)
        .ok()
        .and_then(|c| c.mime_type())
}

/// Single requests that were refused for access reasons also carry the HTTP status.
fn http_status(r: &JResponse) -> StatusCode {
    match r.status {
        401 | 403 | 405 => StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
        _ => StatusCode::OK,
    }
}

/// The units a state-changing request concerns, for revision before/after in the audit, as
/// the typed operation says (none for a write or an exec that does not decode).
fn audit_units(r: &deployments::protocol::Request) -> Vec<String> {
    match beans::decode_exec(r) {
        Some((bean, Ok(op))) => op.units(&bean),
        Some((_, Err(_))) | None => Vec::new(),
    }
}

async fn read_limited(mut body: Incoming, limit: u64) -> Result<Bytes, StatusCode> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
        if let Ok(d) = frame.into_data() {
            if (buf.len() + d.len()) as u64 > limit {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
            buf.extend_from_slice(&d);
        }
    }
    Ok(buf.freeze())
}
