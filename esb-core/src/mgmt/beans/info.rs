//! List metadata of every bean type: attributes with types and descriptions, operations
//! with their arguments, so a generic JMX console can render them. Also the one table of
//! which operations only read (`with_read_op`: diff, history, validate) and which change
//! state (`with_op`): the audit and the fail-closed check go by it (`beans::changes_state`).

use super::Bean;
use deployments::protocol::MBeanInfo;

pub fn info(bean: &Bean) -> MBeanInfo {
    let counters = |i: MBeanInfo| {
        i.with_attr("Requests", "long", "requests served", false)
            .with_attr(
                "RequestsPerSecond",
                "long",
                "requests in the last second",
                false,
            )
            .with_attr(
                "Errors",
                "long",
                "requests answered with a 5xx status",
                false,
            )
            .with_attr("InFlight", "long", "requests in progress", false)
    };
    let latency = |i: MBeanInfo| {
        i.with_attr("P50Micros", "long", "median latency (µs)", false)
            .with_attr("P99Micros", "long", "99th percentile latency (µs)", false)
    };
    let s = "java.lang.String";
    let none: &[(&str, &str, &str)] = &[];
    let unit_arg = [("unit", s, "unit name")];
    match bean {
        Bean::Server => counters(MBeanInfo::new("The ESB server"))
            .with_attr("Name", s, "server name", false)
            .with_attr("Version", s, "esb version", false)
            .with_attr("State", s, "Running or Maintenance", false)
            .with_attr("UptimeSeconds", "long", "seconds since start", false)
            .with_attr("Units", "int", "units loaded", false)
            .with_attr("Proxies", "int", "proxies active", false)
            .with_attr(
                "HotDeploy",
                "boolean",
                "whether the hot deployer watches the deployments directory",
                true,
            )
            .with_op(
                "maintenance",
                &[(
                    "on",
                    "boolean",
                    "true: /health answers 503 so load balancers drain",
                )],
                "void",
                "server maintenance on/off",
            )
            .with_op(
                "restart",
                none,
                "java.lang.Object",
                "warm restart as a transaction: re-read and check esb.toml and every unit against it, bind new listeners, keep unchanged ones open; answers the outcome once the new configuration serves",
            )
            .with_op(
                "upgrade",
                none,
                "java.lang.Object",
                "binary upgrade: start the binary at this process's path on the same listening sockets; once it serves, this process drains and exits",
            ),
        Bean::Manager => MBeanInfo::new("Deploys, reloads and rolls back units")
            .with_attr("Units", "[Ljava.lang.String;", "units loaded", false)
            .with_attr(
                "UnitsOnDisk",
                "[Ljava.lang.String;",
                "unit directories on disk",
                false,
            )
            .with_attr("HotDeploy", "boolean", "hot deployer on/off", true)
            .with_attr("DeploymentsDir", s, "directory of the units", false)
            .with_attr(
                "Draining",
                "[Ljava.lang.Object;",
                "revisions still finishing requests",
                false,
            )
            .with_op(
                "load",
                &unit_arg,
                "java.lang.Object",
                "load a unit from disk",
            )
            .with_op("unload", &unit_arg, "java.lang.Object", "unload a unit")
            .with_op(
                "reload",
                &unit_arg,
                "java.lang.Object",
                "reload a unit from disk",
            )
            .with_op(
                "reloadAll",
                none,
                "[Ljava.lang.Object;",
                "reload every changed unit, load new, unload removed",
            )
            .with_op(
                "batch",
                &[("units", "[Ljava.lang.String;", "unit names")],
                "[Ljava.lang.Object;",
                "load/reload several units from disk, all-or-nothing, one swap",
            )
            .with_op(
                "unloadBatch",
                &[("units", "[Ljava.lang.String;", "unit names")],
                "[Ljava.lang.Object;",
                "unload several units at once",
            )
            .with_op(
                "deploy",
                &[
                    ("unit", s, "unit name"),
                    (
                        "content",
                        "java.lang.Object",
                        "TOML of unit.toml, or an object of files (path → text): unit.toml and its includes",
                    ),
                ],
                "java.lang.Object",
                "deploy a unit from content; it becomes a pushed unit, kept in state_dir and left alone by reloads from disk",
            )
            .with_op(
                "canary",
                &[
                    ("unit", s, "unit name"),
                    ("percent", "double", "share of requests for the canary (0-100)"),
                    ("header", s, "NAME=VALUE: exactly the requests with this header go to the canary (empty: by weight)"),
                    ("sticky", s, "request header whose value keeps a client on one side (e.g. cookie; empty: by turns)"),
                ],
                "java.lang.Object",
                "start a canary of the unit's files beside the running revision",
            )
            .with_op(
                "canaryContent",
                &[
                    ("unit", s, "unit name"),
                    ("content", "java.lang.Object", "as for deploy"),
                    ("percent", "double", "share of requests for the canary (0-100)"),
                    ("header", s, "NAME=VALUE, or empty"),
                    ("sticky", s, "sticky key header, or empty"),
                ],
                "java.lang.Object",
                "start a canary of pushed content beside the running revision",
            )
            .with_op("promote", &unit_arg, "java.lang.Object", "make the canary the running revision (the old one drains)")
            .with_op("abortCanary", &unit_arg, "java.lang.Object", "drop the canary; the running revision serves alone")
            .with_op(
                "setCanaryWeight",
                &[("unit", s, "unit name"), ("percent", "double", "new share (0-100)")],
                "java.lang.Object",
                "change the canary's share of requests",
            )
            .with_op(
                "deployFromDisk",
                &unit_arg,
                "java.lang.Object",
                "deploy a unit from its directory, also a pushed one (which becomes a disk unit again)",
            )
            .with_op(
                "source",
                &[
                    ("unit", s, "unit name"),
                    ("revision", "long", "a kept revision; 0 or null: the active one"),
                ],
                "java.lang.Object",
                "the exact files of the active or a kept revision",
            )
            .with_read_op(
                "validate",
                &unit_arg,
                "java.lang.Object",
                "validate a unit's files on disk against the running server",
            )
            .with_read_op(
                "validateContent",
                &[
                    ("unit", s, "unit name"),
                    ("content", s, "TOML of unit.toml"),
                ],
                "java.lang.Object",
                "validate content",
            )
            .with_read_op(
                "diff",
                &unit_arg,
                "java.lang.Object",
                "what a reload from disk would change",
            )
            .with_read_op(
                "diffContent",
                &[
                    ("unit", s, "unit name"),
                    ("content", s, "TOML of unit.toml"),
                ],
                "java.lang.Object",
                "what deploying content would change",
            )
            .with_read_op(
                "history",
                &unit_arg,
                "[Ljava.lang.Object;",
                "revisions kept for rollback",
            )
            .with_read_op(
                "validateChecks",
                &unit_arg,
                "java.lang.Object",
                "build a unit's files and run its checks against that build, deploying nothing",
            )
            .with_op(
                "rollback",
                &unit_arg,
                "java.lang.Object",
                "re-activate the previous revision",
            )
            .with_op(
                "rollbackTo",
                &[
                    ("unit", s, "unit name"),
                    ("revision", "long", "revision number"),
                ],
                "java.lang.Object",
                "re-activate a revision from history",
            )
            .with_op(
                "cancelDrain",
                &[
                    ("unit", s, "unit name (also of an unloaded unit)"),
                    (
                        "revision",
                        "long",
                        "draining revision to end; 0 = every one",
                    ),
                ],
                "[Ljava.lang.Object;",
                "end a drain now: leftover requests get 503",
            )
            .with_op(
                "setHotDeploy",
                &[("enabled", "boolean", "on/off")],
                "void",
                "switch the hot deployer",
            ),
        Bean::Transport(_) => counters(MBeanInfo::new("An HTTP(S) listener"))
            .with_attr("State", s, "Started, Paused or Stopped", false)
            .with_attr("Kind", s, "http or https", false)
            .with_attr("Bind", s, "listen address", false)
            .with_attr("Connections", "long", "client connections open now", false)
            .with_attr(
                "MaxConnections",
                "long",
                "connection cap; at it the listener stops accepting",
                false,
            )
            .with_op(
                "pause",
                none,
                "void",
                "stop accepting; clients wait until resume",
            )
            .with_op("resume", none, "void", "accept again")
            .with_op(
                "stop",
                none,
                "void",
                "close the listener and release the port",
            )
            .with_op("start", none, "void", "bind the port again"),
        Bean::Unit(_) => counters(MBeanInfo::new("A deployment unit"))
            .with_attr("State", s, "Active, Paused or Failed", false)
            .with_attr("Revision", "long", "active revision", false)
            .with_attr("Label", s, "the unit's version label", false)
            .with_attr("Hash", s, "SHA-256 of the active revision's files", false)
            .with_attr(
                "DeployedAt",
                "long",
                "activation time (ms since epoch)",
                false,
            )
            .with_attr(
                "DeployMillis",
                "double",
                "how long the deploy took, from the start of its transaction until its commit began (the fsyncs of the commit are not counted)",
                false,
            )
            .with_attr(
                "Degraded",
                "boolean",
                "running the last-good copy because the files on disk are invalid",
                false,
            )
            .with_attr(
                "ModifiedOnDisk",
                "boolean",
                "files on disk differ from the active revision",
                false,
            )
            .with_attr(
                "Origin",
                "java.lang.String",
                "where the unit's files come from: disk (its directory) or pushed (content sent over the management endpoint, kept in state_dir)",
                false,
            )
            .with_attr(
                "Draining",
                "[Ljava.lang.Object;",
                "older revisions still finishing requests",
                false,
            )
            .with_attr("Proxies", "[Ljava.lang.String;", "proxy names", false)
            .with_attr("Sequences", "[Ljava.lang.String;", "sequence names", false)
            .with_attr("Endpoints", "[Ljava.lang.String;", "endpoint names", false)
            .with_attr("Tasks", "[Ljava.lang.String;", "task names", false)
            .with_attr("Consumers", "[Ljava.lang.String;", "consumer names", false)
            .with_attr(
                "LastErrors",
                "[Ljava.lang.Object;",
                "errors of the last rejected deploy",
                false,
            )
            .with_op("reload", none, "java.lang.Object", "reload from disk")
            .with_op("unload", none, "java.lang.Object", "unload")
            .with_op("pause", none, "void", "new requests get 503")
            .with_op(
                "pauseHold",
                &[(
                    "holdMillis",
                    "long",
                    "how long new requests wait for a resume",
                )],
                "void",
                "new requests wait, then 503",
            )
            .with_op(
                "resume",
                none,
                "void",
                "serve again, releasing held requests",
            )
            .with_op(
                "rollback",
                none,
                "java.lang.Object",
                "re-activate the previous revision",
            )
            .with_op(
                "rollbackTo",
                &[("revision", "long", "revision number")],
                "java.lang.Object",
                "re-activate a revision",
            )
            .with_read_op(
                "diff",
                none,
                "java.lang.Object",
                "what a reload would change",
            )
            .with_read_op(
                "validate",
                none,
                "java.lang.Object",
                "validate the files on disk",
            )
            .with_read_op("history", none, "[Ljava.lang.Object;", "revisions kept")
            .with_op(
                "cancelDrain",
                &[(
                    "revision",
                    "long",
                    "draining revision to end; 0 = every one",
                )],
                "[Ljava.lang.Object;",
                "end a drain now: leftover requests get 503",
            )
            .with_op(
                "setFlag",
                &[
                    ("flag", s, "a flag declared in the unit's [flags]"),
                    ("on", "boolean", "its new value"),
                ],
                "void",
                "flip a runtime flag without a deploy (kept across reloads and restarts)",
            )
            .with_attr(
                "Flags",
                "java.lang.Object",
                "runtime flags and their values",
                false,
            )
            .with_attr(
                "Canary",
                "java.lang.Object",
                "the canary beside the running revision: revision, percent or header, its own requests, errors and p99 (null when none)",
                false,
            )
            .with_attr(
                "GuardTripped",
                s,
                "why the unit's guard rolled its last new revision back (null if it did not)",
                false,
            ),
        Bean::Proxy(..) => latency(counters(MBeanInfo::new("A proxy service")))
            .with_attr("State", s, "Active, Paused or Stopped", false)
            .with_attr("Path", s, "path prefix", false)
            .with_attr(
                "Methods",
                "[Ljava.lang.String;",
                "allowed methods (empty: any)",
                false,
            )
            .with_attr(
                "Transports",
                "[Ljava.lang.String;",
                "transports (empty: all)",
                false,
            )
            .with_attr("Endpoint", s, "default endpoint", false)
            .with_attr("Revision", "long", "unit revision", false)
            .with_op("pause", none, "void", "answer 503 with Retry-After")
            .with_op("resume", none, "void", "serve again")
            .with_op("stop", none, "void", "answer 404 as if not deployed")
            .with_op("start", none, "void", "serve again"),
        Bean::Sequence(..) => MBeanInfo::new("A mediation sequence")
            .with_attr("Steps", "int", "number of steps", false)
            .with_attr(
                "StepKinds",
                "[Ljava.lang.String;",
                "kind of each step",
                false,
            ),
        Bean::Endpoint(..) => latency(counters(MBeanInfo::new("A backend endpoint")))
            .with_attr("State", s, "Active or Maintenance", false)
            .with_attr("Strategy", s, "failover, round-robin or weighted", false)
            .with_attr("TimeoutMillis", "long", "exchange timeout", false)
            .with_attr(
                "Addresses",
                "[Ljava.lang.Object;",
                "addresses with state and counters",
                false,
            )
            .with_op(
                "pause",
                none,
                "void",
                "maintenance: fail fast into the fault sequence",
            )
            .with_op("resume", none, "void", "end maintenance")
            .with_op(
                "addAddress",
                &[("url", s, "http(s) URL")],
                "void",
                "add an address",
            )
            .with_op(
                "removeAddress",
                &[("url", s, "address URL")],
                "void",
                "remove an address",
            )
            .with_op(
                "suspendAddress",
                &[("url", s, "address URL")],
                "void",
                "take an address out of rotation",
            )
            .with_op(
                "activateAddress",
                &[("url", s, "address URL")],
                "void",
                "put an address back",
            ),
        Bean::Task(..) => MBeanInfo::new("A scheduled task")
            .with_attr("State", s, "Scheduled, Running or Paused", false)
            .with_attr("EveryMillis", "long", "period", false)
            .with_attr("Sequence", s, "sequence run", false)
            .with_attr("Runs", "long", "completed runs", false)
            .with_attr("Failures", "long", "failed runs", false)
            .with_attr("LastRun", "long", "last run (ms since epoch)", false)
            .with_attr("LastError", s, "error of the last run", false)
            .with_op("pause", none, "void", "skip scheduled runs")
            .with_op("resume", none, "void", "run on schedule again")
            .with_op("runNow", none, "void", "run once now"),
        Bean::Cluster => super::cluster::info(),
        Bean::Consumer(..) => MBeanInfo::new("A message (amqp) or file consumer")
            .with_attr(
                "State",
                s,
                "Connecting, Connected, Disconnected (amqp), Running (file), Paused or Stopped",
                false,
            )
            .with_attr("Reason", s, "why it is Disconnected, Paused or Stopped", false)
            .with_attr("Kind", s, "amqp or file", false)
            .with_attr("Source", s, "transport/queue, or the inbox directory", false)
            .with_attr("Sequence", s, "sequence each message runs through", false)
            .with_attr("Endpoint", s, "endpoint each message is sent to", false)
            .with_attr("Received", "long", "messages (files) taken", false)
            .with_attr("Acked", "long", "messages acknowledged (files moved to done)", false)
            .with_attr("Retried", "long", "failed attempts that were tried again", false)
            .with_attr("DeadLettered", "long", "messages dead-lettered (files moved to failed)", false)
            .with_attr("Redelivered", "long", "messages received with the redelivered flag (files resumed after a restart)", false)
            .with_attr("InFlight", "long", "messages being processed", false)
            .with_attr("Reconnects", "long", "failed connection attempts and lost connections", false)
            .with_attr("QueueDepth", "long", "messages (files) waiting, refreshed every 2s (null: unknown)", false)
            .with_op("pause", none, "void", "stop consuming; messages wait in the queue or inbox")
            .with_op("resume", none, "void", "consume again")
            .with_op("stop", none, "void", "stop consuming and close the connection")
            .with_op("start", none, "void", "start again (also after a stop caused by an error)"),
    }
}
