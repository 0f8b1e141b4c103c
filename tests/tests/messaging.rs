//! Message and file transports end to end: a real RabbitMQ broker (one per test binary,
//! and one of its own for the test that kills it), real `esb` processes, real inbox
//! directories. Messages are counted by id; every wait polls with a deadline.

use e2e::mgmt_client::Mgmt;
use e2e::rabbit::{queue_name, Amqp, Got, Rabbit};
use e2e::{wait_for, wait_until, Backend, Client, Esb, TempConf};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn consumer_bean(unit: &str, name: &str) -> String {
    format!("esb:type=Consumer,unit={unit},name={name}")
}

fn attr(m: &Mgmt, unit: &str, name: &str, a: &str) -> Value {
    m.read(&consumer_bean(unit, name), a)
}

fn wait_state(m: &Mgmt, unit: &str, name: &str, state: &str) {
    wait_for(
        &format!("consumer {unit}/{name} to be {state}"),
        LIMIT,
        || (attr(m, unit, name, "State") == state).then_some(()),
        || {
            format!(
                "state {} ({})",
                attr(m, unit, name, "State"),
                attr(m, unit, name, "Reason")
            )
        },
    );
}

fn ids(
    n: std::ops::Range<usize>,
) -> impl Iterator<Item = (String, Vec<(&'static str, &'static str)>)> {
    n.map(|i| (json!({ "id": i }).to_string(), vec![]))
}

/// How many times each id arrived.
fn by_id(got: &[Got], header: &str) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for g in got {
        let id: u64 = g
            .header(header)
            .unwrap_or_else(|| panic!("message without header {header}: {g:?}"))
            .parse()
            .expect("numeric id");
        *m.entry(id).or_default() += 1;
    }
    m
}

/// Writes the unit and reloads it from disk; the reload must activate a revision.
fn redeploy(conf: &TempConf, m: &Mgmt, unit: &str, toml: &str) {
    std::fs::write(conf.unit_dir(unit).join("unit.toml"), toml).expect("write unit");
    let out = m.exec_ok(&format!("esb:type=Unit,name={unit}"), "reload", json!([]));
    assert_eq!(out["outcome"], "activated", "{out:#}");
}

#[test]
fn queue_to_http_backend_and_http_to_queue() {
    let _broker_load = e2e::rabbit::alongside();
    let rabbit = Rabbit::shared();
    let mq = rabbit.client();
    let (inq, outq) = mq.fresh_pair("orders");
    let backend = Backend::fixed(200, "ok").start();
    let unit = format!(
        r#"
[[endpoint]]
name = "backend"
addresses = ["{backend}"]

[[sequence]]
name = "to-backend"
steps = [
  {{ set_header = {{ name = "x-msg-id", value = "${{json./id}}" }} }},
  {{ set_header = {{ name = "x-redelivered", value = "${{prop.amqp.redelivered}}" }} }},
]

[[consumer]]
name = "orders-in"
transport = "rabbit"
queue = "{inq}"
sequence = "to-backend"
endpoint = "backend"

[[sequence]]
name = "enqueue"
steps = [
  {{ publish = {{ transport = "rabbit", routing_key = "{outq}", headers = {{ id = "${{json./id}}" }} }} }},
  {{ respond = {{ status = 202, body = "queued" }} }},
]

[[proxy]]
name = "orders"
path = "/orders"
methods = ["POST"]
sequence = "enqueue"
"#,
        backend = backend.url()
    );
    let conf = TempConf::new()
        .http("web")
        .amqp("rabbit", &rabbit.url())
        .unit("orders", &unit);
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_state(&m, "orders", "orders-in", "Connected");
    e2e::uterm::Uterm::connected(&conf.mgmt_url(""), &m.control)
        .c("show consumer orders/orders-in")
        .run()
        .expect(0)
        .stdout_has(&["Connected", "rabbit/", "to-backend"]);

    // queue → HTTP backend
    mq.publish_many(&inq, ids(0..20));
    wait_until("20 messages at the backend", LIMIT, || {
        backend.seen().len() >= 20
    });
    let mut seen: Vec<u64> = backend
        .seen()
        .iter()
        .map(|s| s.header("x-msg-id").expect("id header").parse().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..20).collect::<Vec<u64>>());
    assert!(backend
        .seen()
        .iter()
        .all(|s| s.header("x-redelivered") == Some("false")));
    wait_until("20 acks", LIMIT, || {
        attr(&m, "orders", "orders-in", "Acked") == 20
    });
    assert_eq!(mq.counts(&inq), (0, 1), "queue empty, one consumer");

    // HTTP → queue
    let client = Client::new();
    for i in 100..105 {
        let r = client.post(&conf.url("web", "/orders"), json!({ "id": i }).to_string());
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let got = mq.collect(&outq, 5, LIMIT);
    assert_eq!(
        by_id(&got, "id").into_iter().collect::<Vec<_>>(),
        (100..105).map(|i| (i, 1)).collect::<Vec<_>>()
    );
    assert!(
        got[0].body.contains("\"id\""),
        "body published as is: {}",
        got[0].body
    );
    let t = m.read("esb:type=Transport,name=rabbit", "Published");
    assert_eq!(t, 5);
}

