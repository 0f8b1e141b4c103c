//! Works with the tools operators already use: the management endpoint against what
//! jmx4perl / check_jmx4perl, hawtio, browsers (CORS) and the Python `jolokia` client send,
//! and what Prometheus and log shippers expect. Each test starts a real `esb` on loopback.

use e2e::mgmt_client::Mgmt;
use e2e::{wait_until, ClosedPort, Esb, EsbOptions, TempConf};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);
const SERVER: &str = "esb:type=Server";
const PROXY: &str = "esb:type=Proxy,unit=shop,name=orders";
const ENDPOINT: &str = "esb:type=Endpoint,unit=shop,name=be";

/// Field order matters: esb stops before its configuration directory is removed.
struct Env {
    _esb: Esb,
    conf: TempConf,
    m: Mgmt,
}

impl Env {
    fn start(conf: TempConf) -> Env {
        Self::start_with(conf, EsbOptions::default())
    }

    fn start_with(conf: TempConf, opts: EsbOptions) -> Env {
        let esb = Esb::start_with(&conf, opts);
        let m = Mgmt::of(&conf);
        Env { _esb: esb, conf, m }
    }

    fn get(&self, path: &str) -> e2e::mgmt_client::Reply {
        self.m.control("GET", path).send()
    }
}

/// A unit with two proxies and an endpoint of three addresses (none needs to answer).
fn shop_unit() -> String {
    r#"[[proxy]]
name = "orders"
path = "/orders"
endpoint = "be"

[[proxy]]
name = "refunds"
path = "/refunds"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["http://127.0.0.1:9", "http://127.0.0.1:10", "http://127.0.0.1:11"]
"#
    .into()
}

fn shop() -> Env {
    Env::start(TempConf::new().http("web").unit("shop", &shop_unit()))
}

fn patch_management(conf: &TempConf, lines: &str) {
    let path = conf.dir().join("esb.toml");
    let text = std::fs::read_to_string(&path).expect("read esb.toml");
    let patched = text.replace("[management]\n", &format!("[management]\n{lines}\n"));
    assert_ne!(patched, text, "no [management] section to patch");
    std::fs::write(&path, patched).expect("write esb.toml");
}

fn ok(env: &Value) -> &Value {
    assert_eq!(env["status"], 200, "expected success: {env:#}");
    &env["value"]
}

// ---------------------------------------------------------------------------------------
// 1. Request types
// ---------------------------------------------------------------------------------------

/// jmx4perl, j4psh and check_jmx4perl send `"type":"READ"`; Jolokia accepts any case.
#[test]
fn request_types_are_case_insensitive_in_post_and_get() {
    let env = shop();
    let m = &env.m;
    let r = m.jolokia(&json!({"type": "READ", "mbean": SERVER, "attribute": "Name"}));
    assert_eq!(*ok(&r), json!("e2e"));
    assert_eq!(
        r["request"]["type"], "read",
        "the echo names the type: {r:#}"
    );
    let r = m.jolokia(&json!({"type": "Search", "mbean": "esb:type=Proxy,*"}));
    assert_eq!(ok(&r).as_array().map(Vec::len), Some(2));
    let r = m.jolokia(&json!({"type": "EXEC", "mbean": PROXY, "operation": "pause"}));
    ok(&r);
    assert_eq!(m.read(PROXY, "State"), "Paused");
    let bulk = m.jolokia(&json!([{"type": "VERSION"}, {"type": "List", "path": "esb"}]));
    assert_eq!(bulk[0]["status"], 200, "{bulk:#}");
    assert_eq!(bulk[1]["status"], 200, "{bulk:#}");
    // GET path form.
    let r = env.get("/jolokia/READ/esb:type=Server/Name").json();
    assert_eq!(*ok(&r), json!("e2e"));
    let r = env.get("/jolokia/Version").json();
    assert_eq!(ok(&r)["info"]["product"], "esb");
    // A type that is no type is still refused, with the list of types.
    let r = m.jolokia(&json!({"type": "REED", "mbean": SERVER}));
    assert_eq!(r["status"], 400, "{r:#}");
    assert!(r["error"].as_str().unwrap_or("").contains("read"), "{r:#}");
}

// ---------------------------------------------------------------------------------------
// 2. GET exec/write: refused inside the envelope, or allowed by the opt-in
// ---------------------------------------------------------------------------------------

