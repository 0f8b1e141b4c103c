//! A real RabbitMQ broker for end-to-end tests: `rabbitmq-server` (Debian's package, see
//! `scripts/ci-deps`) started as a child process on free loopback ports, with its data and
//! logs in a temporary directory and its Erlang cookie in a temporary HOME. One broker is
//! shared per test binary ([`Rabbit::shared`], stopped by PID at exit); a test that kills
//! the broker starts its own ([`Rabbit::start`]). [`Amqp`] is a small blocking client
//! (lapin on its own tokio runtime) to publish, count and read messages.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where Debian installs the server script that runs as the calling user (the
/// `/usr/sbin/rabbitmq-server` wrapper switches to the `rabbitmq` user when run as root).
const SERVER_BINS: &[&str] = &[
    "/usr/lib/rabbitmq/bin/rabbitmq-server",
    "/usr/sbin/rabbitmq-server",
];

pub struct Rabbit {
    pub port: u16,
    dist_port: u16,
    node: String,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
    _tmp: Option<tempfile::TempDir>,
}

static SHARED: OnceLock<Rabbit> = OnceLock::new();
static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Taken by every test of a binary that uses brokers: they run side by side, except one
/// that holds [`alone`].
pub fn alongside() -> std::sync::RwLockReadGuard<'static, ()> {
    ALONE.read().unwrap_or_else(|e| e.into_inner())
}

