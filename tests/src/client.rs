//! A small blocking HTTP/1.1 client (hyper over a shared runtime; TLS with rustls trusting
//! only the given CA). One connection per request, no proxy, no redirects, no header
//! rewriting: the request goes out exactly as the test wrote it (plus `Host`).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

type ReqBody = BoxBody<Bytes, Infallible>;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("e2e-client")
            .enable_all()
            .build()
            .expect("client runtime")
    })
}

#[derive(Clone)]
pub struct Client {
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

/// A response read completely.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }
}

impl Client {
    /// Plain HTTP (and https only to servers trusted by [`Client::with_ca`]).
    pub fn new() -> Self {
        Client {
            tls: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// A client trusting exactly the CA certificates in `ca_pem` for `https://` URLs.
    pub fn with_ca(ca_pem: &str) -> Self {
        Client {
            tls: Some(crate::tls::client_config(ca_pem)),
            timeout: Duration::from_secs(30),
        }
    }

    /// Whole-exchange limit (default 30 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    pub fn request(&self, method: &str, url: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method: Method::from_bytes(method.as_bytes()).expect("valid method"),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn get(&self, url: &str) -> Response {
        self.request("GET", url).send()
    }

    pub fn post(&self, url: &str, body: impl Into<Bytes>) -> Response {
        self.request("POST", url).body(body).send()
    }
}

enum Body {
    Empty,
    Bytes(Bytes),
    Pattern(u64),
}

pub struct RequestBuilder<'a> {
    client: &'a Client,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Body,
}

impl RequestBuilder<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Body::Bytes(body.into());
        self
    }

    /// A JSON body with `content-type: application/json`.
    pub fn json(self, v: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(v).expect("json"))
    }

    /// `len` bytes of [`crate::pattern_byte`], generated while sending (content-length set).
    pub fn pattern_body(mut self, len: u64) -> Self {
        self.body = Body::Pattern(len);
        self
    }

    /// Sends and reads the whole response; panics (naming the URL) on transport errors.
    pub fn send(self) -> Response {
        let what = format!("{} {}", self.method, self.url);
        self.try_send()
            .unwrap_or_else(|e| panic!("{what} failed: {e}"))
    }

    /// Sends and reads the whole response.
    pub fn try_send(self) -> Result<Response, String> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| format!("bad url {}: {e}", self.url))?;
        let host = uri.host().ok_or("url without host")?.to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let body: ReqBody = match self.body {
            Body::Empty => Empty::new().boxed(),
            Body::Bytes(b) => Full::new(b).boxed(),
            Body::Pattern(len) => PatternBody { offset: 0, len }.boxed(),
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method;
        *req.uri_mut() = path.parse().map_err(|e| format!("bad path: {e}"))?;
        req.headers_mut().insert(
            http::header::HOST,
            HeaderValue::from_str(&authority).map_err(|e| e.to_string())?,
        );
        for (k, v) in &self.headers {
            req.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(v).map_err(|e| e.to_string())?,
            );
        }
        let tls = self.client.tls.clone();
        let limit = self.client.timeout;
        runtime().block_on(async move {
            tokio::time::timeout(limit, exchange(&host, port, https, tls, req))
                .await
                .map_err(|_| format!("no complete response within {limit:?}"))?
        })
    }
}

async fn exchange(
    host: &str,
    port: u16,
    https: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    req: Request<ReqBody>,
) -> Result<Response, String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    if https {
        let config = tls.ok_or("https URL but the client trusts no CA; use Client::with_ca")?;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| format!("server name {host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake with {host}:{port}: {e}"))?;
        send(TokioIo::new(stream), req).await
    } else {
        send(TokioIo::new(stream), req).await
    }
}

async fn send<T>(io: T, req: Request<ReqBody>) -> Result<Response, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {}", chain(&e)))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the response body: {}", chain(&e)))?
        .to_bytes();
    drop(sender);
    conn.abort();
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Generates [`crate::pattern_byte`] bytes in 64 KiB frames without holding the whole body.
struct PatternBody {
    offset: u64,
    len: u64,
}

const FRAME: usize = 64 * 1024;

fn pattern_block() -> &'static Bytes {
    static BLOCK: OnceLock<Bytes> = OnceLock::new();
    BLOCK.get_or_init(|| (0..(FRAME as u64 + 251)).map(crate::pattern_byte).collect())
}

impl hyper::body::Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.offset >= self.len {
            return Poll::Ready(None);
        }
        let n = (self.len - self.offset).min(FRAME as u64) as usize;
        let start = (self.offset % 251) as usize;
        let chunk = pattern_block().slice(start..start + n);
        self.offset += n as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.offset >= self.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.offset)
    }
}

/// True when `body` is exactly the first `body.len()` bytes of the test pattern.
pub fn is_pattern(body: &[u8]) -> bool {
    body.iter()
        .enumerate()
        .all(|(i, b)| *b == crate::pattern_byte(i as u64))
}
