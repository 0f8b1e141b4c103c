//! Reducer tests: keys (through the real key map) → actions → state and effects.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

use super::*;
use crate::lang::kind::{Kind, Target};
use crate::lang::parse::parse;
use crate::present::output::{Block, Output, Span};
use crate::tui::action::JobResult;
use crate::tui::action::Op;
use crate::tui::fixture::{self, NOW};
use crate::tui::input::action_for;
use crate::tui::model::RowKind;

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    match action_for(&app.mode, KeyEvent::new(code, KeyModifiers::NONE)) {
        Some(a) => app.update(a),
        None => vec![],
    }
}

/// Types `keys` one character at a time, as a terminal would send them.
fn typed(app: &mut App, keys: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in keys.chars() {
        effects.extend(key(app, KeyCode::Char(c)));
    }
    effects
}

fn app() -> App {
    fixture::app(120, 40)
}

fn selected(app: &App) -> String {
    app.selected_obj().map(|o| o.label()).unwrap_or_default()
}

fn run_of(effects: &[Effect]) -> (u64, Command) {
    match effects {
        [Effect::Run { id, command }] => (*id, command.clone()),
        other => panic!("expected one Run effect, got {other:?}"),
    }
}

fn status(app: &App) -> String {
    app.status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default()
}

fn proxy(unit: &str, name: &str) -> Target {
    Target::Element {
        kind: Kind::Proxy,
        unit: unit.into(),
        name: name.into(),
    }
}

#[test]
fn number_keys_and_tab_switch_views() {
    let mut a = app();
    assert_eq!(a.view, View::Units);
    typed(&mut a, "3");
    assert_eq!(a.view, View::Endpoints);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.view, View::Transports);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.view, View::Events);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.view, View::Consumers, "Consumers come after Events (6)");
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.view, View::Cluster, "Cluster comes after Consumers (7)");
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.view, View::Units, "Tab wraps around");
    key(&mut a, KeyCode::BackTab);
    assert_eq!(a.view, View::Cluster);
    typed(&mut a, "1");
    typed(&mut a, "6");
    assert_eq!(a.view, View::Consumers);
    typed(&mut a, "7");
    assert_eq!(a.view, View::Cluster);
}

#[test]
fn consumers_view_rates_from_successive_snapshots_and_actions() {
    let mut a = app();
    typed(&mut a, "6");
    let rows: Vec<String> = a.objects().iter().map(|o| o.label()).collect();
    assert_eq!(
        rows,
        vec![
            "default/drop-in",
            "external-services/quotes-in",
            "internal-services/orders-in"
        ]
    );
    // The fixture's snapshots are a second apart; orders-in received 5·i² and acked 4.5·i² (rounded)
    // after refresh i: 5·(81-64) = 85 received/s, 77 acked/s between the last two.
    let o = a.objects()[2].clone();
    assert_eq!(o.rate(), Some(85.0));
    assert_eq!(o.num(crate::tui::model::ACKED_RATE), Some(77.0));
    // The first snapshot has no rate; every later one adds a sample.
    assert_eq!(a.rate_history(&o.key()).len(), 9);
    assert_eq!(a.rate_history(&o.key())[0], 5.0);
    // Counters that do not move rate 0.
    assert_eq!(a.objects()[0].rate(), Some(0.0));
    // A counter that went back (a restart) rates 0, not negative.
    let mut s = fixture::snap(0.0);
    s.taken_ms = NOW + 1000;
    a.update(Action::Snapshot(Box::new(s)));
    assert_eq!(a.objects()[2].rate(), Some(0.0));
    // Sorting by rate puts the busiest first; by dead letters too (Shift-E).
    let mut s = fixture::snap(1.0);
    s.taken_ms = NOW + 2000;
    a.update(Action::Snapshot(Box::new(s)));
    typed(&mut a, "R");
    assert_eq!(a.objects()[0].name, "orders-in");
    typed(&mut a, "E");
    assert_eq!(
        a.objects()
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        vec!["orders-in", "drop-in", "quotes-in"]
    );
    // The filter matches the source too.
    typed(&mut a, "/inbox");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.objects().len(), 1);
    assert_eq!(selected(&a), "default/drop-in");
}