/// Taken by a test that kills a broker mid-flow: it runs while no other test of its
/// binary does, so the flow it measures is not starved by theirs. (A durable queue found
/// empty after a kill -9 under load was the queue's own declaration lost, see
/// [`Rabbit::sync_metadata`].)
pub fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    ALONE.write().unwrap_or_else(|e| e.into_inner())
}
static PIDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// At exit: the shared broker's processes (the server script leads its process group) are
/// killed and its directory removed.
extern "C" fn stop_brokers() {
    if let Ok(pids) = PIDS.lock() {
        for pid in pids.iter() {
            unsafe {
                libc::kill(-*pid, libc::SIGKILL);
                libc::kill(*pid, libc::SIGKILL);
            }
        }
    }
    if let Ok(dirs) = DIRS.lock() {
        for d in dirs.iter() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn server_bin() -> Option<&'static str> {
    SERVER_BINS.iter().copied().find(|p| Path::new(p).exists())
}

/// Whether a broker can be started here at all (the package is installed).
pub fn available() -> bool {
    server_bin().is_some()
}

impl Rabbit {
    /// The broker shared by every test of this binary.
    pub fn shared() -> &'static Rabbit {
        SHARED.get_or_init(|| {
            unsafe {
                libc::atexit(stop_brokers);
            }
            let r = Rabbit::start();
            DIRS.lock().expect("dirs").push(r.dir.clone());
            r
        })
    }

    /// A broker of one's own (stopped on drop).
    pub fn start() -> Rabbit {
        let tmp = tempfile::Builder::new()
            .prefix("esb-rabbit-")
            .tempdir()
            .expect("broker temp dir");
        let r = Rabbit {
            port: crate::free_port(),
            dist_port: crate::free_port(),
            node: format!(
                "rabbit-{}@localhost",
                std::process::id() as u64 * 1000 + rand_suffix()
            ),
            dir: tmp.path().to_path_buf(),
            child: Mutex::new(None),
            _tmp: Some(tmp),
        };
        for d in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(r.dir.join(d)).expect("broker dirs");
        }
        let cookie = r.dir.join("home/.erlang.cookie");
        std::fs::write(&cookie, format!("ESBTESTCOOKIE{}", r.port)).expect("cookie");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(r.dir.join("enabled_plugins"), "[].\n").expect("plugins file");
        r.boot();
        r
    }

    /// Starts the broker process (again, after [`Rabbit::kill`]: same ports, same data).
    pub fn boot(&self) {
        let bin = server_bin().expect(
            "rabbitmq-server is not installed: run scripts/ci-deps (apt-get install rabbitmq-server)",
        );
        let log = std::fs::File::create(self.dir.join("server.out")).expect("broker log");
        let mut cmd = Command::new(bin);
        cmd.env("HOME", self.dir.join("home"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("no-config"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", self.dir.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn().expect("spawn rabbitmq-server");
        PIDS.lock().expect("pids").push(child.id() as i32);
        *self.child.lock().expect("child") = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(c) = self.try_connect() {
                drop(c);
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "rabbitmq-server did not accept AMQP connections on port {} within 90s\n{}",
                    self.port,
                    std::fs::read_to_string(self.dir.join("server.out")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // The beam process (its pid file) is what must be killed later.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                PIDS.lock().expect("pids").push(pid);
            }
        }
    }

    fn try_connect(&self) -> Result<Amqp, String> {
        Amqp::connect(&self.url())
    }

    /// Makes the broker's metadata (queue and exchange declarations) durable now. RabbitMQ
    /// keeps them in mnesia, whose transaction log (`disk_log`) buffers writes in the
    /// Erlang VM for up to seconds: a queue declared just before a kill -9 was seen to be
    /// gone after the restart (the log said "Recovering 1 queues" where two were declared),
    /// its confirmed messages with it. `mnesia:sync_log()` writes that buffer out; a test
    /// that kills the broker calls this once its queues exist.
    pub fn sync_metadata(&self) {
        let ctl = Path::new(server_bin().expect("rabbitmq-server is installed"))
            .with_file_name("rabbitmqctl");
        let out = Command::new(&ctl)
            .env("HOME", self.dir.join("home"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .args(["-n", &self.node, "eval", "mnesia:sync_log()."])
            .stdin(Stdio::null())
            .output()
            .expect("run rabbitmqctl");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.trim() == "ok",
            "{} eval mnesia:sync_log() failed ({}): {said}{}",
            ctl.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What the broker's log says of the classic queues it recovered at each boot ("Recovering
    /// 2 queues of type rabbit_classic_queue took 21ms"), to say in a failure whether the
    /// broker lost a queue across a restart.
    pub fn recovered_queues(&self) -> Vec<String> {
        let log = std::fs::read_dir(self.dir.join("log"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().contains("upgrade"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect::<String>();
        log.lines()
            .filter(|l| l.contains("queues of type rabbit_classic_queue"))
            .filter_map(|l| l.split("] ").nth(1).map(str::to_string))
            .collect()
    }

    /// Kills the broker with SIGKILL (the process group: the script and the Erlang VM).
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().expect("child").take() {
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://127.0.0.1:{}/%2f", self.port)
    }

    /// A client connected as guest.
    pub fn client(&self) -> Amqp {
        Amqp::connect(&self.url()).expect("connect to the test broker")
    }
}

/// With `ESB_KEEP_BROKER` set, a broker of one's own leaves its directory (data and
/// logs) behind and says where, to look into a failure.
impl Drop for Rabbit {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("ESB_KEEP_BROKER").is_some() {
            if let Some(t) = self._tmp.take() {
                eprintln!("kept broker dir {}", t.keep().display());
            }
        }
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 % 1000)
        .unwrap_or(0)
}

/// A queue name nobody else uses: `prefix-<unique>`.
pub fn queue_name(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A message read back from a queue.
#[derive(Debug, Clone)]
pub struct Got {
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub redelivered: bool,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A blocking AMQP client for tests.
pub struct Amqp {
    rt: tokio::runtime::Runtime,
    _conn: Connection,
    ch: Channel,
}

impl Amqp {
    pub fn connect(url: &str) -> Result<Amqp, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (conn, ch) = rt.block_on(async {
            let url = url.replacen("amqp://", "amqp://guest:guest@", 1);
            let conn = Connection::connect(&url, ConnectionProperties::default())
                .await
                .map_err(|e| e.to_string())?;
            let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((conn, ch))
        })?;
        Ok(Amqp {
            rt,
            _conn: conn,
            ch,
        })
    }

    /// Declares a durable queue (idempotent) and empties it.
    /// Two new empty queues `PREFIX-in-…` and `PREFIX-out-…`.
    pub fn fresh_pair(&self, prefix: &str) -> (String, String) {
        let pair = (
            queue_name(&format!("{prefix}-in")),
            queue_name(&format!("{prefix}-out")),
        );
        self.fresh_queue(&pair.0);
        self.fresh_queue(&pair.1);
        pair
    }

    pub fn fresh_queue(&self, name: &str) {
        self.rt.block_on(async {
            self.ch
                .queue_declare(
                    name.into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("queue.declare");
            self.ch
                .queue_purge(name.into(), QueuePurgeOptions::default())
                .await
                .expect("queue.purge");
        });
    }

    /// Publishes a persistent message to the default exchange and waits for the confirm.
    pub fn publish(&self, queue: &str, body: &str, headers: &[(&str, &str)]) {
        self.publish_many(queue, std::iter::once((body.to_owned(), headers.to_vec())));
    }

    /// Publishes many messages, then waits for every confirm.
    pub fn publish_many<'a>(
        &self,
        queue: &str,
        messages: impl IntoIterator<Item = (String, Vec<(&'a str, &'a str)>)>,
    ) {
        self.rt.block_on(async {
            let mut confirms = Vec::new();
            for (body, headers) in messages {
                let mut t = FieldTable::default();
                for (k, v) in headers {
                    t.insert(
                        ShortString::from(k),
                        AMQPValue::LongString(LongString::from(v.to_owned())),
                    );
                }
                let props = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_headers(t);
                confirms.push(
                    self.ch
                        .basic_publish(
                            "".into(),
                            queue.into(),
                            BasicPublishOptions::default(),
                            body.as_bytes(),
                            props,
                        )
                        .await
                        .expect("basic.publish"),
                );
            }
            for c in confirms {
                assert!(
                    c.await.expect("confirm").is_ack(),
                    "broker nacked a test message"
                );
            }
        });
    }

    /// (ready messages, consumers) of a queue.
    pub fn counts(&self, queue: &str) -> (u32, u32) {
        self.rt.block_on(async {
            let q = self
                .ch
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("passive queue.declare");
            (q.message_count(), q.consumer_count())
        })
    }

    /// Takes (and acknowledges) every message currently ready in `queue`.
    pub fn drain(&self, queue: &str) -> Vec<Got> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            while let Some(m) = self
                .ch
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .expect("basic.get")
            {
                let headers = m
                    .delivery
                    .properties
                    .headers()
                    .as_ref()
                    .map(|t| {
                        t.inner()
                            .iter()
                            .map(|(k, v)| {
                                let v = match v {
                                    AMQPValue::LongString(s) => {
                                        String::from_utf8_lossy(s.as_bytes()).into_owned()
                                    }
                                    other => format!("{other:?}"),
                                };
                                (k.to_string(), v)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Got {
                    body: String::from_utf8_lossy(&m.delivery.data).into_owned(),
                    headers,
                    redelivered: m.delivery.redelivered,
                });
                m.delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .expect("basic.ack");
            }
            out
        })
    }

    /// Drains `queue` until `n` messages were read in all (or panics after `limit`).
    pub fn collect(&self, queue: &str, n: usize, limit: Duration) -> Vec<Got> {
        let deadline = Instant::now() + limit;
        let mut all = Vec::new();
        loop {
            all.extend(self.drain(queue));
            if all.len() >= n {
                return all;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {limit:?}: {} of {n} messages arrived in queue {queue}",
                    all.len()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
