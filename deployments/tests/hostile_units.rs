//! Hostile and arbitrary unit files: parsing and validation never panic, never recurse
//! without bound and finish in bounded work, whatever the bytes. Deep nesting that TOML
//! allows is refused with a located error instead of overflowing a stack.

use deployments::{parse_unit, validate::validate_unit, RootConfig, UnitSources};
use proptest::prelude::*;
use std::path::Path;

fn root() -> RootConfig {
    RootConfig::parse(
        "[[transport]]\nname = \"http-a\"\nbind = \"127.0.0.1:18280\"\n",
        "esb.toml",
        Path::new("."),
    )
    .unwrap()
}

/// Parses and validates; returns the error messages (empty when valid).
fn check(text: &str) -> Vec<String> {
    match parse_unit(&UnitSources::from_content("u", text)) {
        Ok(parsed) => validate_unit(&root(), &parsed)
            .iter()
            .map(|d| d.to_string())
            .collect(),
        Err(errors) => errors.iter().map(|d| d.to_string()).collect(),
    }
}

/// Runs `f` on a thread with a small stack, so unbounded recursion fails the test instead
/// of passing on a big main-thread stack.
const STACK: usize = 2 << 20;
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no panic or stack overflow")
}

#[test]
fn deeply_nested_filters_are_an_error_not_a_crash() {
    for depth in [10usize, 100, 1_000, 20_000] {
        let mut steps = String::from("{ log = \"x\" }");
        for _ in 0..depth {
            steps = format!(
                "{{ filter = {{ on = \"${{method}}\", equals = \"GET\", then = [{steps}] }} }}"
            );
        }
        let text = format!("[[sequence]]\nname = \"s\"\nsteps = [{steps}]\n");
        let errors = on_small_stack(move || check(&text));
        if depth > 64 {
            assert!(!errors.is_empty(), "depth {depth} accepted");
        }
    }
}

#[test]
fn deeply_nested_arrays_and_tables_are_an_error_not_a_crash() {
    for (open, close) in [("[", "]"), ("{ a = ", " }")] {
        let text = format!(
            "[[sequence]]\nname = \"s\"\nsteps = [{{ transform = {{ body = {}1{} }} }}]\n",
            open.repeat(50_000),
            close.repeat(50_000)
        );
        let errors = on_small_stack(move || check(&text));
        assert!(!errors.is_empty());
    }
}

/// Fragments of real units, so that random combinations reach deep into the parser.
const PIECES: &[&str] = &[
    "[[proxy]]\n",
    "[[sequence]]\n",
    "[[endpoint]]\n",
    "[[task]]\n",
    "name = \"p\"\n",
    "name = \"s\"\n",
    "path = \"/p\"\n",
    "endpoint = \"e\"\n",
    "sequence = \"s\"\n",
    "addresses = [\"http://127.0.0.1:9\"]\n",
    "steps = [{ switch = { on = \"${header.x}\", cases = { a = \"s\" }, default = \"e\" } }]\n",
    "steps = [{ filter = { on = \"${json./a}\", exists = true, then = [{ respond = { status = 200 } }] } }]\n",
    "steps = [{ transform = { body = { a = \"${json./x/y}\" } } }]\n",
    "include = [\"other.toml\"]\n",
    "version = \"1\"\n",
    "every = \"1s\"\n",
    "timeout = \"0s\"\n",
    "= \"\n",
    "[",
    "]",
    "{",
    "}",
    "\"${",
    "\u{0}",
    "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = check(&text);
    }

    #[test]
    fn arbitrary_unit_like_text_never_panics(picks in proptest::collection::vec(0..PIECES.len(), 0..40)) {
        let text: String = picks.iter().map(|&i| PIECES[i]).collect();
        let _ = check(&text);
    }
}