#[test]
fn consumer_rows_pause_resume_stop_start_and_show_their_attributes() {
    let mut a = app();
    typed(&mut a, "6");
    // drop-in is paused: p resumes it without a question.
    assert_eq!(selected(&a), "default/drop-in");
    assert_eq!(
        run_of(&typed(&mut a, "p")).1,
        parse("resume consumer default/drop-in").unwrap()
    );
    // orders-in is connected: p and s ask first.
    typed(&mut a, "jj");
    typed(&mut a, "p");
    assert!(matches!(&a.mode, Mode::Confirm(c)
        if c.command == parse("pause consumer internal-services/orders-in").unwrap()
            && c.prompt.contains("messages wait")));
    typed(&mut a, "n");
    typed(&mut a, "s");
    assert!(matches!(&a.mode, Mode::Confirm(c)
        if c.command == parse("stop consumer internal-services/orders-in").unwrap()));
    let (_, cmd) = run_of(&typed(&mut a, "y"));
    assert_eq!(
        cmd,
        parse("stop consumer internal-services/orders-in").unwrap()
    );
    // A stopped consumer starts without a question.
    let mut s = fixture::snap(1.0);
    s.consumers[2]
        .attrs
        .insert("State".into(), json!("Stopped"));
    a.update(Action::Snapshot(Box::new(s)));
    assert_eq!(
        run_of(&typed(&mut a, "s")).1,
        parse("start consumer internal-services/orders-in").unwrap()
    );
    // Enter shows all its attributes, the reason of a disconnected one among them.
    typed(&mut a, "k");
    key(&mut a, KeyCode::Enter);
    match &a.mode {
        Mode::Popup(p) => {
            assert_eq!(p.title, "consumer external-services/quotes-in");
            assert!(p.lines.iter().any(|l| plain(l).contains("cannot connect")));
        }
        m => panic!("{m:?}"),
    }
    // w taps the consumer: its messages come to a popup.
    key(&mut a, KeyCode::Esc);
    let id = match typed(&mut a, "w").as_slice() {
        [Effect::Tap {
            id,
            unit,
            name,
            consumer: true,
        }] => {
            assert_eq!(
                (unit.as_str(), name.as_str()),
                ("external-services", "quotes-in")
            );
            *id
        }
        e => panic!("{e:?}"),
    };
    a.update(Action::TapRecord {
        id,
        record: json!({"time": NOW, "unit": "external-services", "consumer": "quotes-in",
            "source": "rabbit/quotes.in", "message": "m-1", "outcome": "dead-letter",
            "attempt": 3, "revision": 1, "latency_us": 900, "steps": []}),
    });
    match &a.mode {
        Mode::Popup(p) => {
            assert_eq!(p.title, "tap consumer external-services/quotes-in");
            let text: Vec<String> = p.lines.iter().map(plain).collect();
            assert_eq!(text.len(), 1, "{text:?}");
            assert!(
                text[0].contains("rabbit/quotes.in m-1 dead-letter (attempt 3)"),
                "{text:?}"
            );
        }
        m => panic!("{m:?}"),
    }
    // --read-only refuses the actions.
    let mut a = app();
    a.opts.read_only = true;
    typed(&mut a, "6p");
    assert!(status(&a).contains("read-only"));
}

#[test]
fn selection_moves_clamps_and_follows_its_object_across_refreshes() {
    let mut a = app();
    // Units: default, external-services, internal-services, then billing (not loaded).
    assert_eq!(selected(&a), "default");
    typed(&mut a, "jj");
    assert_eq!(selected(&a), "internal-services");
    typed(&mut a, "jjjj");
    assert_eq!(selected(&a), "billing", "clamped at the last row");
    key(&mut a, KeyCode::Home);
    assert_eq!(selected(&a), "default");
    typed(&mut a, "G");
    assert_eq!(selected(&a), "billing");
    typed(&mut a, "k");
    // A refresh in which an earlier row disappears keeps the same unit selected.
    let mut s = fixture::snap(1.0);
    s.units.remove(0);
    a.update(Action::Snapshot(Box::new(s)));
    assert_eq!(selected(&a), "internal-services");
    // Each view keeps its own selection.
    typed(&mut a, "2j");
    assert_eq!(selected(&a), "default/health");
    typed(&mut a, "1");
    assert_eq!(selected(&a), "internal-services");
}

