//! The README's tour, run as written: every `$ command` of the ```sh blocks under "A tour"
//! (README.md is read at test time, so the text and the test are one source) runs in one
//! bash session from a copy of the checkout's `conf/` and `scripts/demo-backend`, against a
//! real `esb` started as the README's first command starts it (hot deploy on), with the
//! real `uterm` behind the tour's `alias uterm='cargo run -q -p uterm --'` and the demo
//! backend. The tour's ports (8280, 8281, 9900, 9000, …) are swapped for free ones in the
//! copied files and the commands, and back in the output. Each command's output (stdout and
//! stderr) must match the lines below it in the README (snapbox: `[..]` and `…` match
//! within a line, `...` alone on a line matches lines) after both sides are normalised:
//! hashes, durations and pids become placeholders and runs of spaces shrink (column widths
//! follow the values). A command exits 0 unless its comment says `exit N`.

use e2e::esb::{esb_bin, workspace};
use e2e::uterm::uterm_bin;
use regex::Regex;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ports the tour (and `conf/`) use: the two transports, management, the demo backend
/// and the partner addresses of external-services (nothing may answer there).
const TOUR_PORTS: [u16; 6] = [8280, 8281, 9900, 9000, 9101, 9102];

/// How long the whole tour may take.
const LIMIT: Duration = Duration::from_secs(180);

/// One `$ command` of the README and the output lines under it.
#[derive(Debug)]
struct Step {
    /// README line of the command (1-based).
    line: usize,
    command: String,
    expected: String,
    exit: i32,
}

/// The ```sh blocks between `## A tour` and the next `## ` heading.
fn tour_steps(readme: &str) -> Vec<Step> {
    let exit_re = Regex::new(r"#\s*exit (\d+)").unwrap();
    let mut steps: Vec<Step> = Vec::new();
    let mut in_tour = false;
    let mut in_block = false;
    for (i, line) in readme.lines().enumerate() {
        if line.starts_with("## ") {
            in_tour = line.starts_with("## A tour");
            continue;
        }
        if !in_tour {
            continue;
        }
        if line.starts_with("```") {
            in_block = !in_block && line == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            let exit = exit_re
                .captures(command)
                .map(|c| c[1].parse().unwrap())
                .unwrap_or(0);
            steps.push(Step {
                line: i + 1,
                command: command.to_string(),
                expected: String::new(),
                exit,
            });
        } else if let Some(step) = steps.last_mut() {
            // A line holding only a comment continues the command's comment.
            if step.expected.is_empty() && line.trim_start().starts_with('#') {
                continue;
            }
            step.expected.push_str(line);
            step.expected.push('\n');
        }
    }
    for s in &mut steps {
        s.expected = s.expected.trim_end().replace('…', "[..]");
    }
    steps
}

/// Replaces each of the tour's port numbers standing alone (not inside a name like
/// `http-8280`, not part of a longer number) by its counterpart.
fn swap_ports(text: &str, map: &[(u16, u16)]) -> String {
    let mut out = text.to_string();
    for (from, to) in map {
        let re = Regex::new(&format!(r"(^|[^-\w]){from}(\D|$)")).unwrap();
        // Twice: adjacent matches share the separator.
        for _ in 0..2 {
            out = re
                .replace_all(&out, format!("${{1}}{to}${{2}}"))
                .into_owned();
        }
    }
    out
}

/// What may differ between runs: content hashes, durations, pids, column widths.
fn normalise(text: &str) -> String {
    let rules = [
        (r"\b[0-9a-f]{64}\b", "[SHA256]"),
        (r"\b[0-9a-f]{12}\b", "[HASH]"),
        (r"\b\d+(\.\d+)? ?(ns|µs|us|ms|s|m|h)\b", "[DUR]"),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( UTC)?", "[TIME]"),
        (r"\b(pid|process) \d+", "$1 [PID]"),
        (r"\ {2,}", "  "),
    ];
    let mut out = text.to_string();
    for (re, with) in rules {
        out = Regex::new(re).unwrap().replace_all(&out, with).into_owned();
    }
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Rewrites `:PORT` in every file under `dir`.
fn rewrite_ports(dir: &Path, map: &[(u16, u16)]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rewrite_ports(&path, map);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            let mut new = text.clone();
            for (from, to) in map {
                new = new.replace(&format!(":{from}"), &format!(":{to}"));
            }
            if new != text {
                std::fs::write(&path, new).unwrap();
            }
        }
    }
}

