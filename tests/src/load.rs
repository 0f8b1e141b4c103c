//! Keep-alive load: [`Load`] runs N client threads, each on one persistent HTTP/1.1
//! connection ([`HttpConn`], plain `std::net`, no runtime), hammering a list of paths and
//! counting status codes, socket errors and response classes (which revision answered).
//! A client reconnects only when the server closes the connection or a socket error
//! happens; both are counted, so a test can demand that neither occurred.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::http1::RawResponse;
use crate::http1::{read_response, Framing};

/// A persistent HTTP/1.1 connection (requests are sent one at a time).
pub struct HttpConn {
    host: String,
    reader: BufReader<TcpStream>,
    /// Set once the server said `Connection: close` or the body was close-delimited.
    closed: bool,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<HttpConn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(HttpConn {
            host: addr.to_string(),
            reader: BufReader::new(stream),
            closed: false,
        })
    }

    /// Whether the connection can carry another request.
    pub fn reusable(&self) -> bool {
        !self.closed
    }

    /// Sends one request and reads the whole response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<RawResponse> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.host);
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        let (resp, framing) = read_response(&mut self.reader, method == "HEAD")?;
        if resp.closes() || framing == Framing::Closed {
            self.closed = true;
        }
        Ok(resp)
    }
}

/// Names the revision (or anything else) that produced a response; counted per name.
pub type Classifier = Arc<dyn Fn(&str, &RawResponse) -> String + Send + Sync>;

/// What the load saw, summed over every client.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Complete responses.
    pub responses: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Responses by class (see [`Classifier`]).
    pub classes: BTreeMap<String, u64>,
    /// Connect, write, read or parse failures.
    pub socket_errors: u64,
    /// Connections opened (one per client unless the server closed some).
    pub connections: u64,
    /// The first few socket errors and non-2xx responses, for failure messages.
    pub samples: Vec<String>,
}

impl LoadReport {
    pub fn non_2xx(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    fn merge(&mut self, other: LoadReport) {
        self.responses += other.responses;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.classes {
            *self.classes.entry(k).or_default() += v;
        }
        self.socket_errors += other.socket_errors;
        self.connections += other.connections;
        for s in other.samples {
            if self.samples.len() < 20 {
                self.samples.push(s);
            }
        }
    }
}

/// Client threads hammering `paths` on `addr`, each over its own keep-alive connection.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<JoinHandle<LoadReport>>,
}

impl Load {
    /// Starts `clients` threads; client `i` cycles through `paths` starting at `i`.
    pub fn start(
        clients: usize,
        addr: SocketAddr,
        paths: &[&str],
        classify: impl Fn(&str, &RawResponse) -> String + Send + Sync + 'static,
    ) -> Load {
        assert!(!paths.is_empty(), "Load needs at least one path");
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let classify: Classifier = Arc::new(classify);
        let paths: Arc<Vec<String>> = Arc::new(paths.iter().map(|p| p.to_string()).collect());
        let threads = (0..clients)
            .map(|i| {
                let (stop, done, classify, paths) =
                    (stop.clone(), done.clone(), classify.clone(), paths.clone());
                std::thread::Builder::new()
                    .name(format!("load-{i}"))
                    .spawn(move || client(i, addr, &paths, &stop, &done, &classify))
                    .expect("spawn load client")
            })
            .collect();
        Load {
            stop,
            done,
            threads,
        }
    }

    /// Responses completed so far (all clients).
    pub fn completed(&self) -> u64 {
        self.done.load(SeqCst)
    }

    /// Waits until at least `n` more responses than now have completed.
    pub fn wait_more(&self, n: u64, limit: Duration) {
        let target = self.completed() + n;
        crate::wait_until(&format!("{n} more responses from the load"), limit, || {
            self.completed() >= target
        });
    }

    /// Stops every client (each finishes its current request) and sums what they saw.
    pub fn stop(self) -> LoadReport {
        self.stop.store(true, SeqCst);
        let mut total = LoadReport::default();
        for t in self.threads {
            total.merge(t.join().expect("load client panicked"));
        }
        total
    }
}

fn client(
    index: usize,
    addr: SocketAddr,
    paths: &[String],
    stop: &AtomicBool,
    done: &AtomicU64,
    classify: &Classifier,
) -> LoadReport {
    let mut r = LoadReport::default();
    let mut conn: Option<HttpConn> = None;
    let mut n = index;
    let sample = |r: &mut LoadReport, s: String| {
        if r.samples.len() < 20 {
            r.samples.push(s);
        }
    };
    while !stop.load(SeqCst) {
        if conn.as_ref().is_none_or(|c| !c.reusable()) {
            match HttpConn::connect(addr, Duration::from_secs(10)) {
                Ok(c) => {
                    r.connections += 1;
                    conn = Some(c);
                }
                Err(e) => {
                    r.socket_errors += 1;
                    sample(&mut r, format!("client {index}: connect {addr}: {e}"));
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            }
        }
        let path = &paths[n % paths.len()];
        n += 1;
        let c = conn.as_mut().expect("connected");
        match c.request("GET", path, &[], b"") {
            Ok(resp) => {
                r.responses += 1;
                *r.statuses.entry(resp.status).or_default() += 1;
                if !(200..300).contains(&resp.status) {
                    sample(
                        &mut r,
                        format!(
                            "client {index}: GET {path}: {} {}",
                            resp.status,
                            resp.text()
                        ),
                    );
                }
                *r.classes.entry(classify(path, &resp)).or_default() += 1;
                done.fetch_add(1, SeqCst);
            }
            Err(e) => {
                r.socket_errors += 1;
                sample(&mut r, format!("client {index}: GET {path}: {e}"));
                conn = None;
            }
        }
    }
    r
}