#[test]
fn filter_narrows_the_rows_live_and_esc_clears_it() {
    let mut a = app();
    typed(&mut a, "2/ord");
    assert_eq!(a.mode, Mode::Filter);
    let rows: Vec<String> = a.objects().iter().map(|o| o.label()).collect();
    assert_eq!(rows, vec!["internal-services/orders"]);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(a.filter(), "ord", "Enter keeps the filter");
    // The filter belongs to the view.
    typed(&mut a, "1");
    assert_eq!(a.objects().len(), 4);
    typed(&mut a, "2");
    assert_eq!(a.objects().len(), 1);
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.filter(), "");
    assert_eq!(a.objects().len(), 4);
    // States match too; Esc while typing clears and leaves.
    typed(&mut a, "/stopped");
    assert_eq!(selected(&a), "external-services/quotes");
    key(&mut a, KeyCode::Esc);
    assert_eq!((a.mode.clone(), a.filter()), (Mode::Normal, ""));
}

#[test]
fn enter_drills_into_a_unit_and_esc_backs_out() {
    let mut a = app();
    typed(&mut a, "jj");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.drill, Some(("internal-services".into(), View::Units)));
    let rows: Vec<(RowKind, String)> = a
        .objects()
        .iter()
        .map(|o| (o.kind, o.name.clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (RowKind::Object(Kind::Proxy), "orders".into()),
            (RowKind::Object(Kind::Endpoint), "orders-backend".into()),
            (RowKind::Object(Kind::Consumer), "orders-in".into()),
            (RowKind::Draining, "r3".into()),
        ]
    );
    // Enter on an element shows all its attributes.
    key(&mut a, KeyCode::Enter);
    match &a.mode {
        Mode::Popup(p) => {
            assert_eq!(p.title, "proxy internal-services/orders");
            assert!(p.lines.iter().any(|l| plain(l).contains("/orders")));
        }
        m => panic!("{m:?}"),
    }
    // The attributes are live: the next snapshot redraws them, the popup stays where it is.
    let before = match &a.mode {
        Mode::Popup(p) => p.lines.clone(),
        m => panic!("{m:?}"),
    };
    typed(&mut a, "j");
    a.update(Action::Snapshot(Box::new(fixture::snap(0.25))));
    match &a.mode {
        Mode::Popup(p) => {
            assert_ne!(p.lines, before, "the popup shows the new snapshot");
            assert_eq!(p.scroll, 1);
            assert_eq!(p.title, "proxy internal-services/orders");
        }
        m => panic!("{m:?}"),
    }
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.mode, Mode::Normal);
    key(&mut a, KeyCode::Esc);
    assert_eq!((a.drill.clone(), a.view), (None, View::Units));

    // From the Proxies view, Enter drills into the proxy's unit with the proxy selected.
    typed(&mut a, "2jj");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.drill, Some(("external-services".into(), View::Proxies)));
    assert_eq!(selected(&a), "external-services/quotes");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.view, View::Proxies);
    // A unit that is not loaded cannot be entered.
    typed(&mut a, "1G");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.drill, None);
    assert!(
        status(&a).contains("billing is not loaded"),
        "{}",
        status(&a)
    );
}

#[test]
fn reload_runs_the_script_command_and_reports_the_outcome() {
    let mut a = app();
    let (id, cmd) = run_of(&typed(&mut a, "r"));
    assert_eq!(cmd, parse("reload default").unwrap());
    assert_eq!(status(&a), "reload default …");
    assert_eq!(a.running(), vec!["reload default"]);
    let out = Output::new(json!({"outcome": "activated"})).with(Block::Lines(vec![
        vec![Span::plain("activated default: revision 4")],
        vec![Span::plain("    ~ proxy echo: path")],
    ]));
    let effects = a.update(Action::JobDone {
        id,
        result: JobResult::Ok(out),
    });
    assert_eq!(
        effects,
        vec![Effect::Refresh],
        "a refresh shows the new state at once"
    );
    assert_eq!(
        status(&a),
        "activated default: revision 4  (o: full output)"
    );
    assert_eq!(a.status.as_ref().unwrap().tone, Tone::Good);
    assert_eq!(a.mode, Mode::Normal, "a success does not interrupt");
    typed(&mut a, "o");
    assert!(matches!(&a.mode, Mode::Popup(p) if p.lines.len() == 2));

    // An element's unit is reloaded.
    key(&mut a, KeyCode::Esc);
    typed(&mut a, "2jjj");
    assert_eq!(
        run_of(&typed(&mut a, "r")).1,
        parse("reload internal-services").unwrap()
    );
}

