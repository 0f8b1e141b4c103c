//! Client connections carried across a binary upgrade. The new process makes a pair of
//! `SOCK_SEQPACKET` sockets, keeps one end and sends the other to the old process with
//! its `ready` ([`crate::upgrade`]). From then on the old process passes every plain-TCP
//! client connection of its transports, the moment it has nothing of the client's
//! unanswered or buffered (after its current exchange, or at once when idle), as one
//! message: the transport's configured bind and the socket (SCM_RIGHTS). It closes its own
//! descriptor without a shutdown, so the client notices nothing: what it sends next waits
//! in the socket's buffer and the new process reads it. No reconnect, no lost request.
//!
//! The idle backend connections of the plain-HTTP pools go the same way (those idle when
//! the hand-off starts, before the first client connection, and those that went idle while
//! the old process finished its last exchanges, before it exits), each with the key of its
//! client and its address, many in one message: the new process's requests find them in
//! its pools, so an upgrade opens few backend connections (those its first requests need
//! before the old process's last exchanges end) and closes none.
//!
//! What cannot be passed is closed after an exchange as before (`Connection: close`,
//! spread over the handover window): TLS connections (their session lives in the old
//! process's memory), and every connection once a send fails (an old binary on the other
//! side, the new process gone, its queue full for longer than [`SEND_WITHIN`]).

use crate::client::{ClientKey, Clients};
use crate::server::Server;
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

use nix::sys::socket::{self as sock, ControlMessage, ControlMessageOwned, MsgFlags};

/// How long a connection waits for room in the queue to the new process before it is
/// closed after its next exchange instead.
pub const SEND_WITHIN: Duration = Duration::from_secs(1);

/// The message that comes with each connection (untagged: a client connection's is what
/// the first binaries that passed connections sent).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Passed {
    /// A client connection.
    Client {
        /// The configured bind of the transport that served the connection (the key
        /// listeners are handed over by, too).
        listener: SocketAddr,
        /// An idle backend connection that comes along (its descriptor second).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backend: Option<Backend>,
    },
    /// Idle connections to backends, one per descriptor that comes with the message.
    Backends { backends: Vec<Backend> },
}

/// An idle backend connection: the client whose pool it was in, and the pool's address.
#[derive(Debug, Serialize, Deserialize)]
struct Backend {
    client: ClientKey,
    /// `host:port`.
    backend: String,
}

/// Most backend connections in one message (SCM_RIGHTS takes up to 253 descriptors).
const BACKENDS_PER_MESSAGE: usize = 64;

/// Makes the pair: the end the new process keeps, and the end it sends to the old one.
pub fn pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    sock::socketpair(
        sock::AddressFamily::Unix,
        sock::SockType::SeqPacket,
        None,
        sock::SockFlag::SOCK_CLOEXEC | sock::SockFlag::SOCK_NONBLOCK,
    )
    .map_err(std::io::Error::from)
}

/// The old process's end: where its connections go.
pub struct Successor {
    sock: OwnedFd,
    /// The new process takes idle backend connections too (an older binary does not).
    backends: bool,
    /// ... and one with each client connection ([`Self::pass`]; a binary before that
    /// takes them only in messages of their own).
    paired: bool,
    /// Backend connections passed so far.
    backends_passed: std::sync::atomic::AtomicU64,
}

impl Successor {
    pub fn new(sock: OwnedFd, backends: bool, paired: bool) -> Successor {
        Successor {
            sock,
            backends,
            paired: backends && paired,
            backends_passed: Default::default(),
        }
    }

    /// Backend connections passed so far.
    pub fn backends_passed(&self) -> u64 {
        self.backends_passed.load(Relaxed)
    }

    /// Whether the idle backend connections go along with the client connections (then
    /// only what is left after the drain goes in messages of their own).
    pub fn paired(&self) -> bool {
        self.paired
    }

