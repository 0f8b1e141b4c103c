use super::*;

#[test]
fn sse_parser_builds_events() {
    let mut p = SseParser::default();
    let mut out = Vec::new();
    for l in [
        ": hello",
        "retry: 1000",
        "id: 7",
        "event: unit_activated",
        "data: {\"unit\":\"orders\",",
        "data: \"revision\":4}",
        "",
        "",
        "data:x",
        "\r",
    ] {
        if let Some(e) = p.feed(l) {
            out.push(e);
        }
    }
    assert_eq!(
        out,
        vec![
            SseEvent {
                id: Some("7".into()),
                event: "unit_activated".into(),
                data: "{\"unit\":\"orders\",\n\"revision\":4}".into()
            },
            SseEvent {
                id: None,
                event: "message".into(),
                data: "x".into()
            }
        ]
    );
}

#[test]
fn event_stream_reads_until_close_even_without_final_blank_line() {
    let text = "id: 1\nevent: a\ndata: {}\n\nid: 2\nevent: b\ndata: {}\n";
    let s = EventStream::from_reader(
        "u",
        Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
    );
    let evs: Vec<_> = s.map(|e| e.unwrap().event).collect();
    assert_eq!(evs, vec!["a", "b"]);
}