#[test]
fn a_rejected_reload_shows_its_errors() {
    let mut a = app();
    let (id, _) = run_of(&typed(&mut a, "r"));
    let out = Output::new(json!({})).with(Block::Lines(vec![
        vec![Span::plain("rejected default: 1 error")],
        vec![Span::plain("    unit.toml:15:12: sequence not found")],
    ]));
    a.update(Action::JobDone {
        id,
        result: JobResult::Failed {
            message: "reload default: rejected".into(),
            output: Some(out),
        },
    });
    assert_eq!(status(&a), "✖ reload default: rejected  (o: full output)");
    match &a.mode {
        Mode::Popup(p) => assert!(plain(&p.lines[1]).contains("unit.toml:15:12")),
        m => panic!("{m:?}"),
    }
}

#[test]
fn pause_asks_first_and_resume_does_not() {
    let mut a = app();
    typed(&mut a, "2jjj");
    assert_eq!(selected(&a), "internal-services/orders");
    assert!(typed(&mut a, "p").is_empty());
    match &a.mode {
        Mode::Confirm(c) => {
            assert!(
                c.prompt
                    .starts_with("Pause proxy internal-services/orders?"),
                "{}",
                c.prompt
            );
            assert_eq!(
                c.command,
                Command::Pause {
                    target: proxy("internal-services", "orders"),
                    hold_ms: None
                }
            );
        }
        m => panic!("{m:?}"),
    }
    assert!(typed(&mut a, "n").is_empty());
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(
        status(&a),
        "cancelled: pause proxy internal-services/orders"
    );
    typed(&mut a, "p");
    let (_, cmd) = run_of(&typed(&mut a, "y"));
    assert_eq!(cmd, parse("pause proxy internal-services/orders").unwrap());

    // The paused unit resumes without a question.
    typed(&mut a, "1j");
    assert_eq!(
        run_of(&typed(&mut a, "p")).1,
        parse("resume external-services").unwrap()
    );
}

#[test]
fn stop_start_maintenance_and_tasks() {
    let mut a = app();
    // The stopped proxy starts without a question; a running one asks.
    typed(&mut a, "2jj");
    assert_eq!(
        run_of(&typed(&mut a, "s")).1,
        parse("start proxy external-services/quotes").unwrap()
    );
    typed(&mut a, "k");
    typed(&mut a, "s");
    assert!(
        matches!(&a.mode, Mode::Confirm(c) if c.command == parse("stop proxy default/health").unwrap())
    );
    key(&mut a, KeyCode::Esc);
    // Units do not stop.
    typed(&mut a, "1s");
    assert!(status(&a).contains("only proxies, transports and consumers"));
    // Endpoints: m toggles maintenance.
    typed(&mut a, "3");
    assert_eq!(
        run_of(&typed(&mut a, "m")).1,
        parse("resume endpoint external-services/partner-quotes").unwrap()
    );
    typed(&mut a, "jm");
    assert!(
        matches!(&a.mode, Mode::Confirm(c) if c.command == parse("pause endpoint internal-services/orders-backend").unwrap())
    );
    typed(&mut a, "n");
    // Transports: paused ones resume; s stops with a question.
    typed(&mut a, "4j");
    assert_eq!(
        run_of(&typed(&mut a, "p")).1,
        parse("resume transport http-8281").unwrap()
    );
    typed(&mut a, "ks");
    assert!(matches!(&a.mode, Mode::Confirm(c) if c.prompt.contains("port is released")));
    typed(&mut a, "n");
    // Server maintenance asks.
    typed(&mut a, "M");
    assert!(matches!(&a.mode, Mode::Confirm(c) if c.command == Command::Maintenance(true)));
    typed(&mut a, "n");
    // A task runs now from the drill-down.
    typed(&mut a, "1");
    key(&mut a, KeyCode::Enter);
    typed(&mut a, "jj");
    assert_eq!(selected(&a), "default/heartbeat");
    assert_eq!(
        run_of(&typed(&mut a, "t")).1,
        parse("run task default/heartbeat").unwrap()
    );
    // A sequence cannot be paused; a draining revision does nothing.
    typed(&mut a, "jp");
    assert!(status(&a).contains("sequences cannot be paused"));
}