#[test]
fn refused_get_exec_and_write_answer_200_with_a_403_envelope() {
    let env = shop();
    for path in [
        "/jolokia/exec/esb:type=Proxy,unit=shop,name=orders/pause",
        "/jolokia/write/esb:type=Server/HotDeploy/true",
    ] {
        let r = env.get(path);
        assert_eq!(
            r.status,
            200,
            "{path}: the envelope must reach the client: {}",
            r.text()
        );
        let v = r.json();
        assert_eq!(v["status"], 403, "{path}: {v:#}");
        assert_eq!(v["error_type"], "java.lang.SecurityException", "{v:#}");
        let error = v["error"].as_str().unwrap_or("");
        assert!(
            error.contains("POST") && error.contains("allow_get_changes"),
            "the error says what to do: {error}"
        );
    }
    assert_eq!(env.m.read(PROXY, "State"), "Active", "a GET exec acted");
    assert_eq!(env.m.read(SERVER, "HotDeploy"), false, "a GET write acted");
    // The refused attempts are audited.
    let audit = env.m.audit();
    for (key, name) in [("operation", "pause"), ("attribute", "HotDeploy")] {
        assert!(
            audit
                .iter()
                .any(|r| r["what"][key] == name && r["result"] == "error" && r["status"] == 403),
            "no refused record for {name}: {audit:#?}"
        );
    }
}

#[test]
fn allow_get_changes_permits_get_exec_and_write_on_loopback() {
    let conf = TempConf::new().http("web").unit("shop", &shop_unit());
    patch_management(&conf, "allow_get_changes = true");
    let env = Env::start(conf);
    let r = env
        .get("/jolokia/exec/esb:type=Proxy,unit=shop,name=orders/pause")
        .json();
    ok(&r);
    assert_eq!(env.m.read(PROXY, "State"), "Paused");
    let r = env
        .get("/jolokia/write/esb:type=Server/HotDeploy/true")
        .json();
    ok(&r);
    assert_eq!(env.m.read(SERVER, "HotDeploy"), true);
    // The monitor role still may not change anything.
    let r = env
        .m
        .monitor(
            "GET",
            "/jolokia/exec/esb:type=Proxy,unit=shop,name=orders/resume",
        )
        .send();
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(env.m.read(PROXY, "State"), "Paused");
    // Every GET change is audited like a POST one, with the revisions before and after.
    let audit = env.m.audit();
    let pause = audit
        .iter()
        .find(|r| r["kind"] == "change" && r["what"]["operation"] == "pause")
        .unwrap_or_else(|| panic!("no record of the GET pause: {audit:#?}"));
    assert_eq!(pause["result"], "ok", "{pause:#}");
    assert_eq!(pause["who"], "control", "{pause:#}");
    assert_eq!(pause["revision_before"], 1, "{pause:#}");
    let refused = audit
        .iter()
        .find(|r| r["kind"] == "change" && r["what"]["operation"] == "resume")
        .unwrap_or_else(|| panic!("no record of the monitor's GET resume: {audit:#?}"));
    assert_eq!(refused["result"], "error", "{refused:#}");
}

#[test]
fn allow_get_changes_is_refused_at_config_load_unless_the_bind_is_loopback() {
    let conf = TempConf::new();
    let path = conf.dir().join("esb.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let port = conf.mgmt_port();
    let patched = text.replace(
        &format!("bind = \"127.0.0.1:{port}\""),
        &format!("bind = \"0.0.0.0:{port}\"\nallow_remote = true\nallow_get_changes = true"),
    );
    assert_ne!(patched, text);
    std::fs::write(&path, patched).unwrap();
    let out = Command::new(e2e::esb::esb_bin())
        .arg("--conf")
        .arg(conf.dir())
        .arg("validate")
        .output()
        .expect("run esb validate");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "validate accepted it:\n{text}");
    assert!(text.contains("allow_get_changes"), "{text}");
    assert!(text.contains("loopback"), "{text}");
}

// ---------------------------------------------------------------------------------------
// 3. CORS
// ---------------------------------------------------------------------------------------

