use super::*;
use crate::present::output::Style;
use serde_json::json;

fn plain(o: &Output) -> String {
    o.render(Style::PLAIN)
}

#[test]
fn events_render_one_line_each_with_errors_below() {
    let evs = vec![
        Event {
            id: Some("1".into()),
            kind: "unit_activated".into(),
            data: json!({
            "id":1,"time":1_714_565_584_123u64,"type":"unit_activated","unit":"orders","revision":4,
            "hash":"h","label":"1.2.0","duration_ms":3.1,"changes":"+0 ~1 -0","degraded":false}),
        },
        Event {
            id: Some("2".into()),
            kind: "unit_rejected".into(),
            data: json!({
            "id":2,"time":1_714_565_585_000u64,"type":"unit_rejected","unit":"orders",
            "errors":[{"file":"u.toml","line":3,"col":5,"message":"bad"}]}),
        },
        Event {
            id: Some("3".into()),
            kind: "state_changed".into(),
            data: json!({
            "id":3,"time":1_714_565_586_000u64,"type":"state_changed","object":"esb:name=list,type=Proxy,unit=orders","state":"Paused"}),
        },
        Event {
            id: None,
            kind: "custom".into(),
            data: json!({"x": 1}),
        },
    ];
    let out = events(&evs);
    assert_eq!(
        plain(&out),
        "\
12:13:04.123  unit_activated    orders revision 4 (1.2.0) in 3.1 ms, +0 ~1 -0
12:13:05.000  unit_rejected     orders: bad
    u.toml:3:5: bad
12:13:06.000  state_changed     proxy orders/list → Paused
              custom            {\"x\":1}
"
    );
    assert_eq!(out.json[3], json!({"x": 1, "type": "custom"}));
    assert_eq!(plain(&events(&[])), "no events\n");
    assert_eq!(object_label("esb:type=Server"), "server");
    assert_eq!(
        object_label("esb:name=http-8280,type=Transport"),
        "transport http-8280"
    );
    assert_eq!(
        object_label("esb:name=b,type=Endpoint,unit=o address http://x"),
        "endpoint o/b address http://x"
    );
    assert_eq!(object_label("not a bean"), "not a bean");
    let e = Event {
        id: Some("9".into()),
        kind: "k".into(),
        data: json!("text"),
    };
    assert_eq!(e.to_json(), json!({"data": "text", "type": "k", "id": 9}));
}