#[test]
fn load_unload_and_rollback() {
    let mut a = app();
    typed(&mut a, "G");
    assert_eq!(selected(&a), "billing");
    assert_eq!(
        run_of(&typed(&mut a, "l")).1,
        parse("load billing").unwrap()
    );
    assert_eq!(
        run_of(&typed(&mut a, "r")).1,
        parse("load billing").unwrap(),
        "r loads it too"
    );
    assert!(typed(&mut a, "u").is_empty());
    assert!(status(&a).contains("billing is not loaded"));
    typed(&mut a, "g");
    assert!(typed(&mut a, "l").is_empty());
    assert!(status(&a).contains("default is loaded"));
    typed(&mut a, "u");
    assert!(matches!(&a.mode, Mode::Confirm(c) if c.command == parse("unload default").unwrap()));
    assert_eq!(
        run_of(&key(&mut a, KeyCode::Enter)).1,
        parse("unload default").unwrap()
    );
    typed(&mut a, "b");
    assert!(matches!(&a.mode, Mode::Confirm(c) if c.command == parse("rollback default").unwrap()));
    typed(&mut a, "y");
}

#[test]
fn history_popup_picks_a_revision_to_roll_back_to() {
    let mut a = app();
    let (id, cmd) = run_of(&typed(&mut a, "h"));
    assert_eq!(cmd, parse("history default").unwrap());
    assert!(matches!(&a.mode, Mode::Popup(p) if p.job == Some(id)));
    let v = json!([
        {"revision": 1, "active": false, "hash": "a", "label": "1.0.0"},
        {"revision": 2, "active": false, "hash": "b", "label": "1.0.0"},
        {"revision": 3, "active": true, "hash": "c", "label": "1.0.0"}
    ]);
    let out = crate::present::report::history("default", &v, NOW);
    a.update(Action::JobDone {
        id,
        result: JobResult::Ok(out),
    });
    let pick = match &a.mode {
        Mode::Popup(p) => p.history.clone().expect("a history popup"),
        m => panic!("{m:?}"),
    };
    assert_eq!(pick.selected, 2, "the active revision is selected first");
    assert!(key(&mut a, KeyCode::Enter).is_empty());
    assert!(status(&a).contains("r3 is the active revision"));
    typed(&mut a, "k");
    key(&mut a, KeyCode::Enter);
    match &a.mode {
        Mode::Confirm(c) => {
            assert_eq!(c.prompt, "Roll default back to revision 2?");
            assert_eq!(c.command, parse("rollback default --to 2").unwrap());
        }
        m => panic!("{m:?}"),
    }
    let (_, cmd) = run_of(&typed(&mut a, "y"));
    assert_eq!(cmd, parse("rollback default --to r2").unwrap());
}

#[test]
fn diff_fills_a_scrollable_popup() {
    let mut a = app();
    let (id, cmd) = run_of(&typed(&mut a, "d"));
    assert_eq!(cmd, parse("diff default").unwrap());
    let lines: Vec<Vec<Span>> = (0..50)
        .map(|i| vec![Span::plain(format!("line {i}"))])
        .collect();
    a.update(Action::JobDone {
        id,
        result: JobResult::Ok(Output::new(json!({})).with(Block::Lines(lines))),
    });
    typed(&mut a, "jjj");
    key(&mut a, KeyCode::PageDown);
    match &a.mode {
        Mode::Popup(p) => {
            assert_eq!(p.title, "diff default");
            assert_eq!(p.scroll, 3 + 28);
        }
        m => panic!("{m:?}"),
    }
    typed(&mut a, "G");
    assert!(matches!(&a.mode, Mode::Popup(p) if p.scroll == 49));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.mode, Mode::Normal, "Esc closes a popup");
    assert!(!a.quit);
}