/// Everything the tour started: the first `esb`, whatever serves after an upgrade (its pid
/// in `var/esb.pid`), and the demo backend (its pid in the output). Stopped on drop.
struct Started {
    esb: Child,
    root: PathBuf,
    pids: Vec<i32>,
}

impl Drop for Started {
    fn drop(&mut self) {
        let mut pids = self.pids.clone();
        if let Ok(p) = std::fs::read_to_string(self.root.join("var/esb.pid")) {
            pids.extend(p.trim().parse::<i32>());
        }
        for pid in pids {
            // SAFETY: kill(2) on a pid this test started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.esb.kill();
        let _ = self.esb.wait();
    }
}

fn wait_for_log(log: &Path, needle: &str, esb: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        if let Ok(Some(status)) = esb.try_wait() {
            panic!("esb exited ({status}) during start-up:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "esb did not log {needle:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `tool` runs; without it the tour is skipped, except on CI (`CI` set) where
/// `scripts/ci-deps` installs it.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing; scripts/ci-deps installs it"
        );
        eprintln!("skipped: the README tour needs {tool} (scripts/ci-deps installs it)");
    }
    ok
}

#[test]
fn readme_tour_runs_as_written() {
    if !(have("curl") && have("python3") && have("bash")) {
        return;
    }
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let steps = tour_steps(&readme);
    assert!(
        steps.len() > 20 && steps.iter().any(|s| s.command.contains("uterm -c status")),
        "the README's tour was not found: {steps:#?}"
    );

    // A checkout as a user has it: conf/ (ports swapped) and the demo backend.
    let tmp = tempfile::Builder::new()
        .prefix("esb-tour-")
        .tempdir()
        .unwrap();
    let root = tmp.path().to_path_buf();
    copy_dir(&workspace().join("conf"), &root.join("conf"));
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    std::fs::copy(
        workspace().join("scripts/demo-backend"),
        root.join("scripts/demo-backend"),
    )
    .unwrap();
    let map: Vec<(u16, u16)> = TOUR_PORTS.iter().map(|&p| (p, e2e::free_port())).collect();
    rewrite_ports(&root.join("conf"), &map);
    let mgmt = map.iter().find(|(p, _)| *p == 9900).unwrap().1;

    // The README's first command, with hot deploy on.
    let log = root.join("esb.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let esb = Command::new(esb_bin())
        .args(["--conf", "conf"])
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let mut started = Started {
        esb,
        root: root.clone(),
        pids: Vec::new(),
    };
    wait_for_log(&log, "server_started", &mut started.esb);

    // One bash session: `cargo run` of the tour maps to the built binaries; a marker line
    // with the exit code closes each command's output.
    let uterm = uterm_bin();
    let mut script = String::new();
    let _ = writeln!(
        script,
        "exec 2>&1\nshopt -s expand_aliases\n\
         cargo() {{\n  case \"$*\" in\n\
         \"run -q -p esb-core --bin esb -- \"*) shift 7; \"{esb}\" \"$@\" ;;\n\
         \"run -q -p uterm -- \"*) shift 5; \"{uterm}\" \"$@\" ;;\n\
         *) echo \"tour: no such cargo command: $*\"; return 127 ;;\n  esac\n}}",
        esb = esb_bin().display(),
        uterm = uterm.display(),
    );
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(
            script,
            "printf '@@@start {i}\\n'\n{}\n__rc=$?; printf '\\n@@@end {i} %d\\n' $__rc",
            swap_ports(&s.command, &map)
        );
    }
    std::fs::write(root.join("tour.sh"), &script).unwrap();
    let out_path = root.join("tour.out");
    let mut bash = Command::new("bash")
        .args(["--noprofile", "--norc", "tour.sh"])
        .current_dir(&root)
        .env_remove("ESB_TOKEN")
        .env_remove("ESB_TOKEN_FILE")
        .env_remove("ESB_STATE_DIR")
        .env("ESB_URL", format!("http://127.0.0.1:{mgmt}"))
        .env("XDG_CONFIG_HOME", root.join("no-config"))
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var_os("PATH").unwrap())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = bash.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = bash.kill();
            panic!(
                "the tour did not finish within {LIMIT:?}; output so far:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&out_path).unwrap();
    started.pids.extend(
        Regex::new(r"demo backend on \S+ \(pid (\d+)\)")
            .unwrap()
            .captures_iter(&output)
            .map(|c| c[1].parse::<i32>().unwrap()),
    );
    assert!(status.success(), "bash failed ({status}):\n{output}");

    let back: Vec<(u16, u16)> = map.iter().map(|&(a, b)| (b, a)).collect();
    let mut failures = String::new();
    for (i, step) in steps.iter().enumerate() {
        let start = format!("@@@start {i}\n");
        let end_re = Regex::new(&format!(r"\n@@@end {i} (\d+)\n")).unwrap();
        let from = output.find(&start).map(|p| p + start.len());
        let end = end_re.captures(&output);
        let (Some(from), Some(end)) = (from, end) else {
            let _ = writeln!(
                failures,
                "README.md:{}: `{}` did not run",
                step.line, step.command
            );
            continue;
        };
        let m = end.get(0).unwrap();
        let rc: i32 = end[1].parse().unwrap();
        let actual = normalise(&swap_ports(&output[from..m.start()], &back));
        let expected = normalise(&step.expected);
        if rc != step.exit {
            let _ = writeln!(
                failures,
                "README.md:{}: `{}` exited {rc}, the README says {}\n{actual}\n",
                step.line, step.command, step.exit
            );
        }
        let name = format!("README.md:{}: `{}`", step.line, step.command);
        if let Err(e) = snapbox::Assert::new()
            .palette(snapbox::report::Palette::plain())
            .try_eq(
                Some(&name),
                snapbox::Data::text(actual.trim_end().to_string()),
                snapbox::Data::text(expected),
            )
        {
            let _ = writeln!(failures, "{e}");
        }
    }
    assert!(
        failures.is_empty(),
        "the README's tour does not match what the commands print:\n{failures}"
    );
    drop(started);
}

#[test]
fn tour_parsing_reads_commands_outputs_and_exit_codes() {
    let md = "intro\n## A tour\n```sh\n$ a  # first\nout 1\n\nout 2\n\n$ b   # exit 2\n      # more comment\n$ c\n…x\n```\n## Layout\n```sh\n$ d\n```\n";
    let steps = tour_steps(md);
    let got: Vec<_> = steps
        .iter()
        .map(|s| (s.command.as_str(), s.expected.as_str(), s.exit))
        .collect();
    assert_eq!(
        got,
        [
            ("a  # first", "out 1\n\nout 2", 0),
            ("b   # exit 2", "", 2),
            ("c", "[..]x", 0)
        ]
    );
    let map = [(8280, 41000), (9000, 42000)];
    assert_eq!(
        swap_ports(
            "localhost:8280/x http-8280 demo-backend 9000 19000 :9000",
            &map
        ),
        "localhost:41000/x http-8280 demo-backend 42000 19000 :42000"
    );
    assert_eq!(
        normalise("up 12s  version   1 in 3.5 ms hash e58a950ba650 (pid 77)  "),
        "up [DUR]  version  1 in [DUR] hash [HASH] (pid [PID])"
    );
}
