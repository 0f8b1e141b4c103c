//! `upgrade-timeline ADDR PATH CONNS SECONDS OUT`: CONNS keep-alive connections, each sending
//! `GET PATH` again as soon as the previous answer has arrived, for SECONDS; a connection the
//! server closes (`Connection: close`, or closed) is opened again. OUT gets one line per
//! answered request: microseconds from the start to when it was sent, its latency in
//! microseconds, and 1 if it was its connection's first request (else 0). One thread, so that
//! it can share one core with nothing else (scripts/bench-upgrade pins it). OUT.start gets
//! the wall-clock time of the start (µs since the Unix epoch), to lay the records beside a
//! log or a `perf record -k CLOCK_REALTIME` trace.

use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answered request: sent at (µs from the start), latency (µs), first on its connection.
type Record = (u64, u64, bool);

/// Reads one response off `s` (into `buf`); whether the server said it closes.
async fn response(s: &mut TcpStream, buf: &mut [u8]) -> Option<bool> {
    let mut have = 0;
    let (head_end, close, length) = loop {
        match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => have += n,
        }
        if let Some(i) = memchr::memmem::find(&buf[..have], b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let close = head.contains("\r\nconnection: close");
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, close, length);
        }
        if have == buf.len() {
            return None; // a head larger than the buffer: not what this load expects
        }
    };
    let mut left = (head_end + length).saturating_sub(have);
    let room = buf.len();
    while left > 0 {
        match s.read(&mut buf[..left.min(room)]).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => left -= n,
        }
    }
    Some(close)
}

async fn connection(addr: String, path: String, start: Instant, stop: Instant) -> Vec<Record> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes();
    let mut records = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < stop {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let _ = s.set_nodelay(true);
        let mut first = true;
        loop {
            let sent = Instant::now();
            if sent >= stop || s.write_all(&request).await.is_err() {
                break;
            }
            let Some(close) = response(&mut s, &mut buf).await else {
                break;
            };
            let at = (sent - start).as_micros() as u64;
            records.push((at, sent.elapsed().as_micros() as u64, first));
            first = false;
            if close {
                break;
            }
        }
    }
    records
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, conns, seconds, out] = &args[..] else {
        eprintln!("usage: upgrade-timeline ADDR PATH CONNS SECONDS OUT");
        std::process::exit(2);
    };
    let conns: usize = conns.parse().expect("CONNS");
    let seconds: f64 = seconds.parse().expect("SECONDS");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (addr, path, anchor) = (addr.clone(), path.clone(), format!("{out}.start"));
    let records = rt.block_on(async move {
        let start = Instant::now();
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_micros();
        std::fs::write(anchor, format!("{epoch}\n")).expect("OUT.start");
        let stop = start + Duration::from_secs_f64(seconds);
        let tasks: Vec<_> = (0..conns)
            .map(|_| tokio::spawn(connection(addr.clone(), path.clone(), start, stop)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("connection task"));
        }
        all
    });
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).expect("OUT"));
    for (at, latency, first) in records {
        writeln!(f, "{at} {latency} {}", first as u8).expect("write");
    }
}