#[test]
fn popups_are_not_modal_for_navigation() {
    let mut a = app();
    let (id, _) = run_of(&typed(&mut a, "d"));
    a.update(Action::JobDone {
        id,
        result: JobResult::Ok(
            Output::new(json!({})).with(Block::Lines(vec![vec![Span::plain("x")]])),
        ),
    });
    assert!(matches!(a.mode, Mode::Popup(_)));
    // A number key switches the view, and the popup goes.
    typed(&mut a, "2");
    assert_eq!((a.view, &a.mode), (View::Proxies, &Mode::Normal));
    // Tab and Shift-Tab too.
    typed(&mut a, "o");
    assert!(matches!(a.mode, Mode::Popup(_)));
    key(&mut a, KeyCode::Tab);
    assert_eq!((a.view, &a.mode), (View::Endpoints, &Mode::Normal));
    typed(&mut a, "o");
    key(&mut a, KeyCode::BackTab);
    assert_eq!((a.view, &a.mode), (View::Proxies, &Mode::Normal));
    // `:` opens the command line.
    typed(&mut a, "o:");
    assert_eq!(a.mode, Mode::Command);
    key(&mut a, KeyCode::Esc);
    // And `q` quits, as everywhere but on a text line.
    typed(&mut a, "o");
    assert_eq!(typed(&mut a, "q"), vec![Effect::Quit]);
    assert!(a.quit);
}

#[test]
fn read_only_refuses_every_action_but_reading() {
    let mut a = app();
    a.opts.read_only = true;
    for k in ["r", "p", "s", "m", "M", "b", "l", "u", "t"] {
        assert!(typed(&mut a, k).is_empty(), "{k} ran");
        assert_eq!(a.mode, Mode::Normal, "{k} asked");
        assert!(status(&a).starts_with("read-only:"), "{k}: {}", status(&a));
    }
    assert_eq!(
        run_of(&typed(&mut a, "d")).1,
        parse("diff default").unwrap()
    );
    key(&mut a, KeyCode::Esc);
    typed(&mut a, ":reload default");
    assert!(key(&mut a, KeyCode::Enter).is_empty());
    assert!(status(&a).contains("read-only"), "{}", status(&a));
    typed(&mut a, ":status");
    assert_eq!(run_of(&key(&mut a, KeyCode::Enter)).1, Command::Status);
}

#[test]
fn command_line_runs_the_language_with_completion_and_history() {
    let mut a = app();
    typed(&mut a, ":rel");
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.command.text, "reload ");
    typed(&mut a, "in");
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.command.text, "reload internal-services ");
    let (id, cmd) = run_of(&key(&mut a, KeyCode::Enter));
    assert_eq!(cmd, parse("reload internal-services").unwrap());
    assert_eq!(a.mode, Mode::Normal);
    // Completing inside a line: the word is replaced whole, and no second space appears.
    typed(&mut a, ":reload in");
    key(&mut a, KeyCode::Home);
    for _ in 0..3 {
        key(&mut a, KeyCode::Right);
    }
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.command.text, "reload in");
    assert_eq!(a.command.cursor, "reload ".len());
    key(&mut a, KeyCode::End);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.command.text, "reload internal-services ");
    key(&mut a, KeyCode::Esc);
    // Several candidates: the common prefix, and the list.
    typed(&mut a, ":pause proxy ");
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.command.text, "pause proxy ");
    assert_eq!(a.completions.len(), 4);
    key(&mut a, KeyCode::Esc);
    assert!(a.completions.is_empty());
    // A typo keeps the line and says what was meant.
    typed(&mut a, ":relaod orders");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.mode, Mode::Command);
    assert_eq!(a.command.text, "relaod orders");
    assert!(
        status(&a).contains("did you mean `reload orders`"),
        "{}",
        status(&a)
    );
    key(&mut a, KeyCode::Esc);
    // Up recalls.
    typed(&mut a, ":");
    key(&mut a, KeyCode::Up);
    assert_eq!(a.command.text, "relaod orders");
    key(&mut a, KeyCode::Up);
    assert_eq!(a.command.text, "reload internal-services");
    key(&mut a, KeyCode::Esc);
    // A multi-line answer opens a popup titled with the command.
    let out = Output::new(json!([])).with(Block::Lines(vec![
        vec![Span::plain("a")],
        vec![Span::plain("b")],
    ]));
    a.update(Action::JobDone {
        id,
        result: JobResult::Ok(out),
    });
    assert!(matches!(&a.mode, Mode::Popup(p) if p.title == ":reload internal-services"));
    key(&mut a, KeyCode::Esc);
    // `q` on the line quits; `events --follow` goes to the Events view.
    typed(&mut a, ":events --follow");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view, View::Events);
    typed(&mut a, ":q");
    assert_eq!(key(&mut a, KeyCode::Enter), vec![Effect::Quit]);
}