    /// Passes the client connection `fd` of the transport bound as `listener`, with one
    /// idle backend connection of `clients` where the new process takes them that way —
    /// the one that client's last exchange most likely put back: so the old process keeps
    /// as many as the clients it still serves need, and the new one gets them as its
    /// clients come. True once the new process has the client connection (the caller then
    /// drops its descriptor without a shutdown).
    pub async fn pass(&self, listener: SocketAddr, fd: BorrowedFd<'_>, clients: &Clients) -> bool {
        // Only connections with a TCP socket are taken ([`Clients::take_one_idle`]).
        let along = self.paired.then(|| clients.take_one_idle()).flatten();
        let backend = along.as_ref().map(|(client, backend, _)| Backend {
            client: client.clone(),
            backend: backend.clone(),
        });
        let fds: Vec<BorrowedFd<'_>> = std::iter::once(fd)
            .chain(along.as_ref().and_then(|(_, _, conn)| conn.tcp_fd()))
            .collect();
        let sent = self.send(&Passed::Client { listener, backend }, &fds).await;
        if sent && along.is_some() {
            self.backends_passed.fetch_add(1, Relaxed);
        }
        // The backend connection's descriptor closes here (`along` dropped): the new
        // process holds it, or it was not sent.
        sent
    }

    /// Passes every idle backend connection of `clients`' plain-HTTP pools, a few messages
    /// for all of them (each one's descriptor is closed here once sent; those that cannot
    /// be sent close); [`Self::backends_passed`] counts them.
    pub async fn pass_backends(&self, clients: &Clients) {
        if !self.backends {
            return;
        }
        let idle = clients.take_idle();
        let mut passed = 0;
        for chunk in idle.chunks(BACKENDS_PER_MESSAGE) {
            let (backends, fds): (Vec<Backend>, Vec<BorrowedFd<'_>>) = chunk
                .iter()
                .filter_map(|(client, backend, conn)| {
                    let b = Backend {
                        client: client.clone(),
                        backend: backend.clone(),
                    };
                    conn.tcp_fd().map(|fd| (b, fd))
                })
                .unzip();
            let n = fds.len() as u64;
            if self.send(&Passed::Backends { backends }, &fds).await {
                passed += n;
            }
        }
        self.backends_passed.fetch_add(passed, Relaxed);
    }

    /// Sends `message` with `fds`, waiting up to [`SEND_WITHIN`] for room in the queue.
    async fn send(&self, message: &Passed, fds: &[BorrowedFd<'_>]) -> bool {
        // A CA file's path that is not UTF-8 has no JSON: those connections close.
        let Ok(payload) = serde_json::to_vec(message) else {
            return false;
        };
        let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let deadline = tokio::time::Instant::now() + SEND_WITHIN;
        loop {
            let sent = sock::sendmsg::<()>(
                self.sock.as_raw_fd(),
                &[IoSlice::new(&payload)],
                &[ControlMessage::ScmRights(&raw)],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                None,
            );
            match sent {
                Ok(_) => return true,
                Err(nix::errno::Errno::EINTR) => continue,
                // The new process's queue is full: it empties it at once.
                Err(nix::errno::Errno::EAGAIN) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => {
                    tracing::debug!("cannot pass connections to the new process: {e}");
                    return false;
                }
            }
        }
    }
}

/// In the new process: serves every connection the old one passes on `sock`, on the
/// transport with the same configured bind, until the old process closes its end.
pub fn adopt(sock: OwnedFd, server: Arc<Server>) {
    tokio::spawn(async move {
        // SAFETY: the descriptor is owned by the AsyncFd, open for as long as it lives.
        let sock = match unsafe { AsyncFd::register(sock) } {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("binary upgrade: cannot take over client connections: {e}");
                return;
            }
        };
        let (mut adopted, mut backends) = (0u64, 0u64);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut ready = match sock.readable().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("binary upgrade: taking over client connections stopped: {e}");
                    break;
                }
            };
            let (message, fds) = match receive(sock.get_ref().as_raw_fd(), &mut buf) {
                Ok(Some(x)) => x,
                // The old process closed its end: every connection it had to pass is here.
                Ok(None) => break,
                Err(nix::errno::Errno::EAGAIN) => {
                    ready.clear_ready();
                    continue;
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("binary upgrade: taking over client connections stopped: {e}");
                    break;
                }
            };
            let mut streams = fds.into_iter().map(std::net::TcpStream::from);
            match message {
                Some(Passed::Backends { backends: list }) => {
                    for (b, stream) in list.into_iter().zip(streams) {
                        backends += u64::from(adopt_backend(&server, b, stream));
                    }
                }
                Some(Passed::Client { listener, backend }) => {
                    let Some(stream) = streams.next() else { continue };
                    // The backend connection first: the client's next request finds it.
                    if let (Some(b), Some(bs)) = (backend, streams.next()) {
                        backends += u64::from(adopt_backend(&server, b, bs));
                    }
                    if adopt_client(&server, listener, stream).await {
                        adopted += 1;
                    }
                }
                None => tracing::warn!(
                    "binary upgrade: the old process passed connections with a message this binary does not know; closed"
                ),
            }
        }
        tracing::info!(
            adopted,
            backends,
            "binary upgrade: client and idle backend connections taken over from the old process"
        );
    });
}

