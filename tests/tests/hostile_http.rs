//! The data plane against hostile or unusual HTTP: request bodies in every framing through
//! every combination of sequences, invalid chunked framing, clients that go away, slow
//! bodies, connection floods (also at a low open-file limit) and drains that do not end on
//! their own. Requests are written on raw TCP sockets, byte for byte, where a client library
//! would normalise them.

use e2e::mgmt_client::Mgmt;
use e2e::uterm::Uterm;
use e2e::{wait_for, wait_until, Backend, Client, Esb, EsbOptions, TempConf};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- raw HTTP on a socket

/// A response read off a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.head, self.text()))
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Reads until `buf` holds `\r\n\r\n`; returns the head's length (with the blank line).
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap_or_else(|e| {
            panic!(
                "reading a response head failed: {e}; got so far: {:?}",
                String::from_utf8_lossy(buf)
            )
        });
        assert!(
            n > 0,
            "connection closed before a full head; got: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn fill_to(s: &mut TcpStream, buf: &mut Vec<u8>, len: usize) {
    while buf.len() < len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("read body");
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads one response (skipping `100 Continue`), framed by Content-Length, chunked, or
/// read to close.
fn read_response(s: &mut TcpStream) -> Raw {
    read_response_in(s, &mut Vec::new(), false)
}

/// Reads one response whose bytes may already be in `buf` (pipelining), leaving in `buf`
/// whatever arrived after it. An answer to HEAD (`head_only`) has no body, whatever its
/// Content-Length says.
fn read_response_in(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Raw {
    loop {
        let end = read_head(s, buf);
        let head = String::from_utf8_lossy(&buf[..end - 4]).into_owned();
        buf.drain(..end);
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head}"));
        if status == 100 {
            continue;
        }
        let mut r = Raw {
            status,
            head,
            body: Vec::new(),
        };
        if head_only {
            return r;
        }
        if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            fill_to(s, buf, len);
            r.body = buf.drain(..len).collect();
        } else if r
            .header("transfer-encoding")
            .is_some_and(|t| t.contains("chunked"))
        {
            r.body = read_chunked(s, buf);
        } else {
            s.read_to_end(buf).expect("read to close");
            r.body = std::mem::take(buf);
        }
        return r;
    }
}

fn read_line(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..i]).into_owned();
            buf.drain(..i + 2);
            return line;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("read line");
        assert!(n > 0, "connection closed mid-line");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line = read_line(s, buf);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
        if size == 0 {
            while !read_line(s, buf).is_empty() {}
            return body;
        }
        fill_to(s, buf, size + 2);
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

/// Writes `request` on a new connection and reads the response (writing on another thread,
/// so a server that answers before reading everything is still heard).
fn exchange(port: u16, request: Vec<u8>) -> Raw {
    let mut s = connect(port);
    let mut w = s.try_clone().expect("clone socket");
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&request);
    });
    let r = read_response(&mut s);
    let _ = writer.join();
    r
}

/// True once the peer closed the connection (read returns 0 or a reset) within [`WAIT`].
fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

// ---------------------------------------------------------------- a raw HTTP/1.0 backend

/// A backend that reads a request (Content-Length or chunked) and answers in HTTP/1.0
/// without a length, closing the connection to end the body: `got:<request body>`.
struct CloseDelimited {
    port: u16,
}

fn read_request_body(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let end = read_head(s, &mut buf);
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    buf.drain(..end);
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
            .map(str::to_owned)
    };
    if let Some(len) = header("content-length") {
        let len: usize = len.parse().expect("content-length");
        fill_to(s, &mut buf, len);
        buf.truncate(len);
        buf
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        read_chunked(s, &mut buf)
    } else {
        Vec::new()
    }
}