#[test]
fn quitting() {
    let mut a = app();
    typed(&mut a, ":q");
    assert_eq!(a.command.text, "q", "q is text on the command line");
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let act = action_for(&a.mode, ctrl_c).unwrap();
    assert_eq!(a.update(act), vec![Effect::Quit]);
    let mut a = app();
    assert_eq!(typed(&mut a, "q"), vec![Effect::Quit]);
    assert!(a.quit);
}

#[test]
fn events_arrive_newest_first_and_open_in_full() {
    let mut a = app();
    typed(&mut a, "5");
    let kinds: Vec<&str> = a
        .event_rows()
        .iter()
        .map(|e| e.event.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "state_changed",
            "unit_rejected",
            "unit_activated",
            "server_started"
        ]
    );
    typed(&mut a, "j");
    a.update(Action::Event(Box::new(fixture::event(
        9,
        json!({"type": "hot_deploy", "enabled": false, "time": NOW}),
    ))));
    assert_eq!(
        a.selected_event().unwrap().event.kind,
        "unit_rejected",
        "the selection stays on its event"
    );
    key(&mut a, KeyCode::Enter);
    match &a.mode {
        Mode::Popup(p) => {
            assert_eq!(p.title, "Deploy rejected: default (event 3)");
            assert!(p.lines.iter().any(|l| plain(l).contains("unit.toml:15:12")));
        }
        m => panic!("{m:?}"),
    }
    key(&mut a, KeyCode::Esc);
    typed(&mut a, "/rejected");
    assert_eq!(a.event_rows().len(), 1);
    // Actions need an object.
    key(&mut a, KeyCode::Enter);
    typed(&mut a, "r");
    assert!(status(&a).contains("select a unit"), "{}", status(&a));
}

#[test]
fn connection_state_and_rate_history() {
    let mut a = app();
    assert_eq!(a.conn, Conn::Up);
    a.update(Action::PollFailed {
        message: "cannot connect".into(),
        retry_in: Duration::from_secs(2),
    });
    assert_eq!(
        a.conn,
        Conn::Down {
            message: "cannot connect".into(),
            retry_at_ms: Some(NOW + 2000)
        }
    );
    assert!(a.snapshot.is_some(), "the last data stays on screen");
    a.update(Action::EventsDown("closed".into()));
    assert!(matches!(a.events_conn, Conn::Down { .. }));
    let h = a.rate_history("proxy:internal-services/orders");
    assert_eq!(h.len(), 10);
    assert_eq!((h[0], h[9]), (0.0, 30.0));
    for _ in 0..100 {
        a.update(Action::Snapshot(Box::new(fixture::snap(1.0))));
    }
    assert_eq!(a.conn, Conn::Up);
    assert_eq!(
        a.rate_history("proxy:internal-services/orders").len(),
        RATE_SAMPLES
    );
    assert_eq!(a.server_rates.len(), RATE_SAMPLES);
    // Rows that went away lose their history.
    let mut s = fixture::snap(1.0);
    s.proxies.clear();
    a.update(Action::Snapshot(Box::new(s)));
    assert!(a.rate_history("proxy:internal-services/orders").is_empty());
}

#[test]
fn ops_without_a_selection_say_why() {
    let mut a = App::new(
        Options {
            url: "u".into(),
            read_only: false,
            refresh: Duration::from_secs(1),
        },
        NOW,
    );
    assert!(a.update(Action::Op(Op::Reload)).is_empty());
    assert_eq!(status(&a), "nothing selected");
}