/// A unit that takes messages from `inq`, tags each with its label and publishes it to
/// `outq` (4 workers, prefetch 20).
fn relay_unit(label: &str, inq: &str, outq: &str, extra_consumer: &str) -> String {
    relay_unit_prefetch(label, inq, outq, 20, extra_consumer)
}

fn relay_unit_prefetch(
    label: &str,
    inq: &str,
    outq: &str,
    prefetch: u16,
    extra_consumer: &str,
) -> String {
    format!(
        r#"
version = "{label}"

[[sequence]]
name = "relay"
steps = [
  {{ publish = {{ transport = "rabbit", routing_key = "{outq}", headers = {{ id = "${{json./id}}", rev = "${{unit.version}}", redelivered = "${{prop.amqp.redelivered}}" }} }} }},
]

[[consumer]]
name = "relay"
transport = "rabbit"
queue = "{inq}"
prefetch = {prefetch}
concurrency = 4
sequence = "relay"
{extra_consumer}
"#
    )
}

#[test]
fn reloads_while_messages_flow_process_every_message_exactly_once() {
    let _broker_load = e2e::rabbit::alongside();
    const N: usize = 20_000;
    const RELOADS: usize = 100;
    let rabbit = Rabbit::shared();
    let mq = rabbit.client();
    let (inq, outq) = mq.fresh_pair("reload");
    let conf = TempConf::new()
        .http("web")
        .amqp("rabbit", &rabbit.url())
        .unit("relay", &relay_unit("a", &inq, &outq, ""));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_state(&m, "relay", "relay", "Connected");
    let publisher = {
        let url = rabbit.url();
        let inq = inq.clone();
        std::thread::spawn(move || {
            let mq = Amqp::connect(&url).expect("publisher connects");
            for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
                mq.publish_many(&inq, ids(chunk[0]..chunk[0] + chunk.len()));
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    for i in 0..RELOADS {
        let label = if i % 2 == 0 { "b" } else { "a" };
        redeploy(&conf, &m, "relay", &relay_unit(label, &inq, &outq, ""));
        // One consumer per binding across revisions, whatever the reloads.
        assert_eq!(
            mq.counts(&inq).1,
            1,
            "consumers on the queue after reload {i}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    publisher.join().expect("publisher");
    let got = mq.collect(&outq, N, LIMIT);
    let counts = by_id(&got, "id");
    assert_eq!(counts.len(), N, "every id arrived");
    let dup: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "ids processed more than once: {dup:?}");
    let revs: std::collections::BTreeSet<&str> =
        got.iter().filter_map(|g| g.header("rev")).collect();
    assert_eq!(
        revs.into_iter().collect::<Vec<_>>(),
        vec!["a", "b"],
        "both revisions processed messages"
    );
    assert!(got.iter().all(|g| g.header("redelivered") == Some("false")));
    assert_eq!(attr(&m, "relay", "relay", "Received"), N as u64);
    assert_eq!(attr(&m, "relay", "relay", "Acked"), N as u64);
    assert_eq!(attr(&m, "relay", "relay", "Redelivered"), 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(mq.drain(&outq).is_empty(), "nothing more arrives");
    assert_eq!(mq.counts(&inq), (0, 1));
}

#[test]
fn reloads_that_change_the_binding_lose_and_duplicate_nothing() {
    let _broker_load = e2e::rabbit::alongside();
    const N: usize = 1000;
    let rabbit = Rabbit::shared();
    let mq = rabbit.client();
    let (inq, outq) = mq.fresh_pair("rebind");
    let conf = TempConf::new()
        .http("web")
        .amqp("rabbit", &rabbit.url())
        .unit("relay", &relay_unit_prefetch("a", &inq, &outq, 20, ""));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_state(&m, "relay", "relay", "Connected");
    let publisher = {
        let url = rabbit.url();
        let inq = inq.clone();
        std::thread::spawn(move || {
            let mq = Amqp::connect(&url).expect("publisher connects");
            for start in (0..N).step_by(50) {
                mq.publish_many(&inq, ids(start..start + 50));
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // A new prefetch is a new binding: the session ends after its in-flight messages and a
    // new one starts; prefetched messages not started go back to the queue.
    for i in 0..8 {
        let (label, prefetch) = if i % 2 == 0 { ("b", 8) } else { ("a", 20) };
        redeploy(
            &conf,
            &m,
            "relay",
            &relay_unit_prefetch(label, &inq, &outq, prefetch, ""),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    publisher.join().expect("publisher");
    let got = mq.collect(&outq, N, LIMIT);
    let counts = by_id(&got, "id");
    assert_eq!(counts.len(), N, "every id arrived");
    let dup: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "ids processed more than once: {dup:?}");
    wait_until("one consumer on the queue", LIMIT, || {
        mq.counts(&inq) == (0, 1)
    });
}

#[test]
fn pause_holds_messages_in_the_queue_and_resume_drains_them() {
    let _broker_load = e2e::rabbit::alongside();
    let rabbit = Rabbit::shared();
    let mq = rabbit.client();
    let (inq, outq) = mq.fresh_pair("pause");
    let conf = TempConf::new()
        .http("web")
        .amqp("rabbit", &rabbit.url())
        .unit("relay", &relay_unit("a", &inq, &outq, ""));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_state(&m, "relay", "relay", "Connected");
    let uterm = |script: &str| {
        e2e::uterm::Uterm::connected(&conf.mgmt_url(""), &m.control)
            .c(script)
            .run()
            .expect(0)
    };
    uterm("pause consumer relay/relay");
    wait_state(&m, "relay", "relay", "Paused");
    wait_until("the consumer to leave the queue", LIMIT, || {
        mq.counts(&inq).1 == 0
    });
    mq.publish_many(&inq, ids(0..50));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mq.counts(&inq), (50, 0), "messages wait in the queue");
    assert!(mq.drain(&outq).is_empty(), "nothing processed while paused");
    let listed = uterm("list consumers");
    listed.stdout_has(&["relay", "Paused", "paused by an operator"]);

    // A reload keeps the operator's pause.
    redeploy(&conf, &m, "relay", &relay_unit("b", &inq, &outq, ""));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mq.counts(&inq), (50, 0), "still paused after a reload");

    uterm("resume consumer relay/relay");
    let got = mq.collect(&outq, 50, LIMIT);
    assert_eq!(by_id(&got, "id").len(), 50);
    assert!(got.iter().all(|g| g.header("rev") == Some("b")));

    // Pausing the unit pauses its consumers too.
    uterm("pause relay");
    wait_state(&m, "relay", "relay", "Paused");
    assert_eq!(attr(&m, "relay", "relay", "Reason"), "unit paused");
    mq.publish_many(&inq, ids(50..60));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mq.counts(&inq).0, 10);
    uterm("resume relay");
    let got = mq.collect(&outq, 10, LIMIT);
    assert_eq!(by_id(&got, "id").len(), 10);

    // So does pausing the amqp transport, while HTTP keeps serving.
    uterm("pause transport rabbit");
    wait_state(&m, "relay", "relay", "Paused");
    assert_eq!(m.read("esb:type=Transport,name=rabbit", "State"), "Paused");
    mq.publish_many(&inq, ids(60..65));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mq.counts(&inq).0, 5);
    assert_eq!(m.health().status, 200);
    uterm("resume transport rabbit");
    assert_eq!(by_id(&mq.collect(&outq, 5, LIMIT), "id").len(), 5);
}

#[test]
fn unload_cancels_the_consumer_and_leaves_waiting_messages() {
    let _broker_load = e2e::rabbit::alongside();
    let rabbit = Rabbit::shared();
    let mq = rabbit.client();
    let (inq, outq) = mq.fresh_pair("unload");
    let conf = TempConf::new()
        .http("web")
        .amqp("rabbit", &rabbit.url())
        .unit("relay", &relay_unit("a", &inq, &outq, ""));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_state(&m, "relay", "relay", "Connected");
    mq.publish_many(&inq, ids(0..10));
    assert_eq!(by_id(&mq.collect(&outq, 10, LIMIT), "id").len(), 10);
    let out = m.exec_ok("esb:type=Unit,name=relay", "unload", json!([]));
    assert_eq!(out["outcome"], "unloaded", "{out:#}");
    wait_until("the consumer to leave the queue", LIMIT, || {
        mq.counts(&inq).1 == 0
    });
    mq.publish_many(&inq, ids(10..40));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        mq.counts(&inq),
        (30, 0),
        "messages wait for the next consumer"
    );
    assert!(mq.drain(&outq).is_empty());
    // Loading the unit again picks them up.
    let out = m.exec_ok("esb:type=DeploymentManager", "load", json!(["relay"]));
    assert_eq!(out["outcome"], "activated", "{out:#}");
    assert_eq!(by_id(&mq.collect(&outq, 30, LIMIT), "id").len(), 30);
}

#[test]
fn poison_message_is_dead_lettered_after_max_attempts_and_never_blocks_the_queue() {
    let _broker_load = e2e::rabbit::alongside();
    let rabbit = Rabbit::shared();
    let mq = rabbit.client();
    let (inq, outq, dlq) = (
        queue_name("poison-in"),
        queue_name("poison-out"),
        queue_name("poison-dlq"),
    );
    for q in [&inq, &outq, &dlq] {
        mq.fresh_queue(q);
    }
    let unit = format!(
        r#"
[[sequence]]
name = "check"
steps = [
  {{ filter = {{ on = "${{json./poison}}", equals = "yes", then = [{{ respond = {{ status = 500, body = "poison" }} }}] }} }},
  {{ publish = {{ transport = "rabbit", routing_key = "{outq}", headers = {{ id = "${{json./id}}" }} }} }},
]

[[consumer]]
name = "check"
transport = "rabbit"
queue = "{inq}"
sequence = "check"
on_failure = {{ max_attempts = 3, backoff = "20ms", max_backoff = "50ms", dead_letter_exchange = "", dead_letter_routing_key = "{dlq}" }}
"#
    );
    let conf = TempConf::new()
        .http("web")
        .amqp("rabbit", &rabbit.url())
        .unit("checks", &unit);
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_state(&m, "checks", "check", "Connected");
    mq.publish(&inq, r#"{"id": 1}"#, &[]);
    mq.publish(
        &inq,
        r#"{"id": 2, "poison": "yes"}"#,
        &[("x-origin", "test")],
    );
    mq.publish_many(&inq, ids(3..10));
    let got = mq.collect(&outq, 8, LIMIT);
    assert_eq!(
        by_id(&got, "id").keys().copied().collect::<Vec<_>>(),
        vec![1, 3, 4, 5, 6, 7, 8, 9]
    );
    let dead = mq.collect(&dlq, 1, LIMIT);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains("poison"), "{:?}", dead[0]);
    let cause = dead[0].header("x-esb-failure").expect("cause header");
    assert!(cause.contains("responded 500"), "{cause}");
    assert_eq!(dead[0].header("x-esb-attempts"), Some("3"));
    assert_eq!(dead[0].header("x-esb-consumer"), Some("checks/check"));
    assert_eq!(
        dead[0].header("x-origin"),
        Some("test"),
        "original headers kept"
    );
    wait_until("counters", LIMIT, || {
        attr(&m, "checks", "check", "DeadLettered") == 1
    });
    assert_eq!(attr(&m, "checks", "check", "Retried"), 2);
    assert_eq!(attr(&m, "checks", "check", "Acked"), 8);
    assert_eq!(mq.counts(&inq), (0, 1));
    let metrics = m.monitor("GET", "/metrics").send().text();
    assert!(
        metrics.contains("esb_consumer_dead_lettered_total{unit=\"checks\",consumer=\"check\"} 1"),
        "{metrics}"
    );
}

#[test]
fn broker_down_at_start_then_killed_mid_flow_loses_nothing() {
    let _broker_load = e2e::rabbit::alone();
    const N: usize = 600;
    let rabbit = Rabbit::start();
    rabbit.kill();
    let backend = Backend::fixed(200, "ok")
        .delay(Duration::from_millis(3))
        .start();
    let (inq, outq) = (queue_name("crash-in"), queue_name("crash-out"));
    let unit = format!(
        r#"
[[endpoint]]
name = "slow"
addresses = ["{backend}"]

[[sequence]]
name = "relay"
steps = [
  {{ set_property = {{ name = "id", value = "${{json./id}}" }} }},
  {{ call = {{ endpoint = "slow" }} }},
  {{ publish = {{ transport = "rabbit", routing_key = "{outq}", headers = {{ id = "${{prop.id}}", redelivered = "${{prop.amqp.redelivered}}" }} }} }},
]

[[consumer]]
name = "relay"
transport = "rabbit"
queue = "{inq}"
prefetch = 10
concurrency = 2
sequence = "relay"
"#,
        backend = backend.url()
    );
    let conf = TempConf::new()
        .http("web")
        .amqp("rabbit", &rabbit.url())
        .unit("relay", &unit);
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    // The broker is down: the consumer says why, the rest serves.
    wait_state(&m, "relay", "relay", "Disconnected");
    let reason = attr(&m, "relay", "relay", "Reason");
    assert!(
        reason.as_str().unwrap_or("").contains("cannot connect"),
        "{reason}"
    );
    assert!(
        !reason.to_string().contains("guest:"),
        "no credentials in {reason}"
    );
    assert_eq!(m.health().status, 200);

    rabbit.boot();
    let mq = rabbit.client();
    mq.fresh_queue(&outq);
    // The consumer declares its queue once it connects.
    wait_state(&m, "relay", "relay", "Connected");
    // Both queues exist; the broker must not lose them to the kill below.
    rabbit.sync_metadata();
    mq.publish_many(&inq, ids(0..N));
    wait_until("a part of the flow to be processed", LIMIT, || {
        attr(&m, "relay", "relay", "Acked").as_u64().unwrap_or(0) >= 100
    });
    rabbit.kill();
    drop(mq);
    wait_state(&m, "relay", "relay", "Disconnected");
    rabbit.boot();
    wait_state(&m, "relay", "relay", "Connected");
    let mq = rabbit.client();
    let deadline = Instant::now() + LIMIT;
    let mut got = Vec::new();
    loop {
        got.extend(mq.drain(&outq));
        let counts = by_id(&got, "id");
        if counts.len() == N {
            break;
        }
        if Instant::now() >= deadline {
            let read = |a: &str| attr(&m, "relay", "relay", a);
            panic!(
                "{} of {N} ids arrived after the broker restart; broker: {:?} (ready, consumers) in {inq}, boots: {:?}; consumer: received {} acked {} retried {} dead-lettered {} redelivered {} in flight {}",
                counts.len(),
                mq.counts(&inq),
                rabbit.recovered_queues(),
                read("Received"),
                read("Acked"),
                read("Retried"),
                read("DeadLettered"),
                read("Redelivered"),
                read("InFlight"),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing lost; an id that arrived twice was redelivered by the broker.
    let mut copies: BTreeMap<u64, Vec<&Got>> = BTreeMap::new();
    for g in &got {
        copies
            .entry(g.header("id").unwrap().parse().unwrap())
            .or_default()
            .push(g);
    }
    for (id, list) in &copies {
        if list.len() > 1 {
            let flagged = list
                .iter()
                .filter(|g| g.header("redelivered") == Some("true"))
                .count();
            assert!(
                flagged >= list.len() - 1,
                "id {id} arrived {} times but only {flagged} copies were flagged redelivered",
                list.len()
            );
        }
    }
    assert!(
        attr(&m, "relay", "relay", "Reconnects")
            .as_u64()
            .unwrap_or(0)
            >= 2
    );
    // The messages that failed while the broker was gone were redelivered, not counted as
    // dead-lettered.
    assert_eq!(attr(&m, "relay", "relay", "DeadLettered"), 0);
    // Each connection change was an event.
    let events = m.monitor("GET", "/events?recent=200").send().text();
    let changes: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("state_changed") && l.contains("type=Consumer"))
        .collect();
    assert!(
        changes.iter().any(|l| l.contains("\"Disconnected\""))
            && changes.iter().any(|l| l.contains("\"Connected\"")),
        "{events}"
    );
}

/// Names of the regular files in `dir` (`.reason` files and temporary files left out).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".reason") && !n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn inbox_unit(dir: &std::path::Path, sink: &str, extra: &str) -> String {
    format!(
        r#"
[[endpoint]]
name = "sink"
addresses = ["{sink}"]

[[sequence]]
name = "take"
steps = [
  {{ set_header = {{ name = "x-file", value = "${{prop.file.name}}" }} }},
  {{ set_header = {{ name = "x-id", value = "${{json./id}}" }} }},
  {{ set_header = {{ name = "x-resumed", value = "${{prop.file.resumed}}" }} }},
  {{ filter = {{ on = "${{json./bad}}", equals = "yes", then = [{{ respond = {{ status = 422, body = "bad" }} }}] }} }},
]

[[consumer]]
name = "inbox"
dir = "{dir}"
pattern = "*.json"
poll = "200ms"
sequence = "take"
endpoint = "sink"
on_failure = {{ max_attempts = 1 }}
{extra}
"#,
        dir = dir.display()
    )
}

#[test]
fn file_inbox_with_partial_writes_and_kill_9_ends_every_file_in_done_or_failed_exactly_once() {
    let _broker_load = e2e::rabbit::alongside();
    const N: usize = 60;
    let sink = Backend::fixed(200, "ok")
        .delay(Duration::from_millis(20))
        .start();
    let data = tempfile::tempdir().expect("data dir");
    let inbox = data.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let conf = TempConf::new()
        .http("web")
        .unit("files", &inbox_unit(&inbox, &sink.url(), ""));
    let mut esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_state(&m, "files", "inbox", "Running");

    // A file written slowly, in pieces: never taken before it is complete.
    let slow = {
        let path = inbox.join("slow.json");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(&path).unwrap();
            for piece in [r#"{"id""#, r#": "sl"#, r#"ow", "#, r#""pad": 1"#, "}"] {
                f.write_all(piece.as_bytes()).unwrap();
                f.flush().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::fs::write(inbox.join("notes.txt"), "not for the consumer").unwrap();
    for i in 0..N {
        let body = if i % 10 == 3 {
            json!({ "id": i, "bad": "yes" })
        } else {
            json!({ "id": i })
        };
        let name = format!("f{i:03}.json");
        if i % 2 == 0 {
            std::fs::write(inbox.join(&name), body.to_string()).unwrap();
        } else {
            // Written beside, then renamed in: complete at once.
            let tmp = inbox.join(format!(".{name}.part"));
            std::fs::write(&tmp, body.to_string()).unwrap();
            std::fs::rename(&tmp, inbox.join(&name)).unwrap();
        }
    }
    slow.join().unwrap();
    // Killed while a file is claimed (most likely still in it when the signal lands).
    wait_until("a part of the batch to be done", LIMIT, || {
        files_in(&inbox.join("done")).len() >= 15
            && !files_in(&inbox.join(".processing")).is_empty()
    });
    esb.signal(libc::SIGKILL);
    esb.wait(Duration::from_secs(10));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_until("every file to be done or failed", LIMIT, || {
        files_in(&inbox.join("done")).len() + files_in(&inbox.join("failed")).len() == N + 1
    });
    let done = files_in(&inbox.join("done"));
    let failed = files_in(&inbox.join("failed"));
    let mut all: Vec<&String> = done.iter().chain(failed.iter()).collect();
    all.sort();
    let mut expected: Vec<String> = (0..N).map(|i| format!("f{i:03}.json")).collect();
    expected.push("slow.json".into());
    expected.sort();
    assert_eq!(
        all.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        expected.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "every file exactly once in done/ or failed/"
    );
    let bad: Vec<String> = (0..N)
        .filter(|i| i % 10 == 3)
        .map(|i| format!("f{i:03}.json"))
        .collect();
    assert_eq!(failed, bad, "the failed files are the bad ones");
    for f in &failed {
        let reason = std::fs::read_to_string(inbox.join("failed").join(format!("{f}.reason")))
            .expect("a .reason beside each failed file");
        assert!(reason.contains("responded 422"), "{reason}");
    }
    assert_eq!(
        files_in(&inbox),
        vec!["notes.txt"],
        "only the non-matching file is left"
    );
    assert!(files_in(&inbox.join(".processing")).is_empty());
    let slow_seen: Vec<_> = sink
        .seen()
        .into_iter()
        .filter(|s| s.header("x-file") == Some("slow.json"))
        .collect();
    assert!(!slow_seen.is_empty());
    assert!(
        slow_seen.iter().all(|s| s.header("x-id") == Some("slow")),
        "the slow file was read complete: {slow_seen:?}"
    );
    assert_eq!(attr(&m, "files", "inbox", "Kind"), "file");
}

#[test]
fn unwritable_done_dir_stops_the_file_consumer_and_loses_no_file() {
    let _broker_load = e2e::rabbit::alongside();
    let sink = Backend::fixed(200, "ok").start();
    let data = tempfile::tempdir().expect("data dir");
    let inbox = data.path().join("in");
    let done = data.path().join("done");
    let extra = format!("done_dir = \"{}\"", done.display());
    let conf = TempConf::new()
        .http("web")
        .unit("files", &inbox_unit(&inbox, &sink.url(), &extra));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    wait_state(&m, "files", "inbox", "Running");
    std::fs::write(inbox.join("a.json"), r#"{"id": 1}"#).unwrap();
    wait_until("a.json done", LIMIT, || files_in(&done) == vec!["a.json"]);
    // done/ becomes impossible to write into (root ignores permissions: a file takes its
    // place).
    std::fs::remove_dir_all(&done).unwrap();
    std::fs::write(&done, "in the way").unwrap();
    std::fs::write(inbox.join("b.json"), r#"{"id": 2}"#).unwrap();
    wait_state(&m, "files", "inbox", "Stopped");
    let reason = attr(&m, "files", "inbox", "Reason");
    assert!(
        reason.as_str().unwrap_or("").contains("cannot move"),
        "{reason}"
    );
    assert_eq!(
        files_in(&inbox.join(".processing")),
        vec!["b.json"],
        "kept, not lost"
    );
    std::fs::write(inbox.join("c.json"), r#"{"id": 3}"#).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        files_in(&inbox),
        vec!["c.json"],
        "a stopped consumer takes nothing"
    );
    // Fixed, and started again by the operator: the claimed file is resumed.
    std::fs::remove_file(&done).unwrap();
    std::fs::create_dir(&done).unwrap();
    e2e::uterm::Uterm::connected(&conf.mgmt_url(""), &m.control)
        .c("start consumer files/inbox")
        .run()
        .expect(0);
    wait_until("b.json and c.json done", LIMIT, || {
        files_in(&done) == vec!["b.json", "c.json"]
    });
    wait_state(&m, "files", "inbox", "Running");
    let resumed: Vec<_> = sink
        .seen()
        .into_iter()
        .filter(|s| s.header("x-file") == Some("b.json"))
        .collect();
    assert_eq!(
        resumed.last().and_then(|s| s.header("x-resumed")),
        Some("true")
    );
}