impl CloseDelimited {
    fn start() -> CloseDelimited {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(WAIT));
                    let body = read_request_body(&mut s);
                    let mut out =
                        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\ngot:".to_vec();
                    out.extend_from_slice(&body);
                    let _ = s.write_all(&out);
                });
            }
        });
        CloseDelimited { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

// ---------------------------------------------------------------- units

/// Proxies on `/p-<variant>` for every combination of in, out and fault sequences, all
/// forwarding to endpoint `be` at `backend`; `/echo` answers the JSON body it read.
fn matrix_unit(backend: &str) -> String {
    let mut s = String::new();
    for (name, seq, out, fault) in VARIANTS {
        s.push_str(&format!(
            "[[proxy]]\nname = \"{name}\"\npath = \"/p-{name}\"\nendpoint = \"be\"\n"
        ));
        if let Some(q) = seq {
            s.push_str(&format!("sequence = \"{q}\"\n"));
        }
        if let Some(q) = out {
            s.push_str(&format!("out_sequence = \"{q}\"\n"));
        }
        if let Some(q) = fault {
            s.push_str(&format!("fault_sequence = \"{q}\"\n"));
        }
        s.push('\n');
    }
    s.push_str(&format!(
        r#"
[[proxy]]
name = "echo"
path = "/echo"
sequence = "echo"

[[sequence]]
name = "echo"
steps = [{{ respond = {{ status = 200, json = {{ got = "${{json./v}}" }} }} }}]

[[sequence]]
name = "tag"
steps = [{{ set_header = {{ name = "x-tag", value = "in" }} }}]

[[sequence]]
name = "peek"
steps = [{{ log = "peeked ${{json./v}}" }}]

[[sequence]]
name = "out"
steps = [{{ set_header = {{ name = "x-out", value = "1" }} }}]

[[sequence]]
name = "fault"
steps = [{{ respond = {{ status = 599, body = "fault ${{prop.error.message}}" }} }}]

[[endpoint]]
name = "be"
addresses = ["{backend}"]
"#
    ));
    s
}

/// (proxy name, sequence, out_sequence, fault_sequence).
type Variant = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

const VARIANTS: [Variant; 8] = [
    ("plain", None, None, None),
    ("in", Some("tag"), None, None),
    ("peek", Some("peek"), None, None),
    ("out", None, Some("out"), None),
    ("fault", None, None, Some("fault")),
    ("in-out", Some("tag"), Some("out"), None),
    ("in-fault", Some("tag"), None, Some("fault")),
    ("all", Some("peek"), Some("out"), Some("fault")),
];

/// esb with the matrix unit on transport `web` (with `transport_line`, if any) in front
/// of an echo backend.
struct Matrix {
    echo: Backend,
    conf: TempConf,
    esb: Esb,
    port: u16,
}

impl Matrix {
    fn start(transport_line: Option<&str>) -> Matrix {
        let echo = Backend::echo().name("echo").start();
        let mut conf = TempConf::new().http("web");
        if let Some(line) = transport_line {
            conf = conf.transport_line("web", line);
        }
        let conf = conf.unit("m", &matrix_unit(&echo.url()));
        let esb = Esb::start(&conf);
        let port = conf.port("web");
        Matrix {
            echo,
            conf,
            esb,
            port,
        }
    }
}

/// (name, request framing after the request line, expected body). `{PATH}` is replaced.
fn framings() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let body = r#"{"v":"hello"}"#;
    vec![
        (
            "content-length",
            format!("POST {{PATH}} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes(),
            body,
        ),
        (
            "chunked",
            format!("POST {{PATH}} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).into_bytes(),
            body,
        ),
        (
            "chunked-in-pieces",
            format!("POST {{PATH}} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\n{}\r\n{:x};ext=1\r\n{}\r\n0\r\n\r\n", &body[..3], body.len() - 3, &body[3..]).into_bytes(),
            body,
        ),
        (
            "chunked-with-trailers",
            format!("POST {{PATH}} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\nx-sum: 42\r\n\r\n", body.len()).into_bytes(),
            body,
        ),
        (
            "empty-chunked",
            b"POST {PATH} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n".to_vec(),
            "",
        ),
        (
            "empty-content-length",
            b"POST {PATH} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            "",
        ),
        (
            "http-1.0",
            format!("POST {{PATH}} HTTP/1.0\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes(),
            body,
        ),
    ]
}

fn with_path(template: &[u8], path: &str) -> Vec<u8> {
    String::from_utf8_lossy(template)
        .replace("{PATH}", path)
        .into_bytes()
}

/// `Expect: 100-continue`: the head first, the body only after `100 Continue`.
fn send_expect_continue(port: u16, path: &str, body: &str) -> Raw {
    let mut s = connect(port);
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("write head");
    let mut buf = Vec::new();
    let end = read_head(&mut s, &mut buf);
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    assert!(
        head.starts_with("HTTP/1.1 100"),
        "expected 100 Continue before sending the body, got {head}"
    );
    assert_eq!(buf.len(), end, "nothing may follow 100 Continue yet");
    s.write_all(body.as_bytes()).expect("write body");
    read_response(&mut s)
}

#[test]
fn request_bodies_arrive_intact_in_every_framing_through_every_sequence_combination() {
    let echo = Backend::echo().name("echo").start();
    let close = CloseDelimited::start();
    let conf = TempConf::new()
        .http("web")
        .unit("m", &matrix_unit(&echo.url()))
        .unit(
            "c",
            &matrix_unit(&close.url())
                .replace("path = \"/p-", "path = \"/close-")
                .replace("path = \"/echo\"", "path = \"/echo-c\""),
        );
    let esb = Esb::start(&conf);
    let port = conf.port("web");
    let mut failures = Vec::new();
    for (variant, ..) in VARIANTS {
        for (framing, request, want) in framings() {
            // Through the echo backend (hyper): the JSON echo holds the body it received.
            let path = format!("/p-{variant}");
            let r = exchange(port, with_path(&request, &path));
            let got = (r.status == 200)
                .then(|| r.json()["body"].as_str().map(str::to_owned))
                .flatten();
            if got.as_deref() != Some(want) {
                failures.push(format!(
                    "{framing} via {path}: status {}, backend saw {got:?}, want {want:?}; body {}",
                    r.status,
                    r.text()
                ));
            }
            // Through the HTTP/1.0 backend whose response is delimited by closing.
            let path = format!("/close-{variant}");
            let r = exchange(port, with_path(&request, &path));
            let want_text = format!("got:{want}");
            if r.status != 200 || r.text() != want_text {
                failures.push(format!(
                    "{framing} via {path} (read-to-close answer): status {}, body {:?}, want {want_text:?}",
                    r.status,
                    r.text()
                ));
            }
        }
        let path = format!("/p-{variant}");
        let r = send_expect_continue(port, &path, r#"{"v":"hello"}"#);
        let got = (r.status == 200)
            .then(|| r.json()["body"].as_str().map(str::to_owned))
            .flatten();
        if got.as_deref() != Some(r#"{"v":"hello"}"#) {
            failures.push(format!(
                "100-continue via {path}: status {}, backend saw {got:?}; body {}",
                r.status,
                r.text()
            ));
        }
    }
    // A route that reads the body itself.
    for (framing, request, want) in framings() {
        let r = exchange(port, with_path(&request, "/echo"));
        let want_got = if want.is_empty() {
            Value::Null
        } else {
            json!("hello")
        };
        if r.status != 200 || r.json()["got"] != want_got {
            failures.push(format!(
                "{framing} via /echo: status {}, body {}",
                r.status,
                r.text()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the combinations lost or mangled the body:\n  {}\n--- esb log ---\n{}",
        failures.len(),
        failures.join("\n  "),
        esb.log()
    );
}

// ---------------------------------------------------------------- invalid framing

/// Chunked bodies whose framing is broken, after the head `POST {PATH}` with
/// `Transfer-Encoding: chunked`.
fn broken_chunks() -> Vec<(&'static str, Vec<u8>)> {
    let mut huge_ext = b"5;".to_vec();
    huge_ext.extend(std::iter::repeat_n(b'a', 100 * 1024));
    huge_ext.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    vec![
        ("bad hex size", b"zz\r\nhello\r\n0\r\n\r\n".to_vec()),
        (
            "size overflow",
            b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n".to_vec(),
        ),
        ("missing CRLF after data", b"5\r\nhelloXX0\r\n\r\n".to_vec()),
        ("negative size", b"-5\r\nhello\r\n0\r\n\r\n".to_vec()),
        ("100 KB chunk extension", huge_ext),
    ]
}

#[test]
fn invalid_chunked_framing_is_answered_400_and_reaches_no_backend() {
    let Matrix {
        echo,
        conf,
        esb,
        port,
    } = Matrix::start(None);
    let mut failures = Vec::new();
    for path in ["/p-plain", "/p-fault", "/p-all", "/p-in-out", "/echo"] {
        for (what, chunks) in broken_chunks() {
            let mut req =
                format!("POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .into_bytes();
            req.extend_from_slice(&chunks);
            let r = exchange(port, req);
            if r.status != 400 {
                failures.push(format!("{what} via {path}: {} {}", r.status, r.text()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "invalid chunked framing must be answered 400:\n  {}\n--- esb log ---\n{}",
        failures.join("\n  "),
        esb.log()
    );
    assert_eq!(
        echo.hits(),
        0,
        "no request with broken framing may reach the backend: {:#?}",
        echo.seen()
    );

    // A body longer than esb reads ahead streams to the backend; broken framing after
    // 128 KiB aborts that backend request, answers 400, and does not count against the
    // address.
    let mut req =
        b"POST /p-plain HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..8 {
        req.extend_from_slice(b"4000\r\n");
        req.extend(std::iter::repeat_n(b'x', 0x4000));
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"zz\r\nbroken\r\n0\r\n\r\n");
    let r = exchange(port, req);
    assert_eq!(
        r.status,
        400,
        "streamed broken body: {}\n{}",
        r.text(),
        esb.log()
    );
    let mgmt = Mgmt::of(&conf);
    let addrs = mgmt.read("esb:type=Endpoint,unit=m,name=be", "Addresses");
    assert_eq!(
        (addrs[0]["state"].clone(), addrs[0]["failures"].clone()),
        (json!("Active"), json!(0)),
        "a client's broken body is not the backend's failure: {addrs}"
    );

    // The data plane still serves well-formed requests.
    let r = Client::new().post(&conf.url("web", "/p-plain"), "ok");
    assert_eq!((r.status, r.json()["body"].clone()), (200, json!("ok")));
}

// ---------------------------------------------------------------- aborted clients and drains

/// A unit proxying `/work` to `backend`, labelled `version`.
fn work_unit(version: &str, backend: &str) -> String {
    format!(
        r#"version = "{version}"

[[proxy]]
name = "work"
path = "/work"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["{backend}"]
timeout = "60s"
"#
    )
}

fn unit_bean(unit: &str) -> String {
    format!("esb:type=Unit,name={unit}")
}

/// The events still in the server's ring of `kind` about `unit`.
fn unit_events(mgmt: &Mgmt, kind: &str, unit: &str) -> Vec<Value> {
    let r = mgmt.monitor("GET", "/events?recent=1024").send();
    assert_eq!(r.status, 200, "GET /events?recent: {}", r.text());
    r.text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).expect("event data is JSON"))
        .filter(|e| e["type"] == kind && e["unit"] == unit)
        .collect()
}

fn reload(mgmt: &Mgmt, conf: &TempConf, unit: &str, text: &str) {
    std::fs::write(conf.unit_dir(unit).join("unit.toml"), text).expect("write unit");
    let v = mgmt.exec_ok(&unit_bean(unit), "reload", json!([]));
    assert_eq!(v["outcome"], "activated", "reload: {v}");
}

fn wait_drained(mgmt: &Mgmt, unit: &str, revision: u64) -> Value {
    let seen = RefCell::new(Value::Null);
    wait_for(
        &format!("revision {revision} of unit {unit} to be drained"),
        WAIT,
        || {
            *seen.borrow_mut() = mgmt.read(&unit_bean(unit), "Draining");
            let events = unit_events(mgmt, "revision_drained", unit);
            events.into_iter().find(|e| e["revision"] == revision)
        },
        || format!("Draining: {}", seen.borrow()),
    )
}

#[test]
fn aborted_client_does_not_pin_a_draining_revision() {
    let slow = Backend::fixed(200, "slow")
        .delay(Duration::from_secs(60))
        .start();
    let fast = Backend::fixed(200, "fast").start();
    let conf = TempConf::new()
        .http("web")
        .drain_timeout("60s")
        .unit("w", &work_unit("1", &slow.url()));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);

    let mut s = connect(conf.port("web"));
    s.write_all(b"GET /work HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    wait_until("the request to reach the slow backend", WAIT, || {
        slow.in_flight() == 1
    });
    reload(&mgmt, &conf, "w", &work_unit("2", &fast.url()));
    assert_eq!(
        mgmt.read(&unit_bean("w"), "Draining"),
        json!([{"revision": 1, "in_flight": 1}])
    );
    drop(s); // the client goes away while its request waits on the backend

    let drained = wait_drained(&mgmt, "w", 1);
    assert_eq!(
        drained["in_flight_left"],
        0,
        "the aborted request must not count as in flight: {drained}\n--- esb log ---\n{}",
        esb.log()
    );
    assert_eq!(mgmt.read(&unit_bean("w"), "Draining"), json!([]));
    assert_eq!(Client::new().get(&conf.url("web", "/work")).text(), "fast");
}

#[test]
fn drain_timeout_ends_leftover_requests_with_a_503_naming_the_drain() {
    let slow = Backend::fixed(200, "slow")
        .delay(Duration::from_secs(60))
        .start();
    let fast = Backend::fixed(200, "fast").start();
    let conf = TempConf::new()
        .http("web")
        .drain_timeout("1s")
        .unit("w", &work_unit("1", &slow.url()));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);

    let url = conf.url("web", "/work");
    let in_flight = std::thread::spawn(move || Client::new().get(&url));
    wait_until("the request to reach the slow backend", WAIT, || {
        slow.in_flight() == 1
    });
    reload(&mgmt, &conf, "w", &work_unit("2", &fast.url()));

    let r = in_flight.join().expect("request thread");
    assert_eq!(r.status, 503, "body: {}\n{}", r.text(), esb.log());
    let body = r.json();
    assert_eq!(
        body["error"], "revision 1 of unit \"w\" was drained after 1s; retry",
        "{body}"
    );
    assert_eq!(
        (body["unit"].clone(), body["revision"].clone()),
        (json!("w"), json!(1))
    );
    assert!(r.header("retry-after").is_some(), "503 without Retry-After");
    let drained = wait_drained(&mgmt, "w", 1);
    assert_eq!(
        (
            drained["in_flight_left"].clone(),
            drained["ended"].clone(),
            drained["reason"].clone()
        ),
        (json!(1), json!(1), json!("timeout")),
        "{drained}"
    );
    assert_eq!(mgmt.read(&unit_bean("w"), "Draining"), json!([]));
}

#[test]
fn drain_cancel_ends_a_stuck_drain_now() {
    let slow = Backend::fixed(200, "slow")
        .delay(Duration::from_secs(60))
        .start();
    let fast = Backend::fixed(200, "fast").start();
    let conf = TempConf::new()
        .http("web")
        .drain_timeout("120s")
        .unit("w", &work_unit("1", &slow.url()));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);

    let start = |n: u64| {
        let url = conf.url("web", "/work");
        let t = std::thread::spawn(move || Client::new().get(&url));
        wait_until("the request to reach the slow backend", WAIT, || {
            slow.in_flight() == n
        });
        t
    };
    // Revision 1 drains with one request stuck; the bean operation ends it.
    let first = start(1);
    reload(&mgmt, &conf, "w", &work_unit("2", &slow.url()));
    let second = start(2);
    reload(&mgmt, &conf, "w", &work_unit("3", &fast.url()));
    assert_eq!(
        mgmt.read(&unit_bean("w"), "Draining"),
        json!([{"revision": 1, "in_flight": 1}, {"revision": 2, "in_flight": 1}])
    );
    let v = mgmt.exec_ok(&unit_bean("w"), "cancelDrain", json!([1]));
    assert_eq!(v, json!([{"revision": 1, "ended": 1}]), "cancelDrain(1)");
    let r = first.join().expect("request thread");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.json()["error"],
        "revision 1 of unit \"w\" was drained by an operator; retry"
    );
    assert_eq!(
        mgmt.read(&unit_bean("w"), "Draining"),
        json!([{"revision": 2, "in_flight": 1}]),
        "only revision 1 was cancelled"
    );

    // uterm ends whatever is left of the unit's drains.
    let run = Uterm::connected(
        &format!("http://127.0.0.1:{}", conf.mgmt_port()),
        &mgmt.control,
    )
    .c("drain cancel w")
    .run();
    let run = run.expect(0);
    run.stdout_has(&["revision 2", "1 request"]);
    let r = second.join().expect("request thread");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(mgmt.read(&unit_bean("w"), "Draining"), json!([]));
    let drained = wait_drained(&mgmt, "w", 2);
    assert_eq!(
        (drained["ended"].clone(), drained["reason"].clone()),
        (json!(1), json!("cancelled")),
        "{drained}\n{}",
        esb.log()
    );
    assert_eq!(Client::new().get(&conf.url("web", "/work")).text(), "fast");
}

// ---------------------------------------------------------------- connection floods

fn transport_attr(mgmt: &Mgmt, transport: &str, attr: &str) -> Value {
    mgmt.read(&format!("esb:type=Transport,name={transport}"), attr)
}

/// Opens `n` idle connections (connect only, nothing sent). Connections over a cap wait in
/// the listen backlog, where the kernel completes their handshake; one that cannot connect
/// at all (backlog full, SYNs retried) fails the test.
fn flood(port: u16, n: usize) -> Vec<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    (0..n)
        .map(|i| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("flood connection {i} of {n} not even queued: {e}"))
        })
        .collect()
}

#[test]
fn connections_over_max_connections_wait_while_management_and_later_requests_are_served() {
    let conf = TempConf::new()
        .http("web")
        .transport_line("web", "max_connections = 50")
        .unit("a", &e2e::units::answer_unit("/hello", "hi", "1"));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    assert_eq!(transport_attr(&mgmt, "web", "MaxConnections"), 50);

    let idle = flood(conf.port("web"), 200);
    wait_until("50 flood connections to be accepted", WAIT, || {
        transport_attr(&mgmt, "web", "Connections") == 50
    });
    // The operator is not locked out, and the cap holds.
    assert_eq!(mgmt.health().status, 200);
    assert_eq!(transport_attr(&mgmt, "web", "Connections"), 50);
    drop(idle);

    let r = Client::new().get(&conf.url("web", "/hello"));
    assert_eq!((r.status, r.text()), (200, "hi".into()), "{}", esb.log());
    wait_until("the flood connections to be released", WAIT, || {
        transport_attr(&mgmt, "web", "Connections")
            .as_u64()
            .is_some_and(|n| n <= 1)
    });
    assert!(
        !esb.log().contains("accept failed"),
        "a capped transport must not hit accept errors:\n{}",
        esb.log()
    );
}

#[test]
fn management_stays_reachable_during_a_flood_at_a_low_open_file_limit() {
    let conf = TempConf::new()
        .http("web")
        .unit("a", &e2e::units::answer_unit("/hello", "hi", "1"));
    let esb = Esb::start_with(
        &conf,
        EsbOptions {
            nofile: Some(256),
            ..EsbOptions::default()
        },
    );
    let mgmt = Mgmt::of(&conf);

    // More connections than esb has file descriptors.
    let idle = flood(conf.port("web"), 300);
    // The operator still gets in, and sees the transport held at its cap.
    let cap = wait_for(
        "the transport to reach its cap",
        WAIT,
        || {
            let open = transport_attr(&mgmt, "web", "Connections");
            let cap = transport_attr(&mgmt, "web", "MaxConnections");
            (open == cap).then_some(cap)
        },
        || esb.log(),
    );
    let cap = cap.as_u64().expect("MaxConnections");
    assert!(
        cap < 256,
        "the default cap must leave a reserve below 256 fds: {cap}"
    );
    let r = mgmt.health();
    assert_eq!(r.status, 200, "management during the flood: {}", r.text());
    assert_eq!(mgmt.read("esb:type=Server", "State"), "Running");
    drop(idle);

    let r = Client::new().get(&conf.url("web", "/hello"));
    assert_eq!((r.status, r.text()), (200, "hi".into()), "{}", esb.log());
    let accept_errors = esb.log().matches("accept failed").count();
    assert_eq!(accept_errors, 0, "{}", esb.log());
}

// ---------------------------------------------------------------- slow bodies

#[test]
fn slow_request_bodies_are_answered_408_and_the_connection_closed() {
    let Matrix {
        echo,
        conf: _conf,
        esb,
        port,
    } = Matrix::start(Some("body_timeout = \"1s\""));

    // Two slow clients per route: one byte every 200 ms of a 100-byte body.
    let mut clients = Vec::new();
    for path in ["/echo", "/echo", "/p-plain", "/p-fault"] {
        let path = path.to_owned();
        clients.push(std::thread::spawn(move || {
            let mut s = connect(port);
            write!(
                s,
                "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
            )
            .expect("write head");
            let mut w = s.try_clone().expect("clone");
            let dripping = std::thread::spawn(move || {
                for _ in 0..100 {
                    if w.write_all(b"x").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            let r = read_response(&mut s);
            let closed = closed_by_peer(&mut s);
            drop(s);
            let _ = dripping.join();
            (path, r, closed)
        }));
    }
    for c in clients {
        let (path, r, closed) = c.join().expect("slow client");
        assert_eq!(
            r.status,
            408,
            "{path}: {} {}\n{}",
            r.head,
            r.text(),
            esb.log()
        );
        assert!(
            r.json()["error"].as_str().is_some_and(|e| e.contains("1s")),
            "{path}: the 408 names the timeout: {}",
            r.text()
        );
        assert!(
            closed,
            "{path}: the connection must be closed after the 408"
        );
    }
    assert_eq!(echo.hits(), 0, "no slow body may reach the backend");
}

// ---------------------------------------------------------------- request heads and connections

#[test]
fn ambiguous_and_oversized_heads_are_refused_before_any_backend_sees_them() {
    let Matrix {
        echo,
        conf,
        esb,
        port,
    } = Matrix::start(None);
    let big_value = "a".repeat(70 * 1024);
    let many: String = (0..101).map(|i| format!("x-h{i}: 1\r\n")).collect();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "Transfer-Encoding and Content-Length",
            "POST /p-plain HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".into(),
            400,
            "both Transfer-Encoding and Content-Length",
        ),
        (
            "differing Content-Lengths",
            "POST /p-plain HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc".into(),
            400,
            "Content-Length values differ",
        ),
        (
            "a transfer coding after chunked",
            "POST /p-plain HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n".into(),
            400,
            "the last transfer coding must be chunked",
        ),
        (
            "chunked in HTTP/1.0",
            "POST /p-plain HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(),
            400,
            "not allowed in an HTTP/1.0 request",
        ),
        (
            "a 70 KiB header",
            format!("GET /p-plain HTTP/1.1\r\nHost: t\r\nX-Big: {big_value}\r\n\r\n"),
            431,
            "request head larger than 64 KiB",
        ),
        (
            "101 header fields",
            format!("GET /p-plain HTTP/1.1\r\nHost: t\r\n{many}\r\n"),
            431,
            "more than 100 header fields",
        ),
        (
            "a space in a header name",
            "GET /p-plain HTTP/1.1\r\nHost: t\r\nBad Name: 1\r\n\r\n".into(),
            400,
            "malformed request head",
        ),
    ];
    let mut failures = Vec::new();
    for (what, request, status, message) in cases {
        let r = exchange(port, request.into_bytes());
        let closes = r.header("connection").as_deref() == Some("close");
        let error = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if r.status != status || !error.contains(message) || !closes {
            failures.push(format!(
                "{what}: got {} {:?} (connection: {:?}), want {status} naming {message:?}",
                r.status,
                r.text(),
                r.header("connection")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "refused heads:\n  {}\n--- esb log ---\n{}",
        failures.join("\n  "),
        esb.log()
    );
    assert_eq!(
        echo.hits(),
        0,
        "refused heads reached the backend: {:#?}",
        echo.seen()
    );
    let r = Client::new().post(&conf.url("web", "/p-plain"), "ok");
    assert_eq!((r.status, r.json()["body"].clone()), (200, json!("ok")));
}

#[test]
fn pipelined_and_http_1_0_requests_are_answered_in_order_on_one_connection() {
    let Matrix {
        echo: _echo,
        conf: _conf,
        esb,
        port,
    } = Matrix::start(None);

    // Four requests in one write: two GETs, a chunked POST, a HEAD, then a GET.
    let mut s = connect(port);
    s.write_all(
        b"GET /p-plain/one HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /p-in/two HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /p-all/three HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"v\":\r\n4\r\n\"3\"}\r\n0\r\n\r\n\
          HEAD /p-plain/four HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /p-plain/five HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .expect("write pipeline");
    // Let the answers pile up so that they arrive together, as a pipelining client sees
    // them: one buffer carries what was read past each.
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = Vec::new();
    for (i, path) in ["/p-plain/one", "/p-in/two", "/p-all/three"]
        .iter()
        .enumerate()
    {
        let r = read_response_in(&mut s, &mut buf, false);
        assert_eq!(
            r.status,
            200,
            "response {i}: {} {}\n{}",
            r.head,
            r.text(),
            esb.log()
        );
        assert_eq!(
            r.json()["path"],
            json!(path),
            "response {i} answers its own request"
        );
        if i == 2 {
            assert_eq!(
                r.json()["body"],
                json!(r#"{"v":"3"}"#),
                "the chunked body arrived whole"
            );
        }
    }
    // HEAD: a head without a body, and the connection goes on.
    let head = read_response_in(&mut s, &mut buf, true);
    assert_eq!(head.status, 200, "HEAD: {}", head.head);
    assert!(
        buf.is_empty() || buf.starts_with(b"HTTP/1.1 "),
        "a HEAD answer has no body: {:?}",
        String::from_utf8_lossy(&buf)
    );
    let r = read_response_in(&mut s, &mut buf, false);
    assert_eq!(
        r.json()["path"],
        json!("/p-plain/five"),
        "after HEAD: {}",
        r.text()
    );

    // HTTP/1.0 with keep-alive: answered with a length and kept open for the next request.
    let mut s = connect(port);
    for i in 0..2 {
        write!(
            s,
            "GET /p-plain/old-{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        )
        .expect("write");
        let r = read_response(&mut s);
        assert_eq!(r.status, 200, "HTTP/1.0 request {i}: {}", r.head);
        assert_eq!(
            r.header("connection").as_deref(),
            Some("keep-alive"),
            "{}",
            r.head
        );
        assert!(r.header("content-length").is_some(), "{}", r.head);
        assert_eq!(r.json()["path"], json!(format!("/p-plain/old-{i}")));
    }
    // HTTP/1.0 without keep-alive: the answer ends the connection.
    let mut s = connect(port);
    s.write_all(b"GET /p-plain/last HTTP/1.0\r\n\r\n")
        .expect("write");
    let r = read_response(&mut s);
    assert_eq!(
        (r.status, r.header("connection").as_deref()),
        (200, Some("close")),
        "{}",
        r.head
    );
    assert!(closed_by_peer(&mut s), "HTTP/1.0 without keep-alive closes");
}

#[test]
fn silent_idle_and_half_sent_heads_are_closed_at_header_timeout_while_busy_connections_live_on() {
    let Matrix {
        echo: _echo,
        conf: _conf,
        esb,
        port,
    } = Matrix::start(Some("header_timeout = \"1s\""));
    let started = std::time::Instant::now();
    // Never sends anything.
    let mut silent = connect(port);
    // Sends half a head.
    let mut half = connect(port);
    half.write_all(b"GET /p-plain HTTP/1.1\r\nHost: t\r\nX-Slow:")
        .expect("write half");
    // One exchange, then idle.
    let mut idle = connect(port);
    idle.write_all(b"GET /p-plain HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    assert_eq!(read_response(&mut idle).status, 200);
    // A request every 300 ms for 2.4 s: longer than the timeout, never idle that long.
    let busy = std::thread::spawn(move || {
        let mut s = connect(port);
        for i in 0..8 {
            write!(s, "GET /p-plain/{i} HTTP/1.1\r\nHost: t\r\n\r\n").expect("write busy");
            let r = read_response(&mut s);
            assert_eq!(r.status, 200, "busy request {i}: {}", r.head);
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    for (what, s) in [
        ("silent", &mut silent),
        ("half a head", &mut half),
        ("idle", &mut idle),
    ] {
        assert!(closed_by_peer(s), "{what}: not closed\n{}", esb.log());
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{what}: closed before header_timeout, after {:?}",
            started.elapsed()
        );
    }
    busy.join()
        .expect("a connection sending a request every 300 ms stays open");
}