#[test]
fn columns_sort_with_shift_letters_and_reverse_on_repeat() {
    let mut a = app();
    typed(&mut a, "2");
    let names = |a: &App| -> Vec<String> { a.objects().iter().map(|o| o.label()).collect() };
    let server_order = names(&a);
    let rate_of = |a: &App| -> Vec<f64> {
        a.objects()
            .iter()
            .map(|o| o.rate().unwrap_or(f64::NEG_INFINITY))
            .collect()
    };
    typed(&mut a, "R");
    let rates = rate_of(&a);
    assert!(
        rates.windows(2).all(|w| w[0] >= w[1]),
        "highest req/s first: {rates:?}"
    );
    assert!(status(&a).contains("sorted by req/s"), "{}", status(&a));
    typed(&mut a, "R");
    let rates = rate_of(&a);
    assert!(
        rates.windows(2).all(|w| w[0] <= w[1]),
        "reversed: {rates:?}"
    );
    typed(&mut a, "N");
    let mut sorted = server_order.clone();
    sorted.sort();
    assert_eq!(names(&a), sorted);
    typed(&mut a, "N");
    sorted.reverse();
    assert_eq!(names(&a), sorted);
    // The selection follows its row, and each list keeps its own sort.
    typed(&mut a, "g");
    let first = selected(&a);
    typed(&mut a, "N");
    assert_eq!(selected(&a), first);
    typed(&mut a, "1");
    let units: Vec<String> = a.objects().iter().map(|o| o.name.clone()).collect();
    typed(&mut a, "2");
    assert_eq!(a.sort.get(&ListId::View(View::Units)), None);
    assert_eq!(units.len(), 4);
}

#[test]
fn w_taps_the_selected_proxy_until_its_popup_closes() {
    let mut a = app();
    // Not on a proxy: nothing starts.
    assert!(typed(&mut a, "w").is_empty());
    assert!(status(&a).contains("select one"), "{}", status(&a));
    typed(&mut a, "2g");
    let effects = typed(&mut a, "w");
    let id = match effects.as_slice() {
        [Effect::Tap {
            id,
            unit,
            name,
            consumer: false,
        }] => {
            assert_eq!((unit.as_str(), name.as_str()), ("default", "echo"));
            *id
        }
        e => panic!("{e:?}"),
    };
    match &a.mode {
        Mode::Popup(p) => {
            assert_eq!(p.title, "tap proxy default/echo");
            assert!(p.tap_waiting());
        }
        m => panic!("{m:?}"),
    }
    let record = |path: &str| {
        json!({"time": NOW, "unit": "default", "proxy": "echo", "revision": 3,
               "method": "GET", "path": path, "status": 200, "latency_us": 120, "steps": []})
    };
    a.update(Action::TapRecord {
        id,
        record: record("/echo/1"),
    });
    // A record of another tap does not land here.
    a.update(Action::TapRecord {
        id: id + 100,
        record: record("/elsewhere"),
    });
    a.update(Action::TapRecord {
        id,
        record: record("/echo/2"),
    });
    match &a.mode {
        Mode::Popup(p) => {
            let text: Vec<String> = p.lines.iter().map(plain).collect();
            assert_eq!(text.len(), 2, "{text:?}");
            assert!(text[0].contains("GET /echo/1 200"), "{text:?}");
            assert!(text[1].contains("GET /echo/2 200"), "{text:?}");
        }
        m => panic!("{m:?}"),
    }
    // Esc closes the popup and stops the tap.
    assert_eq!(key(&mut a, KeyCode::Esc), vec![Effect::Untap { id }]);
    assert_eq!(a.mode, Mode::Normal);
    // Switching the view from a tap stops it too.
    let id = match typed(&mut a, "w").as_slice() {
        [Effect::Tap { id, .. }] => *id,
        e => panic!("{e:?}"),
    };
    assert_eq!(key(&mut a, KeyCode::Tab), vec![Effect::Untap { id }]);
    assert_eq!(a.view, View::Endpoints);
    // Read-only consoles may tap (it changes nothing).
    a.opts.read_only = true;
    typed(&mut a, "2");
    assert!(matches!(
        typed(&mut a, "w").as_slice(),
        [Effect::Tap { .. }]
    ));
    a.update(Action::TapEnded {
        id: a.next_job - 1,
        message: "the server closed the stream".into(),
    });
    match &a.mode {
        Mode::Popup(p) => {
            assert_eq!(p.tap, None);
            assert!(plain(p.lines.last().unwrap()).contains("tap ended"));
        }
        m => panic!("{m:?}"),
    }
}
