//! Help text of the command language: one entry per verb (usage, summary, details, examples),
//! used by `help` ([`crate::present::help`] renders it), by usage errors and by the TUI.
//! docs/uterm.md follows this table.

/// Help for one verb.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub verb: &'static str,
    /// Usage lines, one form per line.
    pub usage: &'static str,
    pub summary: &'static str,
    pub details: &'static str,
    pub examples: &'static [&'static str],
}

pub const ENTRIES: &[Entry] = &[
    Entry {
        verb: "status",
        usage: "status",
        summary: "server state, uptime, counters and every unit",
        details: "Shows the server (name, version, state, uptime, hot deploy), its totals, one \
                  row per unit, units on disk that are not loaded, and revisions still draining.",
        examples: &["status"],
    },
    Entry {
        verb: "list",
        usage: "list units|proxies|endpoints|transports|tasks|consumers [UNIT]",
        summary: "a table of the objects of one kind",
        details: "Proxies, endpoints, tasks and consumers can be limited to one unit. `list` \
                  alone lists the units. Consumers show their state (Connected, Disconnected \
                  with the reason, Paused, Stopped), counters and queue depth.",
        examples: &["list units", "list proxies orders", "list transports", "list consumers"],
    },
    Entry {
        verb: "show",
        usage: "show [unit] UNIT\nshow proxy|endpoint|task|sequence UNIT/NAME\nshow transport NAME\nshow source UNIT [--rev N] [--out DIR]",
        summary: "every attribute of one object, or the exact files of a revision",
        details: "A bare name is a unit. Endpoint addresses are shown as a table. `show source` \
                  prints the files of the active revision (or kept revision N) exactly as they \
                  run, to compare with version control; --out DIR writes them into DIR.",
        examples: &[
            "show orders",
            "show proxy orders/list",
            "show endpoint orders/backend",
            "show source orders --rev 3 --out /tmp/orders-r3",
        ],
    },
    Entry {
        verb: "load",
        usage: "load UNIT...",
        summary: "deploy units from the server's deployments directory",
        details: "Several units are one atomic batch: all are activated in one swap, or none \
                  is. Prints each outcome: revision, what changed, how long it took, or every \
                  error with file:line:col.",
        examples: &["load orders", "load orders billing"],
    },
    Entry {
        verb: "unload",
        usage: "unload UNIT...",
        summary: "take units out of service (their in-flight requests finish)",
        details: "Several units are one atomic batch. Operator state (paused, stopped, \
                  maintenance) of an unloaded unit is cleared.",
        examples: &["unload orders"],
    },
    Entry {
        verb: "reload",
        usage: "reload UNIT...\nreload --all",
        summary: "re-read units from disk and activate what changed",
        details: "Only elements whose definition changed are rebuilt; the old revision keeps \
                  serving if anything is wrong. Several units are one atomic batch; --all \
                  reloads every changed unit (like SIGHUP). A rejected reload exits 1.",
        examples: &["reload orders", "reload orders billing", "reload --all"],
    },
    Entry {
        verb: "deploy",
        usage: "deploy UNIT --file FILE\ndeploy UNIT --dir DIR\ndeploy UNIT --from-disk\ndeploy UNIT --file FILE | --dir DIR --cluster [--wait DURATION]\ndeploy UNIT --canary P% | --canary-header NAME=VALUE [--sticky HEADER] [--file FILE | --dir DIR]",
        summary: "deploy a unit from local files (sent to the server), or from the server's disk",
        details: "--file sends FILE as the unit's unit.toml together with every file it \
                  includes (read beside FILE); --dir sends every file of a unit directory. The \
                  unit becomes a pushed unit: the server keeps it in its state directory, \
                  restores it at start-up, and reloads from disk (reload --all, SIGHUP, the hot \
                  deployer) leave it alone. --from-disk deploys the server's own directory of \
                  the unit, and a pushed unit becomes a disk unit again. With --cluster the \
                  content becomes the unit's next revision on every node of the cluster \
                  (validated first; see `cluster`).",
        examples: &[
            "deploy orders --file build/orders/unit.toml --cluster --wait 30s",
            "deploy orders --file build/orders/unit.toml",
            "deploy orders --dir build/orders",
            "deploy orders --from-disk",
        ],
    },
    Entry {
        verb: "validate",
        usage: "validate UNIT [--file FILE]\nvalidate UNIT --checks\nvalidate --dir DIR",
        summary: "check a unit without deploying it",
        details: "`validate UNIT` asks the server to check the unit's files on its disk (or, \
                  with --file, the given unit.toml) against what is running. `validate --dir` \
                  works offline: DIR is a conf directory (with esb.toml) or one unit directory \
                  (checked against DIR/../../esb.toml). `validate UNIT --checks` also builds the \
                  unit's files on the server and runs its [[check]]s against that build, \
                  deploying nothing. Exits 1 when anything is invalid.",
        examples: &[
            "validate orders",
            "validate --dir conf",
            "validate --dir conf/deployments/orders",
        ],
    },
    Entry {
        verb: "diff",
        usage: "diff UNIT [--file FILE]",
        summary: "what a reload would change: running revision vs disk (or FILE)",
        details: "Element by element and field by field.",
        examples: &["diff orders"],
    },
    Entry {
        verb: "history",
        usage: "history UNIT",
        summary: "the revisions of a unit kept for rollback",
        details: "Revision, content hash, label, when and how fast it was deployed; the active \
                  one is marked.",
        examples: &["history orders"],
    },
    Entry {
        verb: "rollback",
        usage: "rollback UNIT [--to REV]",
        summary: "re-activate the previous (or a named) revision",
        details: "Instant: the kept revision is activated without reading the disk.",
        examples: &["rollback orders", "rollback orders --to 3", "rollback orders --cluster --to 3"],
    },
    Entry {
        verb: "drain",
        usage: "drain cancel UNIT [--rev REV]",
        summary: "end a stuck drain now: leftover requests of old revisions get 503",
        details: "Replaced revisions finish their requests until [server] drain_timeout; this \
                  ends the drain of REV (or of every draining revision of UNIT) at once. The \
                  requests still running answer 503 naming the drain, so clients retry on the \
                  active revision. `show UNIT` lists what is draining.",
        examples: &["drain cancel orders", "drain cancel orders --rev 3"],
    },
    Entry {
        verb: "pause",
        usage: "pause [unit] UNIT [--hold MS]\npause proxy|endpoint|task|consumer UNIT/NAME\npause transport NAME",
        summary: "pause an object (resume undoes it)",
        details: "A paused unit or proxy answers 503 with Retry-After; with --hold a paused \
                  unit holds new requests up to MS (also 500ms, 2s, 1m) and releases them on \
                  resume. A paused endpoint is in maintenance (fails fast into the fault \
                  sequence). A paused transport stops accepting; clients wait. A paused task \
                  does not run. A paused consumer (or a consumer of a paused unit or amqp \
                  transport) stops consuming: in-flight messages finish, the rest wait in \
                  the queue or the inbox.",
        examples: &[
            "pause orders",
            "pause unit orders --hold 5s",
            "pause endpoint orders/backend",
            "pause consumer orders/orders-in",
        ],
    },
    Entry {
        verb: "resume",
        usage: "resume [unit] UNIT\nresume proxy|endpoint|task|consumer UNIT/NAME\nresume transport NAME",
        summary: "undo pause",
        details: "Held requests of a unit are released.",
        examples: &["resume orders", "resume transport http-8280"],
    },
    Entry {
        verb: "stop",
        usage: "stop proxy|consumer UNIT/NAME\nstop transport NAME",
        summary: "stop a proxy (404), a consumer (connection closed) or a transport (port released)",
        details: "start undoes it; start also restarts a consumer that stopped by itself (an \
                  inbox whose done directory could not be written).",
        examples: &["stop proxy orders/list", "stop transport http-8281"],
    },
    Entry {
        verb: "start",
        usage: "start proxy|consumer UNIT/NAME\nstart transport NAME",
        summary: "start a stopped proxy, consumer or transport",
        details: "",
        examples: &["start proxy orders/list"],
    },
    Entry {
        verb: "suspend",
        usage: "suspend address UNIT/ENDPOINT URL",
        summary: "take one address of an endpoint out of rotation",
        details: "activate puts it back.",
        examples: &["suspend address orders/backend http://127.0.0.1:9001"],
    },
    Entry {
        verb: "activate",
        usage: "activate address UNIT/ENDPOINT URL",
        summary: "put a suspended address back into rotation",
        details: "",
        examples: &["activate address orders/backend http://127.0.0.1:9001"],
    },
    Entry {
        verb: "add",
        usage: "add address UNIT/ENDPOINT URL",
        summary: "add an address to an endpoint at runtime",
        details: "Runtime only: the unit's files are not changed, and a reload of a changed \
                  endpoint restores the configured addresses.",
        examples: &["add address orders/backend http://127.0.0.1:9002"],
    },
    Entry {
        verb: "remove",
        usage: "remove address UNIT/ENDPOINT URL",
        summary: "remove an address from an endpoint at runtime",
        details: "The last address cannot be removed.",
        examples: &["remove address orders/backend http://127.0.0.1:9002"],
    },
    Entry {
        verb: "run",
        usage: "run task UNIT/TASK",
        summary: "run a scheduled task now",
        details: "",
        examples: &["run task default/heartbeat"],
    },
    Entry {
        verb: "maintenance",
        usage: "maintenance on|off",
        summary: "server maintenance: /health answers 503 so load balancers drain",
        details: "Traffic is still served; only the health check changes.",
        examples: &["maintenance on", "maintenance off"],
    },
    Entry {
        verb: "promote",
        usage: "promote UNIT",
        summary: "make a unit's canary its running revision (the old one drains)",
        details: "Start a canary with `deploy UNIT --canary 10%` (or `--canary-header NAME=VALUE`, \
                  `--sticky HEADER` to keep a client on one side). While it runs, every answer \
                  carries x-esb-revision, and `show UNIT` shows the canary's own requests, errors \
                  and p99. Its [guard], if any, is watched the whole time and aborts it.",
        examples: &["promote orders"],
    },
    Entry {
        verb: "abort",
        usage: "abort UNIT",
        summary: "drop a unit's canary; the running revision serves alone",
        details: "",
        examples: &["abort orders"],
    },
    Entry {
        verb: "canary",
        usage: "canary UNIT PERCENT%",
        summary: "change the share of requests a unit's canary takes",
        details: "",
        examples: &["canary orders 50%"],
    },
    Entry {
        verb: "flag",
        usage: "flag UNIT NAME on|off",
        summary: "flip a runtime flag of a unit without a deploy",
        details: "Flags are declared with their defaults in the unit's [flags] table and read \
                  by steps as ${flag.NAME} (e.g. a filter). A flip takes effect at once, is \
                  kept across reloads and restarts (operator state) and audited; the unit's \
                  Flags attribute (show UNIT) shows every value.",
        examples: &["flag orders beta on"],
    },
    Entry {
        verb: "restart",
        usage: "restart",
        summary: "warm restart: re-read esb.toml without stopping the process",
        details: "A transaction: the new esb.toml and every running unit against it are \
                  checked and new listeners bound first; on any error nothing changes and the \
                  command fails (exit 1) with every error. Listeners whose bind did not \
                  change stay open, so no connection is refused. Returns once the new \
                  configuration serves, with what changed.",
        examples: &["restart"],
    },
    Entry {
        verb: "upgrade",
        usage: "upgrade",
        summary: "binary upgrade: the esb binary at the server's path takes over its sockets",
        details: "The server starts the binary at the path it was started from (replace the \
                  file first) on the same listening sockets; once the new process serves, \
                  the old one drains and exits. If the new binary fails to start, the old one \
                  keeps serving and the command fails (exit 1). The same as SIGUSR2.",
        examples: &["upgrade"],
    },
    Entry {
        verb: "hot-deploy",
        usage: "hot-deploy [on|off]",
        summary: "switch hot deployment (the directory watcher) on or off, or show it",
        details: "",
        examples: &["hot-deploy off", "hot-deploy"],
    },
    Entry {
        verb: "events",
        usage: "events [--follow] [--recent N]",
        summary: "recent deployment and state events, or follow them live",
        details: "Without --follow prints the last N (default 50) events the server keeps. \
                  With --follow prints each new event until interrupted (Ctrl-C), \
                  reconnecting and resuming where it left off if the connection drops. \
                  With --json each event is one JSON line.",
        examples: &["events", "events --follow"],
    },
    Entry {
        verb: "tap",
        usage: "tap PROXY [--unit UNIT] [--limit N]\ntap UNIT/PROXY [--limit N]\n\
                tap consumer UNIT/CONSUMER [--limit N]",
        summary: "one line per request of a proxy (message of a consumer) as it completes, live",
        details: "Streams every finished request of the proxy: time, method, path, status, \
                  latency, revision, the steps that ran with their decisions (which filter \
                  branch, which switch case), the endpoint address that answered and its \
                  latency, and the fault if any. The server records requests only while \
                  someone taps. Stops after N requests with --limit, else at Ctrl-C. With \
                  --json each request is one JSON line. `tap consumer` streams each attempt \
                  of a consumer at a message instead: its queue or inbox, message id or file \
                  name, outcome (ack, retry, dead-letter) and attempt, with the same latency, \
                  revision, steps, address and fault.",
        examples: &[
            "tap internal-services/orders",
            "tap orders --limit 10",
            "tap consumer files/inbox",
        ],
    },
    Entry {
        verb: "beans",
        usage: "beans [PATTERN]",
        summary: "names of the managed objects (MBeans)",
        details: "PATTERN is an MBean pattern such as esb:type=Proxy,* or a text the names \
                  must contain (case-insensitive). Without it: every bean in domain esb.",
        examples: &["beans", "beans esb:type=Endpoint,*", "beans orders"],
    },
    Entry {
        verb: "get",
        usage: "get BEAN [ATTRIBUTE...]",
        summary: "read attributes of a bean (all without names)",
        details: "BEAN is an MBean name; the esb: domain may be left out (type=Server). A \
                  pattern reads every matching bean.",
        examples: &["get esb:type=Server", "get type=Server UptimeSeconds"],
    },
    Entry {
        verb: "set",
        usage: "set BEAN ATTRIBUTE VALUE",
        summary: "write a writable attribute",
        details: "VALUE is JSON when it parses as a number, boolean, null, array or object, \
                  else a string; write '\"42\"' for the string 42.",
        examples: &["set esb:type=Server HotDeploy false"],
    },
    Entry {
        verb: "exec",
        usage: "exec BEAN OPERATION [ARGUMENT...]",
        summary: "run an operation of a bean",
        details: "Arguments follow the rule of `set` values.",
        examples: &[
            "exec esb:type=DeploymentManager reload orders",
            "exec esb:type=DeploymentManager batch '[\"orders\",\"billing\"]'",
        ],
    },
    Entry {
        verb: "info",
        usage: "info BEAN",
        summary: "the attributes and operations of a bean, with types",
        details: "What `get`, `set` and `exec` can do with the bean (from the Jolokia list).",
        examples: &["info esb:type=DeploymentManager", "info type=Server"],
    },
    Entry {
        verb: "help",
        usage: "help [COMMAND]",
        summary: "the commands, or the details of one",
        details: "",
        examples: &["help", "help reload"],
    },
    Entry {
        verb: "publish",
        usage: "publish UNIT [--wait DURATION]",
        summary: "this node's disk files of a unit become its cluster revision",
        details: "Moves a disk unit to cluster mode: the files under the node's \
                  conf/deployments/UNIT are validated and written to the cluster store as the \
                  unit's next revision, which every node applies. Waits up to --wait (10s) for \
                  every live node; exit 1 naming the nodes that failed or timed out.",
        examples: &["publish orders"],
    },
    Entry {
        verb: "cluster",
        usage: "cluster status\n(deploy|unload|rollback|pause|resume) UNIT ... --cluster [--wait DURATION]",
        summary: "nodes × units of the cluster, and cluster-wide operations",
        details: "`cluster status` shows each cluster unit's revision and, per node, SYNCED, \
                  PENDING, FAILED (with the error) or DOWN, and the store's health. With \
                  --cluster, deploy/unload/rollback/pause/resume act on every node through the \
                  cluster store (compare-and-swap: a concurrent change is refused with \
                  \"concurrent deploy of UNIT, retry\"), waiting up to --wait (default 10s, 0 = \
                  no wait) for every live node; exit 1 names the nodes that failed or timed \
                  out. A rollback rolls forward: the old content becomes a new revision.",
        examples: &["cluster status"],
    },
];

/// The help entry of a verb.
pub fn entry(verb: &str) -> Option<&'static Entry> {
    let verb = verb.to_ascii_lowercase();
    ENTRIES.iter().find(|e| e.verb == verb)
}

/// The usage lines of a verb.
pub fn usage(verb: &str) -> Option<&'static str> {
    entry(verb).map(|e| e.usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::command::VERBS;
    use crate::lang::parse::parse;

    #[test]
    fn every_verb_has_help_and_every_example_parses() {
        for v in VERBS {
            assert!(entry(v).is_some(), "no help for {v}");
        }
        assert_eq!(ENTRIES.len(), VERBS.len());
        for e in ENTRIES {
            for ex in e.examples {
                let cmd = parse(ex).unwrap_or_else(|err| panic!("{ex}: {err}"));
                assert_eq!(cmd.verb(), e.verb, "{ex}");
            }
        }
    }
}
