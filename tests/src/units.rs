//! Unit texts shared by several end-to-end test files.

/// A unit whose proxy `hello` answers `body` itself on `path`, labelled `version`.
pub fn answer_unit(path: &str, body: &str, version: &str) -> String {
    format!(
        r#"version = "{version}"

[[proxy]]
name = "hello"
path = "{path}"
sequence = "say"

[[sequence]]
name = "say"
steps = [{{ respond = {{ status = 200, body = "{body}" }} }}]
"#
    )
}
