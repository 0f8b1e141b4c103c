use super::*;
use crate::present::output::Style;
use serde_json::json;

const NOW: u64 = 1_714_565_584_000;

fn plain(o: &Output) -> String {
    o.render(Style::PLAIN)
}

#[test]
fn activated_outcome_shows_revision_changes_and_duration() {
    let v = json!({"outcome":"activated","unit":"orders","revision":4,"hash":"sha256:0123456789abcdef","label":"1.2.0","duration_ms":3.12,
        "diff":{"unit":"orders","changes":[
            {"kind":"proxy","name":"list","change":"changed","fields":[{"field":"path","old":"/a","new":"/b"}]},
            {"kind":"endpoint","name":"backend","change":"changed","fields":[
                {"field":"timeout","old":"5s","new":"2s"},{"field":"strategy","old":"failover","new":"round-robin"}]},
            {"kind":"task","name":"ping","change":"added"},
            {"kind":"sequence","name":"old","change":"removed"}]}});
    let (out, failed) = outcomes(&v);
    assert!(!failed);
    assert_eq!(
        plain(&out),
        "\
activated orders: revision 4 (label 1.2.0, hash 0123456789ab) in 3.1 ms  +1 ~2 -1
    ~ proxy list: path: \"/a\" → \"/b\"
    ~ endpoint backend
        timeout: \"5s\" → \"2s\"
        strategy: \"failover\" → \"round-robin\"
    + task ping
    - sequence old
"
    );
    assert_eq!(out.json, v);
}

#[test]
fn rejected_outcome_lists_every_error_with_location() {
    let v = json!({"outcome":"rejected","unit":"orders","errors":[
        {"file":"conf/deployments/orders/unit.toml","line":7,"col":12,"element":"proxy \"list\"","message":"endpoint \"ordrs\" not found","hint":"did you mean \"orders\"?"},
        {"file":"conf/deployments/orders/unit.toml","line":9,"col":1,"message":"unknown key `pth`"}]});
    let (out, failed) = outcomes(&v);
    assert!(failed);
    assert_eq!(
        plain(&out),
        "\
rejected orders: 2 errors; nothing changed, the running revision keeps serving
    conf/deployments/orders/unit.toml:7:12: proxy \"list\": endpoint \"ordrs\" not found; did you mean \"orders\"?
    conf/deployments/orders/unit.toml:9:1: unknown key `pth`
"
    );
}

#[test]
fn other_outcomes_and_batches() {
    let (o, f) = outcomes(&json!({"outcome":"unchanged","unit":"orders","revision":4}));
    assert!(!f);
    assert_eq!(
        plain(&o),
        "unchanged orders: revision 4 already matches the files\n"
    );
    let (o, _) = outcomes(&json!({"outcome":"unloaded","unit":"orders","revision":4}));
    assert_eq!(plain(&o), "unloaded orders: revision 4 drains and stops\n");
    let batch = json!([
        {"outcome":"rejected","unit":"a","errors":[]},
        {"outcome":"rejected","unit":"b","errors":[{"file":"f","line":1,"col":2,"message":"m"}]}]);
    let (o, f) = outcomes(&batch);
    assert!(f);
    let t = plain(&o);
    assert!(t.contains("rejected a: not applied"), "{t}");
    assert!(t.contains("    f:1:2: m"), "{t}");
    assert!(
        t.ends_with("the batch is all-or-nothing: no unit was changed\n"),
        "{t}"
    );
    let (o, f) = outcomes(&json!([]));
    assert!(!f);
    assert_eq!(plain(&o), "nothing to do\n");
    // An unknown shape with errors counts as a failure.
    assert!(outcome_failed(
        &json!({"unit":"x","errors":[{"message":"m"}]})
    ));
    assert!(!outcome_failed(&json!({"unit":"x"})));
}

#[test]
fn validation_diff_and_history() {
    let (o, ok) = validation(&json!({"unit":"orders","valid":true}));
    assert!(ok);
    assert_eq!(plain(&o), "valid orders\n");
    let (o, ok) = validation(
        &json!({"unit":"orders","valid":false,"errors":[{"file":"u.toml","line":1,"col":1,"message":"bad"}]}),
    );
    assert!(!ok);
    assert_eq!(plain(&o), "invalid orders: 1 error\n    u.toml:1:1: bad\n");

    let (o, ok) = diff(&json!({"unit":"orders","diff":{"unit":"orders","changes":[]},"text":""}));
    assert!(ok);
    assert_eq!(
        plain(&o),
        "no changes: orders on disk matches the running revision\n"
    );
    let (o, _) = diff(&json!({"unit":"orders","diff":{"unit":"orders","changes":[
        {"kind":"proxy","name":"list","change":"changed","fields":[{"field":"path","old":"/a","new":"/b"}]}]}}));
    assert_eq!(
        plain(&o),
        "orders: +0 ~1 -0 (a reload would apply this)\n~ proxy list: path: \"/a\" → \"/b\"\n"
    );
    let (o, _) = diff(&json!({"unit":"orders","text":"~ proxy list\n  path /a -> /b"}));
    assert_eq!(plain(&o), "~ proxy list\n  path /a -> /b\n");
    let (o, ok) =
        diff(&json!({"unit":"orders","errors":[{"file":"u","line":2,"col":3,"message":"m"}]}));
    assert!(!ok);
    assert!(plain(&o).contains("u:2:3: m"));

    let h = history(
        "orders",
        &json!([
        {"revision":3,"hash":"sha256:aaaaaaaaaaaaaaaa","label":"1.1","deployed_at":NOW - 3_600_000,"deploy_ms":4.2,"active":false},
        {"revision":4,"hash":"bbbbbbbbbbbbbbbb","label":null,"deployed_at":NOW - 60_000,"deploy_ms":2.0,"active":true}]),
        NOW,
    );
    assert_eq!(
        plain(&h),
        "\
REV  ACTIVE  HASH          LABEL  DEPLOYED                            TOOK
  3          aaaaaaaaaaaa  1.1    2024-05-01 11:13:04 UTC (1h ago)  4.2 ms
  4  *       bbbbbbbbbbbb         2024-05-01 12:12:04 UTC (1m ago)  2.0 ms
"
    );
    assert_eq!(
        plain(&history("x", &json!([]), NOW)),
        "no revisions of x kept\n"
    );
}
