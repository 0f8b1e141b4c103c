//! Listening sockets that outlive a server generation. A warm restart hands the sockets of
//! every bind that did not change to the next generation — the same socket, never closed,
//! so a client connecting meanwhile waits in the backlog instead of being refused — and a
//! binary upgrade hands all of them to the new process over a Unix socket (SCM_RIGHTS).
//! Sockets are keyed by the bind address the root config names.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

#[derive(Default)]
pub struct ListenerPool {
    sockets: BTreeMap<SocketAddr, std::net::TcpListener>,
}

impl ListenerPool {
    /// The socket bound to `addr`: the inherited one if there is one, else a new one.
    pub fn take_or_bind(&mut self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
        match self.sockets.remove(&addr) {
            Some(l) => {
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)
            }
            None => crate::accept::listen(addr),
        }
    }

    /// Binds `addr` now unless the pool holds it already (a restart binds what is new
    /// before anything changes, so a taken port rejects the restart).
    pub fn ensure(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        if let std::collections::btree_map::Entry::Vacant(e) = self.sockets.entry(addr) {
            e.insert(crate::accept::listen(addr)?.into_std()?);
        }
        Ok(())
    }

    /// Keeps a running listener for the next generation.
    pub fn put(&mut self, addr: SocketAddr, l: tokio::net::TcpListener) {
        if let Ok(l) = l.into_std() {
            self.sockets.insert(addr, l);
        }
    }

    pub fn contains(&self, addr: &SocketAddr) -> bool {
        self.sockets.contains_key(addr)
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.sockets.keys().copied().collect()
    }

    /// Duplicates of every socket, for another process (the pool keeps its own).
    pub fn dup_fds(&self) -> std::io::Result<Vec<(SocketAddr, OwnedFd)>> {
        self.sockets
            .iter()
            .map(|(a, l)| Ok((*a, l.try_clone()?.into())))
            .collect()
    }

    /// A pool of sockets received from another process.
    pub fn from_fds(fds: Vec<(SocketAddr, OwnedFd)>) -> ListenerPool {
        let sockets = fds
            .into_iter()
            .map(|(a, fd)| (a, std::net::TcpListener::from(fd)))
            .collect();
        ListenerPool { sockets }
    }

    /// Closes every socket the pool still holds (binds that no generation took).
    pub fn close_rest(&mut self) {
        for (addr, _) in std::mem::take(&mut self.sockets) {
            tracing::info!(%addr, "listener closed: no transport binds it any more");
        }
    }
}
