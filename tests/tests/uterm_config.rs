//! `uterm` finds its server and control token wherever it is run from: `--state-dir` /
//! `ESB_STATE_DIR`, or the per-user servers file (`$XDG_CONFIG_HOME/uterm/servers.toml`,
//! `--config`) with `--server NAME` and a `default` entry. Each test runs the real binary
//! from an empty working directory (so the search relative to it finds nothing) against a
//! real `esb`, and asserts the exit code and what uterm printed; then `completions` and
//! `man`, which need no server.

use e2e::mgmt_client::Mgmt;
use e2e::units::answer_unit;
use e2e::uterm::{Run, Uterm};
use e2e::{ClosedPort, Esb, TempConf};
use std::path::Path;

/// A running esb (unit `shop`) and its management endpoint. Field order: esb stops first.
struct Env {
    _esb: Esb,
    conf: TempConf,
    m: Mgmt,
}

impl Env {
    fn start() -> Env {
        let conf = TempConf::new()
            .http("web")
            .unit("shop", &answer_unit("/shop", "s1", "1.0"));
        let esb = Esb::start(&conf);
        let m = Mgmt::of(&conf);
        Env { _esb: esb, conf, m }
    }

    fn url(&self) -> String {
        self.conf.mgmt_url("")
    }
}

/// A config home with `uterm/servers.toml` holding `text`.
fn config_home(text: &str) -> tempfile::TempDir {
    let home = tempfile::Builder::new()
        .prefix("uterm-config-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(home.path().join("uterm")).unwrap();
    std::fs::write(home.path().join("uterm/servers.toml"), text).unwrap();
    home
}

#[track_caller]
fn expect(r: &Run, code: i32, fragment: &str) {
    assert_eq!(r.code, code, "unexpected exit code\n{r}");
    assert!(
        r.stdout.contains(fragment) || r.stderr.contains(fragment),
        "expected {fragment:?} in the output\n{r}"
    );
}

#[test]
fn state_dir_flag_and_env_find_the_control_token() {
    let env = Env::start();
    let state = env.conf.state_dir();
    let base = Uterm::new().args(["--url", &env.url()]);
    // Nothing to find from an empty directory: not authorised, and the message says how.
    let r = base.clone().c("status").run();
    expect(&r, 3, "--state-dir / ESB_STATE_DIR");
    let r = base
        .clone()
        .arg("--state-dir")
        .arg(&state)
        .c("status")
        .run();
    expect(&r, 0, "shop");
    let r = base
        .clone()
        .env("ESB_STATE_DIR", &state)
        .c("pause unit shop")
        .run();
    expect(&r, 0, "shop: Paused");
    // The control token, not only the monitor one: the pause really happened.
    let state_of_shop = env
        .m
        .read("esb:type=Unit,name=shop", "State")
        .as_str()
        .map(str::to_string);
    assert_eq!(state_of_shop.as_deref(), Some("Paused"));
    // An explicit token still wins over the state dir.
    let r = base
        .arg("--token")
        .arg("wrong")
        .arg("--state-dir")
        .arg(&state)
        .c("status")
        .run();
    expect(&r, 3, "not authorised");
}

#[test]
fn servers_file_default_entry_and_server_flag() {
    let env = Env::start();
    let closed = ClosedPort::new();
    std::fs::write(
        env.conf.root().join("copied.token"),
        format!("{}\n", env.m.control),
    )
    .unwrap();
    let home = config_home(&format!(
        "default = \"local\"\n\n\
         [server.local]\nurl = \"{url}\"\nstate_dir = \"{state}\"\n\n\
         [server.copy]\nurl = \"{url}\"\ntoken_file = \"{token}\"\n\n\
         [server.down]\nurl = \"{down}\"\nstate_dir = \"{state}\"\n",
        url = env.url(),
        state = env.conf.state_dir().display(),
        token = env.conf.root().join("copied.token").display(),
        down = closed.url(),
    ));
    let ut = || Uterm::new().env("XDG_CONFIG_HOME", home.path());
    // No flag at all: the default entry's url and token.
    expect(&ut().c("status").run(), 0, "shop");
    // --server and ESB_SERVER pick an entry; its token file is used.
    expect(
        &ut().args(["--server", "copy"]).c("status").run(),
        0,
        "shop",
    );
    expect(&ut().env("ESB_SERVER", "copy").c("status").run(), 0, "shop");
    // The entry's url is the one used.
    let r = ut().args(["--server", "down"]).c("status").run();
    expect(&r, 3, &format!("cannot connect to {}", closed.url()));
    // An unknown name is a usage error that lists the known ones.
    let r = ut().args(["--server", "staging"]).c("status").run();
    expect(&r, 2, "no server \"staging\" in ");
    expect(&r, 2, "known: copy, down, local");
    // --url without --server does not borrow the default entry's token.
    let r = ut().args(["--url", &closed.url()]).c("status").run();
    expect(&r, 3, "cannot connect");
}

#[test]
fn config_flag_names_another_file_and_errors_point_into_it() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops.toml");
    std::fs::write(dir.path().join("tok"), &env.m.control).unwrap();
    // Relative paths in the file are relative to the file.
    std::fs::write(
        &file,
        format!(
            "[server.ops]\nurl = \"{}\"\ntoken_file = \"tok\"\n",
            env.url()
        ),
    )
    .unwrap();
    let r = Uterm::new()
        .arg("--config")
        .arg(&file)
        .args(["--server", "ops"])
        .c("status")
        .run();
    expect(&r, 0, "shop");
    let r = Uterm::new()
        .env("UTERM_CONFIG", &file)
        .env("ESB_SERVER", "ops")
        .c("status")
        .run();
    expect(&r, 0, "shop");
    // A typo in the file: usage error with file:line:col.
    std::fs::write(&file, "[server.ops]\nurl = \"x\"\ntoekn_file = \"tok\"\n").unwrap();
    let r = Uterm::new().arg("--config").arg(&file).c("status").run();
    expect(
        &r,
        2,
        &format!("{}:3:1: unknown field `toekn_file`", file.display()),
    );
    // A named file that does not exist is an error, not silently empty.
    let r = Uterm::new()
        .arg("--config")
        .arg(Path::new("/nonexistent/servers.toml"))
        .c("status")
        .run();
    expect(&r, 2, "cannot read /nonexistent/servers.toml");
}

#[test]
fn completions_and_man_page_need_no_server() {
    for shell in ["bash", "zsh", "fish"] {
        let r = Uterm::new().args(["completions", shell]).run();
        assert_eq!(r.code, 0, "{r}");
        for verb in ["status", "reload", "rollback", "hot-deploy", "maintenance"] {
            assert!(r.stdout.contains(verb), "{shell} script lacks {verb}\n{r}");
        }
    }
    let r = Uterm::new().args(["completions", "tcsh"]).run();
    expect(&r, 2, "use bash, zsh or fish");
    let r = Uterm::new().arg("man").run();
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains(".TH uterm 1"), "{r}");
    assert!(r.stdout.contains("\\-\\-server"), "{r}");
}
