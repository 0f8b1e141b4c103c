//! View snapshots: the fixture drawn on ratatui's `TestBackend` at 80×24 and 120×40 (and a
//! too-small terminal), colours stripped: each snapshot is the screen's text.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use serde_json::json;

use super::draw;
use crate::tui::action::{Action, JobResult};
use crate::tui::app::{App, Options};
use crate::tui::fixture::{self, NOW};
use crate::tui::input::action_for;

fn terminal(app: &App) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(app.width, app.height)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    t
}

/// The screen as text, trailing blanks trimmed.
fn screen(app: &App) -> String {
    let t = terminal(app);
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn keys(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            '\t' => KeyCode::Tab,
            c => KeyCode::Char(c),
        };
        if let Some(a) = action_for(&app.mode, KeyEvent::new(code, KeyModifiers::NONE)) {
            app.update(a);
        }
    }
}

fn small() -> App {
    fixture::app(80, 24)
}

fn large() -> App {
    fixture::app(120, 40)
}

#[test]
fn units_80x24() {
    insta::assert_snapshot!(screen(&small()));
}

#[test]
fn units_120x40() {
    insta::assert_snapshot!(screen(&large()));
}

#[test]
fn proxies_filtered_80x24() {
    let mut a = small();
    keys(&mut a, "2/ord\n");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn proxies_120x40() {
    let mut a = large();
    keys(&mut a, "2jjj");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn proxies_sorted_by_rate_80x24() {
    let mut a = small();
    keys(&mut a, "2R");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn tap_popup_80x24() {
    let mut a = small();
    keys(&mut a, "2jjjw");
    let id = a.next_job - 1;
    for (i, (path, status)) in [("/orders/1", 200), ("/orders/2", 502)].iter().enumerate() {
        a.update(Action::TapRecord {
            id,
            record: json!({"time": NOW - 2_000 + i as u64 * 1000, "unit": "internal-services",
                "proxy": "orders", "revision": 4, "method": "GET", "path": path,
                "status": status, "latency_us": 1900,
                "steps": [{"sequence": "orders-in", "step": "set_header x-unit-version"}],
                "answered": {"endpoint": "orders-backend", "address": "http://127.0.0.1:9000",
                    "latency_us": 1200}}),
        });
    }
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn endpoints_with_addresses_120x40() {
    let mut a = large();
    keys(&mut a, "3");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn transports_80x24() {
    let mut a = small();
    keys(&mut a, "4");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn unit_drill_down_120x40() {
    let mut a = large();
    keys(&mut a, "jj\n");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn unit_drill_down_80x24() {
    let mut a = small();
    keys(&mut a, "\njj");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn events_120x40() {
    let mut a = large();
    keys(&mut a, "5");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn help_80x24() {
    let mut a = small();
    keys(&mut a, "?");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn confirm_pause_80x24() {
    let mut a = small();
    keys(&mut a, "2jjjp");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn diff_popup_120x40() {
    let mut a = large();
    keys(&mut a, "d");
    let v = json!({"unit": "default", "diff": {"unit": "default", "changes": [
        {"kind": "proxy", "name": "echo", "change": "changed",
         "fields": [{"field": "path", "old": "/echo", "new": "/echo2"}]},
        {"kind": "sequence", "name": "audit", "change": "added"}]}});
    let (out, _) = crate::present::report::diff(&v);
    let id = *a.jobs.keys().next().unwrap();
    a.update(Action::JobDone {
        id,
        result: JobResult::Ok(out),
    });
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn history_popup_80x24() {
    let mut a = small();
    keys(&mut a, "h");
    let v = json!([
        {"revision": 2, "active": false, "hash": "sha256:0a1b2c3d4e5f6a7b", "label": "1.0.0",
         "deployed_at": NOW - 86_400_000, "deploy_ms": 2.5},
        {"revision": 3, "active": true, "hash": "sha256:c13fae86db0b74c8", "label": "1.0.0",
         "deployed_at": NOW - 7_200_000, "deploy_ms": 0.4}
    ]);
    let id = *a.jobs.keys().next().unwrap();
    a.update(Action::JobDone {
        id,
        result: JobResult::Ok(crate::present::report::history("default", &v, NOW)),
    });
    keys(&mut a, "k");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn command_line_with_completions_120x40() {
    let mut a = large();
    keys(&mut a, ":pause proxy \t");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn status_line_after_an_action_80x24() {
    let mut a = small();
    keys(&mut a, "r");
    let id = *a.jobs.keys().next().unwrap();
    a.update(Action::JobDone {
        id,
        result: JobResult::Failed {
            message: "reload default: rejected".into(),
            output: None,
        },
    });
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn connecting_and_disconnected_80x24() {
    let mut a = App::new(
        Options {
            url: "http://127.0.0.1:9900".into(),
            read_only: false,
            refresh: Duration::from_secs(1),
        },
        NOW,
    );
    a.update(Action::Resize {
        width: 80,
        height: 24,
    });
    let connecting = screen(&a);
    assert!(connecting.contains("Connecting to http://127.0.0.1:9900"));
    a.update(Action::PollFailed {
        message: "cannot connect to http://127.0.0.1:9900: Connection refused (os error 111); \
                  is esb running?"
            .into(),
        retry_in: Duration::from_secs(4),
    });
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn stale_data_while_reconnecting_120x40() {
    let mut a = large();
    a.update(Action::PollFailed {
        message: "cannot connect to http://127.0.0.1:9900: Connection refused".into(),
        retry_in: Duration::from_secs(2),
    });
    a.update(Action::EventsDown("the server closed the stream".into()));
    a.update(Action::Tick {
        now_ms: NOW + 5_000,
    });
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn read_only_80x24() {
    let mut a = small();
    a.opts.read_only = true;
    keys(&mut a, "p");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn too_small_shows_a_message() {
    let mut a = fixture::app(50, 10);
    insta::assert_snapshot!(screen(&a));
    // Keys still work.
    keys(&mut a, "q");
    assert!(a.quit);
}

#[test]
fn states_are_coloured() {
    let a = large();
    let t = terminal(&a);
    let buf = t.backend().buffer();
    let find = |word: &str| {
        (0..buf.area.height)
            .find_map(|y| {
                let line: String = (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect();
                line.find(word)
                    .map(|i| (line[..i].chars().count() as u16, y))
            })
            .unwrap_or_else(|| panic!("{word} not on screen"))
    };
    let (x, y) = find("Paused");
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
    let (x, y) = find("Active ");
    assert_eq!(buf[(x, y)].fg, Color::Green);
}

#[test]
fn consumers_80x24() {
    let mut a = small();
    keys(&mut a, "6jj");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn consumers_120x40() {
    let mut a = large();
    keys(&mut a, "6j");
    insta::assert_snapshot!(screen(&a));
}

fn clustered(mut a: App, feed: crate::tui::cluster::ClusterFeed) -> App {
    a.update(Action::Cluster(Box::new(feed)));
    keys(&mut a, "7");
    a
}

#[test]
fn cluster_120x40() {
    let s = fixture::cluster_status();
    let a = clustered(
        large(),
        crate::tui::cluster::ClusterFeed::Status(Box::new(s)),
    );
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn cluster_narrow_60x20() {
    let s = fixture::cluster_status();
    let a = clustered(
        fixture::app(60, 20),
        crate::tui::cluster::ClusterFeed::Status(Box::new(s)),
    );
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn cluster_store_down_80x24() {
    use deployments::protocol::cluster::StoreState;
    let mut s = fixture::cluster_status();
    s.store.state = StoreState::Down;
    s.store.detail = Some("cluster store unreachable at 127.0.0.1:2379: connection refused".into());
    let a = clustered(
        small(),
        crate::tui::cluster::ClusterFeed::Status(Box::new(s)),
    );
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn cluster_on_a_single_node_80x24() {
    let a = clustered(small(), crate::tui::cluster::ClusterFeed::NotInCluster);
    let text = screen(&a);
    assert!(text.contains(super::cluster::NOT_IN_CLUSTER), "{text}");
    insta::assert_snapshot!(text);
}
