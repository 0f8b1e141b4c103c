//! Client connections carried across a binary upgrade. The new process makes a pair of
//! `SOCK_SEQPACKET` sockets, keeps one end and sends the other to the old process with
//! its `ready` ([`crate::upgrade`]). From then on the old process passes every plain-TCP
//! client connection of its transports, the moment it has nothing of the client's
//! unanswered or buffered (after its current exchange, or at once when idle), as one
//! message: the transport's configured bind and the socket (SCM_RIGHTS). It closes its own
//! descriptor without a shutdown, so the client notices nothing: what it sends next waits
//! in the socket's buffer and the new process reads it. No reconnect, no lost request.
//!
//! What cannot be passed is closed after an exchange as before (`Connection: close`,
//! spread over the handover window): TLS connections (their session lives in the old
//! process's memory), and every connection once a send fails (an old binary on the other
//! side, the new process gone, its queue full for longer than [`SEND_WITHIN`]).

use crate::server::Server;
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

use nix::sys::socket::{self as sock, ControlMessage, ControlMessageOwned, MsgFlags};

/// How long a connection waits for room in the queue to the new process before it is
/// closed after its next exchange instead.
pub const SEND_WITHIN: Duration = Duration::from_secs(1);

/// The message that comes with each connection.
#[derive(Debug, Serialize, Deserialize)]
struct Passed {
    /// The configured bind of the transport that served the connection (the key listeners
    /// are handed over by, too).
    listener: SocketAddr,
}

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
}

impl Successor {
    pub fn new(sock: OwnedFd) -> Successor {
        Successor { sock }
    }

    /// Passes the client connection `fd` of the transport bound as `listener`; true once
    /// the new process has it (the caller then drops its descriptor without a shutdown).
    pub async fn pass(&self, listener: SocketAddr, fd: BorrowedFd<'_>) -> bool {
        let payload = serde_json::to_vec(&Passed { listener }).expect("json");
        let fds = [fd.as_raw_fd()];
        let deadline = tokio::time::Instant::now() + SEND_WITHIN;
        loop {
            let sent = sock::sendmsg::<()>(
                self.sock.as_raw_fd(),
                &[IoSlice::new(&payload)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                None,
            );
            match sent {
                Ok(_) => return true,
                Err(nix::errno::Errno::EINTR) => continue,
                // The new process's queue is full (a few messages): it empties it at once.
                Err(nix::errno::Errno::EAGAIN) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => {
                    tracing::debug!("cannot pass a connection to the new process: {e}");
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
        let mut adopted = 0u64;
        loop {
            let mut ready = match sock.readable().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("binary upgrade: taking over client connections stopped: {e}");
                    break;
                }
            };
            let (listener, fd) = match receive(sock.get_ref().as_raw_fd()) {
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
            let Some(fd) = fd else { continue };
            let transport =
                listener.and_then(|l| server.transports.iter().find(|t| t.configured == l));
            let Some(t) = transport else {
                // No transport of this configuration serves that bind: the client sees its
                // connection closed between two exchanges.
                tracing::warn!(
                    ?listener,
                    "binary upgrade: a connection was passed for a transport this configuration does not have; closed"
                );
                continue;
            };
            let stream = std::net::TcpStream::from(fd);
            if let Err(e) = t
                .clone()
                .adopt(stream, server.engine.clone(), &server.drain)
                .await
            {
                tracing::warn!(transport = %t.name, "binary upgrade: cannot serve a connection the old process passed: {e}");
                continue;
            }
            adopted += 1;
        }
        tracing::info!(
            adopted,
            "binary upgrade: client connections taken over from the old process"
        );
    });
}

/// One message: the bind it names (if it parses) and the socket (if one came; any other
/// is closed); `None` at the end.
type Received = Option<(Option<SocketAddr>, Option<OwnedFd>)>;

fn receive(fd: RawFd) -> Result<Received, nix::errno::Errno> {
    let mut buf = [0u8; 512];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let (n, fds) = recv_with_fds(fd, &mut buf, &mut cmsg, MsgFlags::MSG_DONTWAIT)?;
    let socket = fds.into_iter().next();
    if n == 0 && socket.is_none() {
        return Ok(None);
    }
    let listener = serde_json::from_slice::<Passed>(&buf[..n])
        .ok()
        .map(|p| p.listener);
    Ok(Some((listener, socket)))
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
