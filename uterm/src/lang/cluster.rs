//! Cluster commands of the language: `deploy U --file F --cluster`, `publish U`,
//! `unload U --cluster`, `rollback U --cluster [--to N]`, `pause|resume U --cluster` (each
//! with `--wait DURATION`, default 10s; `--wait 0` does not wait) and `cluster status`.
//! Parsed here from the words [`crate::lang::parse`] split, into a [`ClusterCmd`].

use std::path::PathBuf;

use crate::lang::args::{parse_millis, parse_revision, unit_name, Args};
use crate::lang::command::{Command, DeployFrom};
use crate::lang::error::UsageError;

/// How long a cluster change waits for the nodes unless `--wait` says otherwise.
pub const DEFAULT_WAIT_MS: u64 = 10_000;

/// The flags cluster commands add to `deploy`, `unload`, `rollback`, `pause` and `resume`.
pub const FLAGS: [(&str, bool); 2] = [("--cluster", false), ("--wait", true)];

#[derive(Debug, Clone, PartialEq)]
pub enum ClusterCmd {
    Status,
    Deploy {
        unit: String,
        from: DeployFrom,
        wait_ms: u64,
    },
    Publish {
        unit: String,
        wait_ms: u64,
    },
    Unload {
        unit: String,
        wait_ms: u64,
    },
    Rollback {
        unit: String,
        to: Option<u64>,
        wait_ms: u64,
    },
    Pause {
        unit: String,
        paused: bool,
        wait_ms: u64,
    },
}

impl ClusterCmd {
    /// The verb it is written with.
    pub fn verb(&self) -> &'static str {
        match self {
            ClusterCmd::Status => "cluster",
            ClusterCmd::Deploy { .. } => "deploy",
            ClusterCmd::Publish { .. } => "publish",
            ClusterCmd::Unload { .. } => "unload",
            ClusterCmd::Rollback { .. } => "rollback",
            ClusterCmd::Pause { paused: true, .. } => "pause",
            ClusterCmd::Pause { .. } => "resume",
        }
    }
}

/// The cluster command `verb` with `a` is, if it is one (`--cluster`, `publish`, `cluster`).
pub(crate) fn parse(verb: &str, a: &Args) -> Option<Result<Command, UsageError>> {
    let clustered = a.has("--cluster") || matches!(verb, "publish" | "cluster");
    if !clustered {
        return a
            .has("--wait")
            .then(|| Err(a.usage("--wait belongs to cluster operations: add --cluster")));
    }
    Some(cluster(verb, a).map(Command::Cluster))
}

fn cluster(verb: &str, a: &Args) -> Result<ClusterCmd, UsageError> {
    let wait_ms = match a.value("--wait") {
        Some(w) => parse_millis(w).map_err(|m| a.usage(m))?,
        None => DEFAULT_WAIT_MS,
    };
    if verb == "cluster" {
        if a.words != ["status"] {
            return Err(a.usage("cluster takes `status`"));
        }
        return Ok(ClusterCmd::Status);
    }
    a.exactly(1, "one unit name")?;
    let unit = unit_name(a, a.words[0])?;
    Ok(match verb {
        "deploy" => {
            let from = match (a.value("--file"), a.value("--dir")) {
                (Some(f), None) => DeployFrom::File(PathBuf::from(f)),
                (None, Some(d)) => DeployFrom::Dir(PathBuf::from(d)),
                _ => {
                    return Err(a.usage(
                        "deploy --cluster needs one of --file FILE and --dir DIR (to make this node's disk files the cluster revision: `publish UNIT`)",
                    ))
                }
            };
            if a.has("--from-disk") || a.has("--canary") || a.has("--canary-header") {
                return Err(
                    a.usage("--cluster deploys content: --from-disk and canaries are local")
                );
            }
            ClusterCmd::Deploy {
                unit,
                from,
                wait_ms,
            }
        }
        "publish" => ClusterCmd::Publish { unit, wait_ms },
        "unload" => ClusterCmd::Unload { unit, wait_ms },
        "rollback" => ClusterCmd::Rollback {
            unit,
            to: a
                .value("--to")
                .map(|v| parse_revision(v).map_err(|m| a.usage(m)))
                .transpose()?,
            wait_ms,
        },
        "pause" | "resume" => {
            if a.has("--hold") {
                return Err(a.usage("--hold is for a local pause"));
            }
            ClusterCmd::Pause {
                unit,
                paused: verb == "pause",
                wait_ms,
            }
        }
        _ => return Err(a.usage(format!("{verb} has no --cluster form"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::parse::parse_args;

    fn parse(words: &[&str]) -> Result<Command, UsageError> {
        parse_args(words)
    }

    #[test]
    fn cluster_forms_parse() {
        assert_eq!(
            parse(&[
                "deploy",
                "shop",
                "--file",
                "u.toml",
                "--cluster",
                "--wait",
                "2s"
            ])
            .unwrap(),
            Command::Cluster(ClusterCmd::Deploy {
                unit: "shop".into(),
                from: DeployFrom::File("u.toml".into()),
                wait_ms: 2000
            })
        );
        assert_eq!(
            parse(&["rollback", "shop", "--cluster", "--to", "3"]).unwrap(),
            Command::Cluster(ClusterCmd::Rollback {
                unit: "shop".into(),
                to: Some(3),
                wait_ms: DEFAULT_WAIT_MS
            })
        );
        assert_eq!(
            parse(&["resume", "shop", "--cluster", "--wait", "0"]).unwrap(),
            Command::Cluster(ClusterCmd::Pause {
                unit: "shop".into(),
                paused: false,
                wait_ms: 0
            })
        );
        assert_eq!(
            parse(&["cluster", "status"]).unwrap(),
            Command::Cluster(ClusterCmd::Status)
        );
        assert!(!parse(&["cluster", "status"]).unwrap().changes_state());
        assert!(parse(&["publish", "shop"]).unwrap().changes_state());
        // The local forms are untouched.
        assert_eq!(
            parse(&["unload", "shop"]).unwrap(),
            Command::Unload(vec!["shop".into()])
        );
    }

    #[test]
    fn cluster_misuse_says_what_to_do() {
        let e = parse(&["deploy", "shop", "--from-disk", "--cluster"]).unwrap_err();
        assert!(e.to_string().contains("publish UNIT"), "{e}");
        let e = parse(&["pause", "shop", "--wait", "1s"]).unwrap_err();
        assert!(e.to_string().contains("add --cluster"), "{e}");
        let e = parse(&["cluster", "stats"]).unwrap_err();
        assert!(e.to_string().contains("cluster takes `status`"), "{e}");
        let e = parse(&["publish", "a", "b"]).unwrap_err();
        assert!(e.to_string().contains("one unit name"), "{e}");
    }
}
