//! A real etcd for end-to-end tests: Debian's `etcd-server` (see `scripts/ci-deps`) started
//! as a child process on free loopback ports, its data in a temporary directory, with fast
//! election flags so it serves within a second. Stopped by PID on [`Etcd::kill`], on drop
//! and at exit; [`Etcd::boot`] starts it again on the same ports and data. [`Etcd`] also
//! offers a small blocking client (etcd-client on its own runtime) for what tests do to the
//! store behind the nodes' backs: compact it, wipe a prefix, read a key.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = "/usr/bin/etcd";

static PIDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    if let Ok(pids) = PIDS.lock() {
        for pid in pids.iter() {
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
    }
}

/// Whether etcd is installed here.
pub fn available() -> bool {
    Path::new(BIN).exists()
}

pub struct Etcd {
    pub client_port: u16,
    peer_port: u16,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
    rt: tokio::runtime::Runtime,
    _tmp: tempfile::TempDir,
}

impl Etcd {
    /// A store of one's own, serving when this returns.
    pub fn start() -> Etcd {
        static AT_EXIT: std::sync::Once = std::sync::Once::new();
        AT_EXIT.call_once(|| unsafe {
            libc::atexit(stop_all);
        });
        let tmp = tempfile::Builder::new()
            .prefix("esb-etcd-")
            .tempdir()
            .expect("etcd temp dir");
        let e = Etcd {
            client_port: crate::free_port(),
            peer_port: crate::free_port(),
            dir: tmp.path().to_path_buf(),
            child: Mutex::new(None),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            _tmp: tmp,
        };
        e.boot();
        e
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// A `[cluster]` table for a node of cluster `name` on this store, with a short lease.
    pub fn cluster_table(&self, name: &str, node: &str, lease_s: u64) -> String {
        format!(
            "[cluster]\nname = \"{name}\"\nstore = [\"{}\"]\nnode = \"{node}\"\nlease = \"{lease_s}s\"\ntimeout = \"3s\"",
            self.endpoint()
        )
    }

    /// Starts the process (again, after [`Etcd::kill`]: same ports, same data) and waits
    /// until it answers.
    pub fn boot(&self) {
        assert!(
            available(),
            "etcd is not installed: run scripts/ci-deps (apt-get install etcd-server)"
        );
        let log = std::fs::File::create(self.dir.join("etcd.log")).expect("etcd log");
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(BIN)
            .args(["--name", "e2e", "--data-dir"])
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("e2e={peer}")])
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .args(["--log-level", "warn", "--logger", "zap"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        PIDS.lock().expect("pids").push(child.id() as i32);
        *self.child.lock().expect("child") = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.try_get("/").is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd did not start within 20 s:\n{}",
                std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process (SIGKILL by PID) and waits for it.
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().expect("child").take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }

    fn client(&self) -> Result<etcd_client::Client, String> {
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(500))
            .with_timeout(Duration::from_secs(2));
        self.rt
            .block_on(etcd_client::Client::connect([self.endpoint()], Some(opts)))
            .map_err(|e| e.to_string())
    }

    fn try_get(&self, key: &str) -> Result<Option<String>, String> {
        let mut c = self.client()?;
        let resp = self
            .rt
            .block_on(c.get(key, None))
            .map_err(|e| e.to_string())?;
        Ok(resp
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        self.try_get(key).expect("etcd get")
    }

    /// Keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut c = self.client().expect("etcd client");
        let resp = self
            .rt
            .block_on(
                c.get(
                    prefix,
                    Some(
                        etcd_client::GetOptions::new()
                            .with_prefix()
                            .with_keys_only(),
                    ),
                ),
            )
            .expect("etcd get");
        resp.kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect()
    }

    /// Writes a value directly (behind the nodes' backs).
    pub fn put(&self, key: &str, value: &str) {
        let mut c = self.client().expect("etcd client");
        self.rt.block_on(c.put(key, value, None)).expect("etcd put");
    }

    /// Deletes everything under `prefix` (a wiped prefix).
    pub fn wipe(&self, prefix: &str) {
        let mut c = self.client().expect("etcd client");
        self.rt
            .block_on(c.delete(
                prefix,
                Some(etcd_client::DeleteOptions::new().with_prefix()),
            ))
            .expect("etcd delete");
    }

    /// Compacts the store's history up to its current revision; returns that revision.
    pub fn compact(&self) -> i64 {
        let mut c = self.client().expect("etcd client");
        let rev = self
            .rt
            .block_on(c.get("/", None))
            .expect("etcd get")
            .header()
            .map(|h| h.revision())
            .unwrap_or(0);
        self.rt
            .block_on(c.compact(
                rev,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            ))
            .expect("etcd compact");
        rev
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