#[test]
fn cors_preflight_and_headers_for_allowed_origins_only() {
    const ORIGIN: &str = "http://console.example:8080";
    let conf = TempConf::new().http("web").unit("shop", &shop_unit());
    patch_management(&conf, &format!("allowed_origins = [\"{ORIGIN}\"]"));
    let env = Env::start(conf);
    let m = &env.m;

    // The preflight needs no credentials.
    let r = m
        .request("OPTIONS", "/jolokia")
        .header("Origin", ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send();
    assert_eq!(r.status, 204, "{:?} {}", r.headers, r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let methods = r.header("access-control-allow-methods").unwrap_or("");
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let headers = r
        .header("access-control-allow-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(r
        .header("access-control-max-age")
        .is_some_and(|v| v.parse::<u64>().is_ok()));
    assert!(r.header("vary").is_some_and(|v| v.contains("Origin")));

    // The actual request from the allowed origin carries the CORS headers.
    let r = m
        .control("POST", "/jolokia")
        .header("Origin", ORIGIN)
        .json(&json!({"type": "read", "mbean": SERVER, "attribute": "Name"}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(r.header("vary").is_some_and(|v| v.contains("Origin")));
    // Also on a GET and on an error envelope.
    let r = m
        .control("GET", "/jolokia/read/esb:type=Unit,name=nope/State")
        .header("Origin", ORIGIN)
        .send();
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));

    // An unknown origin gets no CORS headers: not on the preflight, not on the request
    // (which stays refused).
    let r = m
        .request("OPTIONS", "/jolokia")
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send();
    assert!(r.status < 500, "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("access-control-allow-credentials"), None);
    let r = m
        .control("POST", "/jolokia")
        .header("Origin", "http://evil.example")
        .json(&json!({"type": "version"}))
        .send();
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // No Origin at all: no CORS headers either.
    let r = m.control("GET", "/jolokia/version").send();
    assert_eq!(r.header("access-control-allow-origin"), None);
}

// ---------------------------------------------------------------------------------------
// 4. Processing parameters
// ---------------------------------------------------------------------------------------

#[test]
fn max_depth_max_collection_size_and_max_objects_shape_read_values() {
    let env = shop();
    let m = &env.m;
    let addresses = |query: &str| {
        let r = env
            .get(&format!(
                "/jolokia/read/esb:type=Endpoint,unit=shop,name=be/Addresses{query}"
            ))
            .json();
        ok(&r).clone()
    };
    let full = addresses("");
    assert_eq!(full.as_array().map(Vec::len), Some(3), "{full:#}");
    assert!(full[0].is_object());

    // maxCollectionSize: arrays (and objects) keep their first N entries.
    let v = addresses("?maxCollectionSize=2");
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v:#}");
    assert_eq!(v[0].as_object().map(|o| o.len()), Some(2), "{v:#}");
    for (k, x) in v[0].as_object().unwrap() {
        assert_eq!(*x, full[0][k], "{k}");
    }

    // maxDepth: containers below depth N become their JSON text.
    let v = addresses("?maxDepth=1");
    assert_eq!(v.as_array().map(Vec::len), Some(3), "{v:#}");
    let text = v[0]
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {v:#}"));
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), full[0]);
    let v = addresses("?maxDepth=2");
    assert_eq!(v, full);

    // maxObjects: values past the limit are replaced by a marker.
    let v = addresses("?maxObjects=3");
    assert!(v.to_string().contains("[Object limit exceeded]"), "{v:#}");

    // The same through POST `config`, and on a read of all attributes.
    let r = m.jolokia(&json!({
        "type": "read", "mbean": ENDPOINT,
        "config": {"maxDepth": 1, "maxCollectionSize": 1}
    }));
    let v = ok(&r);
    let a = v["Addresses"].as_array().unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(a.len(), 1);
    assert!(a[0].is_string(), "{v:#}");
    assert_eq!(v["State"], "Active");
}

#[test]
fn serialize_long_string_sends_integers_as_strings() {
    let env = shop();
    let r = env
        .get("/jolokia/read/esb:type=Server/UptimeSeconds?serializeLong=string")
        .json();
    let v = ok(&r);
    assert!(
        v.as_str().is_some_and(|s| s.parse::<u64>().is_ok()),
        "{v:#}"
    );
    let r = env.m.jolokia(&json!({
        "type": "read", "mbean": ENDPOINT, "attribute": "Addresses",
        "config": {"serializeLong": "string"}
    }));
    assert_eq!(ok(&r)[0]["requests"], "0", "{r:#}");
    // Without it, numbers stay numbers.
    let r = env
        .get("/jolokia/read/esb:type=Server/UptimeSeconds")
        .json();
    assert!(ok(&r).is_u64());
}

#[test]
fn mime_type_sets_the_response_content_type() {
    let env = shop();
    let r = env.get("/jolokia/version");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    let r = env.get("/jolokia/version?mimeType=text/plain");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.json()["status"], 200);
    let r = env
        .m
        .control("POST", "/jolokia?mimeType=text/plain")
        .json(&json!({"type": "version"}))
        .send();
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    let r = env
        .m
        .post(&json!({"type": "version", "config": {"mimeType": "text/plain"}}));
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    // Anything else falls back to JSON.
    let r = env.get("/jolokia/version?mimeType=text/html");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
}

#[test]
fn ignore_errors_leaves_failing_attributes_out() {
    let env = shop();
    let m = &env.m;
    let read = json!({"type": "read", "mbean": PROXY, "attribute": ["State", "NoSuchThing"]});
    let r = m.jolokia(&read);
    assert_eq!(r["status"], 404, "{r:#}");
    let mut lenient = read.clone();
    lenient["config"] = json!({"ignoreErrors": true});
    let r = m.jolokia(&lenient);
    assert_eq!(*ok(&r), json!({"State": "Active"}));
    let r = env
        .get("/jolokia/read/esb:type=Proxy,unit=shop,name=orders/State,NoSuchThing?ignoreErrors=true")
        .json();
    assert_eq!(*ok(&r), json!({"State": "Active"}));
    // A pattern: every matching bean with what it has.
    let r = m.jolokia(&json!({
        "type": "read", "mbean": "esb:type=Proxy,*", "attribute": ["Path", "NoSuchThing"],
        "config": {"ignoreErrors": "true"}
    }));
    let v = ok(&r);
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v:#}");
    for (_, attrs) in v.as_object().unwrap() {
        assert!(attrs.get("Path").is_some() && attrs.get("NoSuchThing").is_none());
    }
}

#[test]
fn include_stack_trace_controls_the_stacktrace_field() {
    let env = shop();
    let path = "/jolokia/read/esb:type=Unit,name=nope/State";
    let r = env.get(&format!("{path}?includeStackTrace=false")).json();
    assert_eq!(r["status"], 404);
    assert!(r.get("stacktrace").is_none(), "{r:#}");
    let r = env.get(path).json();
    assert!(r.get("stacktrace").is_none(), "off by default: {r:#}");
    let r = env.get(&format!("{path}?includeStackTrace=true")).json();
    let trace = r["stacktrace"].as_str().unwrap_or_else(|| panic!("{r:#}"));
    assert!(
        trace.contains("javax.management.InstanceNotFoundException"),
        "{trace}"
    );
    let r = env.m.jolokia(&json!({
        "type": "read", "mbean": "esb:type=Unit,name=nope",
        "config": {"includeStackTrace": true}
    }));
    assert!(r["stacktrace"].is_string(), "{r:#}");
}

#[test]
fn canonical_naming_false_returns_names_in_esbs_key_order() {
    let env = shop();
    let m = &env.m;
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap_or_else(|| panic!("{v:#}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let r = m.jolokia(&json!({"type": "search", "mbean": "esb:type=Proxy,*"}));
    assert_eq!(
        names(ok(&r)),
        [
            "esb:name=orders,type=Proxy,unit=shop",
            "esb:name=refunds,type=Proxy,unit=shop"
        ]
    );
    let r = env
        .get("/jolokia/search/esb:type=Proxy,*?canonicalNaming=false")
        .json();
    assert_eq!(
        names(ok(&r)),
        [
            "esb:type=Proxy,unit=shop,name=orders",
            "esb:type=Proxy,unit=shop,name=refunds"
        ]
    );
    let r = m.jolokia(&json!({
        "type": "read", "mbean": "esb:type=Proxy,*", "attribute": "Path",
        "config": {"canonicalNaming": false}
    }));
    let v = ok(&r);
    assert_eq!(v[PROXY]["Path"], "/orders", "{v:#}");
    let r = m.jolokia(&json!({
        "type": "list", "path": "esb", "config": {"canonicalNaming": "false", "maxDepth": 1}
    }));
    assert!(
        ok(&r).get("type=Proxy,unit=shop,name=orders").is_some(),
        "{r:#}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. ?p=
// ---------------------------------------------------------------------------------------

#[test]
fn p_query_parameter_carries_the_get_path() {
    let env = shop();
    let r = env.get("/jolokia?p=/read/esb:type=Server/Name").json();
    assert_eq!(*ok(&r), json!("e2e"), "{r:#}");
    let r = env.get("/jolokia/?p=/read/esb:type%3DServer").json();
    assert_eq!(ok(&r)["Name"], "e2e", "{r:#}");
    // With other parameters beside it.
    let r = env
        .get("/jolokia?p=/read/esb:type=Endpoint,unit=shop,name=be/Addresses&maxCollectionSize=1")
        .json();
    assert_eq!(ok(&r).as_array().map(Vec::len), Some(1), "{r:#}");
    // The same change policy as the path form.
    let r = env
        .get("/jolokia?p=/exec/esb:type=Proxy,unit=shop,name=orders/pause")
        .json();
    assert_eq!(r["status"], 403, "{r:#}");
    assert_eq!(env.m.read(PROXY, "State"), "Active");
}

// ---------------------------------------------------------------------------------------
// 6. History store
// ---------------------------------------------------------------------------------------

/// `check_jmx4perl --delta` switches on Jolokia's history store on `jolokia:type=Config`.
/// esb does not keep one: the answer says so, naming the bean and the operation.
#[test]
fn history_store_requests_get_a_clear_not_supported_error() {
    let env = shop();
    let r = env.m.jolokia(&json!({
        "type": "exec", "mbean": "jolokia:type=Config",
        "operation": "setHistoryLimitForAttribute",
        "arguments": [SERVER, "UptimeSeconds", null, 10, 0]
    }));
    assert_eq!(r["status"], 404, "{r:#}");
    let error = r["error"].as_str().unwrap_or("");
    for needle in [
        "history",
        "jolokia:type=Config",
        "setHistoryLimitForAttribute",
        "/metrics",
    ] {
        assert!(error.contains(needle), "{needle} missing in: {error}");
    }
    let r = env.m.jolokia(&json!({
        "type": "read", "mbean": "jolokia:type=Config", "attribute": "HistoryMaxEntries"
    }));
    assert_eq!(r["status"], 404, "{r:#}");
    assert!(
        r["error"].as_str().unwrap_or("").contains("history"),
        "{r:#}"
    );
    // Responses never carry a `history` field.
    let r = env
        .m
        .jolokia(&json!({"type": "read", "mbean": SERVER, "attribute": "Name"}));
    assert!(r.get("history").is_none());
}

// ---------------------------------------------------------------------------------------
// 7. A second stock client: Python `jolokia` from PyPI
// ---------------------------------------------------------------------------------------

fn venv_python(dir: &Path) -> Option<std::path::PathBuf> {
    let py = dir.join(".venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import jolokia"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(py)
}

#[test]
fn python_jolokia_client_works() {
    let dir = e2e::esb::workspace().join("tests/py-jolokia");
    let Some(python) = venv_python(&dir) else {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "CI is set but tests/py-jolokia/.venv is missing: run scripts/ci-deps"
        );
        eprintln!("SKIPPED python_jolokia_client_works: run scripts/ci-deps to create tests/py-jolokia/.venv");
        return;
    };
    let env = shop();
    let url = format!("http://127.0.0.1:{}/jolokia", env.conf.mgmt_port());
    let out = Command::new(python)
        .arg("check.py")
        .arg(&url)
        .arg(&env.m.control)
        .arg(PROXY)
        .current_dir(&dir)
        .output()
        .expect("run check.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let r: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("check.py printed no JSON ({e}):\n{stdout}\n{stderr}"));
    let step = |name: &str| -> Value {
        let s = &r[name];
        assert_eq!(s["status"], 200, "python jolokia step {name}: {s:#}");
        s["value"].clone()
    };
    assert_eq!(step("version")["info"]["product"], "esb");
    assert_eq!(step("read"), "Active");
    assert!(step("search")
        .as_array()
        .is_some_and(|a| a.contains(&json!("esb:name=orders,type=Proxy,unit=shop"))));
    assert!(step("list")["op"]["pause"].is_object(), "{:#}", r["list"]);
    step("pause");
    assert_eq!(step("stateAfterPause"), "Paused");
    step("resume");
    assert_eq!(step("write"), false, "write returns the previous value");
    assert_eq!(step("hotDeployAfterWrite"), true);
    let bulk: Vec<(u64, Value)> = r["bulkRead"]
        .as_array()
        .unwrap_or_else(|| panic!("{:#}", r["bulkRead"]))
        .iter()
        .map(|i| (i["status"].as_u64().unwrap_or(0), i["value"].clone()))
        .collect();
    assert_eq!(
        bulk,
        vec![(200, json!("Active")), (200, json!("/orders"))],
        "{:#}",
        r["bulkRead"]
    );
    let statuses: Vec<u64> = r["bulkWrite"]
        .as_array()
        .unwrap_or_else(|| panic!("{:#}", r["bulkWrite"]))
        .iter()
        .map(|i| i["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, vec![200], "{:#}", r["bulkWrite"]);
    assert_eq!(env.m.read(SERVER, "HotDeploy"), false, "bulk write applied");
    assert_eq!(env.m.read(PROXY, "State"), "Active");
}

// ---------------------------------------------------------------------------------------
// 8. /metrics
// ---------------------------------------------------------------------------------------

fn scrape(env: &Env) -> (String, prometheus_parse::Scrape) {
    let r = env.m.monitor("GET", "/metrics").send();
    assert_eq!(r.status, 200);
    let text = r.text();
    e2e::prom::check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n--- /metrics ---\n{text}"));
    let s = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("prometheus-parse: {e}\n{text}"));
    (text, s)
}

fn value(s: &prometheus_parse::Scrape, text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = s
        .samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"));
    match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("{name}: unexpected {other:?}"),
    }
}

#[test]
fn metrics_count_deploys_tasks_and_connections() {
    let closed = ClosedPort::new();
    let unit = format!(
        r#"[[proxy]]
name = "hello"
path = "/hello"
sequence = "say"

[[sequence]]
name = "say"
steps = [{{ respond = {{ status = 200, body = "hi" }} }}]

[[task]]
name = "good"
every = "1h"
sequence = "say"

[[task]]
name = "bad"
every = "1h"
sequence = "fail"

[[sequence]]
name = "fail"
steps = [{{ call = {{ endpoint = "gone" }} }}]

[[endpoint]]
name = "gone"
addresses = ["{}"]
"#,
        closed.url()
    );
    let env = Env::start(TempConf::new().http("web").unit("jobs", &unit));
    let m = &env.m;
    // A rejected deploy, a task that works and one that fails, a few connections.
    let r = m.exec(
        "esb:type=DeploymentManager",
        "deploy",
        json!(["jobs", "this is not toml ["]),
    );
    assert!(
        r.to_string().contains("rejected") || r["status"] != 200,
        "{r:#}"
    );
    m.exec_ok("esb:type=Task,unit=jobs,name=good", "runNow", json!([]));
    m.exec_ok("esb:type=Task,unit=jobs,name=bad", "runNow", json!([]));
    wait_until("both tasks to run", LIMIT, || {
        m.read("esb:type=Task,unit=jobs,name=good", "Runs") == 1
            && m.read("esb:type=Task,unit=jobs,name=bad", "Runs") == 1
    });
    let client = e2e::Client::new();
    for _ in 0..3 {
        assert_eq!(client.get(&env.conf.url("web", "/hello")).status, 200);
    }

    let (text, s) = scrape(&env);
    let v = |name: &str, labels: &[(&str, &str)]| value(&s, &text, name, labels);
    assert_eq!(
        v(
            "esb_deploys_total",
            &[("unit", "jobs"), ("outcome", "activated")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "esb_deploys_total",
            &[("unit", "jobs"), ("outcome", "rejected")]
        ),
        1.0
    );
    assert!(v("esb_deploy_duration_seconds_count", &[]) >= 1.0);
    let histogram = s
        .samples
        .iter()
        .find(|x| x.metric == "esb_deploy_duration_seconds")
        .unwrap_or_else(|| panic!("no deploy histogram in\n{text}"));
    match &histogram.value {
        prometheus_parse::Value::Histogram(b) => {
            assert!(
                b.iter()
                    .any(|b| b.less_than.is_infinite() && b.count >= 1.0),
                "{b:?}"
            )
        }
        other => panic!("esb_deploy_duration_seconds is {other:?}"),
    }
    assert_eq!(v("esb_unit_failed", &[("unit", "jobs")]), 0.0);
    assert_eq!(v("esb_unit_degraded", &[("unit", "jobs")]), 0.0);
    assert_eq!(v("esb_unit_draining_revisions", &[("unit", "jobs")]), 0.0);
    let task = |t| [("unit", "jobs"), ("task", t)];
    assert_eq!(v("esb_task_runs_total", &task("good")), 1.0);
    assert_eq!(v("esb_task_failures_total", &task("good")), 0.0);
    assert_eq!(v("esb_task_runs_total", &task("bad")), 1.0);
    assert_eq!(v("esb_task_failures_total", &task("bad")), 1.0);
    assert_eq!(v("esb_task_run_duration_seconds_count", &task("bad")), 1.0);
    let web = [("transport", "web")];
    assert!(v("esb_transport_connections_total", &web) >= 3.0);
    assert!(v("esb_transport_connections_open", &web) >= 0.0);
    assert_eq!(v("esb_transport_connections_refused_total", &web), 0.0);

    // Conventions: counters end in _total, durations are in seconds, every family has
    // HELP and TYPE.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split(' ').skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{line}");
        }
        if name.contains("duration") || name.contains("latency") {
            assert!(name.ends_with("_seconds"), "{line}");
        }
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 9. Logs
// ---------------------------------------------------------------------------------------

/// Starts esb with stderr into a file and without NO_COLOR: what a service manager does.
fn start_plain(conf: &TempConf, args: &[&str]) -> (std::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("esb.log")).unwrap();
    let child = Command::new(e2e::esb::esb_bin())
        .arg("--conf")
        .arg(conf.dir())
        .arg("--no-watch")
        .args(args)
        .env_remove("NO_COLOR")
        .env("ESB_LOG", "info")
        .current_dir(conf.root())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn esb");
    (child, dir)
}

fn read_until_started(child: &mut std::process::Child, dir: &Path) -> String {
    let path = dir.join("esb.log");
    let text = e2e::wait_for(
        "server_started in the log",
        LIMIT,
        || {
            let t = std::fs::read_to_string(&path).unwrap_or_default();
            t.contains("server_started").then_some(t)
        },
        || std::fs::read_to_string(&path).unwrap_or_default(),
    );
    let _ = child.kill();
    let _ = child.wait();
    text
}

#[test]
fn logs_without_a_terminal_have_no_colour_name_every_listener_and_round_durations() {
    let conf = TempConf::new()
        .http("web")
        .http("api")
        .unit("hello", &e2e::units::answer_unit("/hello", "hi", "1.0"));
    let (mut child, dir) = start_plain(&conf, &[]);
    let text = read_until_started(&mut child, dir.path());
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{text:?}"
    );
    for t in ["web", "api"] {
        let bind = format!("127.0.0.1:{}", conf.port(t));
        assert!(
            text.lines()
                .any(|l| l.contains("listening") && l.contains(t) && l.contains(&bind)),
            "no listening line for {t} ({bind}):\n{text}"
        );
    }
    assert!(text.contains(&format!("127.0.0.1:{}", conf.mgmt_port())));
    let line = text
        .lines()
        .find(|l| l.contains("unit activated"))
        .unwrap_or_else(|| panic!("no unit activated line:\n{text}"));
    let ms = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("duration_ms="))
        .unwrap_or_else(|| panic!("no duration_ms: {line}"));
    let decimals = ms.split('.').nth(1).map(str::len).unwrap_or(0);
    assert!(decimals <= 1, "duration with float noise: {line}");
}

#[test]
fn json_log_format_has_one_object_per_line_with_the_event_fields() {
    let conf = TempConf::new()
        .http("web")
        .unit("hello", &e2e::units::answer_unit("/hello", "hi", "1.0"));
    let (mut child, dir) = start_plain(&conf, &["--log-format", "json"]);
    let text = read_until_started(&mut child, dir.path());
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let activated = lines
        .iter()
        .find(|l| l["fields"]["message"] == "unit activated")
        .unwrap_or_else(|| panic!("no unit activated record:\n{text}"));
    let f = &activated["fields"];
    assert_eq!(f["unit"], "hello", "{activated:#}");
    assert_eq!(f["revision"], 1, "{activated:#}");
    assert!(f["duration_ms"].is_number(), "{activated:#}");
    assert_eq!(activated["level"], "INFO");
    assert!(lines.iter().any(|l| l["fields"]["transport"] == "web"
        && l["fields"]["bind"] == format!("127.0.0.1:{}", conf.port("web"))));
    assert!(lines
        .iter()
        .any(|l| l["fields"]["event"] == "server_started"));
}
