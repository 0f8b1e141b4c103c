//! Reading HTTP/1.1 responses off a socket, byte by byte as the server wrote them: the status
//! line, the headers, and a body framed by `Content-Length`, chunked transfer coding or the
//! end of the connection. Shared by the raw management client ([`crate::mgmt_client`]) and
//! the keep-alive load ([`crate::load`]), so both read responses the same way.

use std::io::{self, BufRead};

use serde_json::Value;

/// A response read completely.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the status and body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }

    /// True when the server announced it closes the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// The status and headers of a response.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// True for `Transfer-Encoding: chunked`.
    pub fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One line without its line ending; the server closing the connection is `UnexpectedEof`.
pub fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The status line and the headers, up to the empty line.
pub fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let status_line = read_line(r)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    Ok(Head { status, headers })
}

/// How a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// By its length or its last chunk: the connection can carry another request.
    Framed,
    /// By the server closing the connection.
    Closed,
}

/// The body that follows `head` (none for a response to HEAD, 1xx, 204 and 304).
pub fn read_body(
    r: &mut impl BufRead,
    head: &Head,
    head_only: bool,
) -> io::Result<(Vec<u8>, Framing)> {
    let mut body = Vec::new();
    let status = head.status;
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok((body, Framing::Framed));
    }
    if head.chunked() {
        while let Some(chunk) = read_chunk(r)? {
            body.extend_from_slice(&chunk);
        }
    } else if let Some(len) = head.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("bad content-length {len:?}")))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
        return Ok((body, Framing::Closed));
    }
    Ok((body, Framing::Framed))
}

/// One chunk of a chunked body; `None` after the last one (trailers consumed).
pub fn read_chunk(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let line = read_line(r)?;
    let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
        .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
    if size == 0 {
        while !read_line(r)?.is_empty() {}
        return Ok(None);
    }
    let mut chunk = vec![0; size];
    r.read_exact(&mut chunk)?;
    if !read_line(r)?.is_empty() {
        return Err(bad("chunk not followed by CRLF"));
    }
    Ok(Some(chunk))
}

/// A whole response: head and body.
pub fn read_response(r: &mut impl BufRead, head_only: bool) -> io::Result<(RawResponse, Framing)> {
    let head = read_head(r)?;
    let (body, framing) = read_body(r, &head, head_only)?;
    let Head { status, headers } = head;
    Ok((
        RawResponse {
            status,
            headers,
            body,
        },
        framing,
    ))
}