/// Makes `stream` an idle connection of the pool `b` names; false when this configuration
/// has no such client (closed: the backend sees an idle connection end).
fn adopt_backend(server: &Arc<Server>, b: Backend, stream: std::net::TcpStream) -> bool {
    let Backend { client, backend } = b;
    match server.engine.clients().adopt_idle(client, &backend, stream) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(
                %backend,
                "binary upgrade: a backend connection the old process passed is closed: {e}"
            );
            false
        }
    }
}

/// Serves a client connection the old process passed on the transport bound as `listener`.
async fn adopt_client(
    server: &Arc<Server>,
    listener: SocketAddr,
    stream: std::net::TcpStream,
) -> bool {
    let Some(t) = server.transports.iter().find(|t| t.configured == listener) else {
        // No transport of this configuration serves that bind: the client sees its
        // connection closed between two exchanges.
        tracing::warn!(
            %listener,
            "binary upgrade: a connection was passed for a transport this configuration does not have; closed"
        );
        return false;
    };
    if let Err(e) = t
        .clone()
        .adopt(stream, server.engine.clone(), &server.drain)
        .await
    {
        tracing::warn!(transport = %t.name, "binary upgrade: cannot serve a connection the old process passed: {e}");
        return false;
    }
    true
}

/// One message: what it says (if it parses) and the sockets that came with it; `None` at
/// the end.
type Received = Option<(Option<Passed>, Vec<OwnedFd>)>;

/// `buf` takes the message (64 KiB: a message of [`BACKENDS_PER_MESSAGE`] backends fits).
fn receive(fd: RawFd, buf: &mut [u8]) -> Result<Received, nix::errno::Errno> {
    let mut cmsg = nix::cmsg_space!([RawFd; BACKENDS_PER_MESSAGE]);
    let (n, fds) = recv_with_fds(fd, buf, &mut cmsg, MsgFlags::MSG_DONTWAIT)?;
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some((serde_json::from_slice(&buf[..n]).ok(), fds)))
}

/// One `recvmsg` on the Unix socket `fd` into `buf`: the bytes read and every descriptor
/// that came along (as many as `cmsg`, from `nix::cmsg_space!`, has room for), owned and
/// close-on-exec — as every descriptor of this process: else each would leak into the
/// process the next upgrade starts.
pub(crate) fn recv_with_fds(
    fd: RawFd,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
    flags: MsgFlags,
) -> nix::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = sock::recvmsg::<()>(fd, &mut iov, Some(cmsg), flags | MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: received descriptors are ours to own from here on.
            fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
        }
    }
    Ok((msg.bytes, fds))
}
