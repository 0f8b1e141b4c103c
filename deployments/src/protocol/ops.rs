//! Every management operation with its typed arguments: one enum per bean kind, declared
//! once with its wire name, argument names, types and descriptions, return type, impact and
//! description. From that one declaration come the enum, the list metadata ([`OpSpec`]),
//! decoding an `exec` ([`Operation::decode`]) and encoding one ([`Operation::arguments`]).
//! Adding an operation is one line here; the compiler then shows every place that handles it.

use super::args::{AddressUrl, ArgKind, ArgValue, Content, Names, Percent, RevisionOrActive};
use super::beans::{Bean, BeanKind};
use super::cluster::{DeployArgs, RollbackArgs, UnitArgs};
use super::{Impact, ManagementError, ObjectName};
use serde_json::Value;

/// Return type names of the list metadata.
const VOID: &str = "void";
const OBJECT: &str = "java.lang.Object";
const OBJECTS: &str = "[Ljava.lang.Object;";

/// Metadata of one operation argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    pub name: &'static str,
    /// JMX type name.
    pub type_: &'static str,
    pub kind: ArgKind,
    pub desc: &'static str,
}

/// Metadata of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    pub name: &'static str,
    pub args: &'static [ArgSpec],
    /// JMX type name of the value answered.
    pub ret: &'static str,
    pub impact: Impact,
    pub desc: &'static str,
}

/// Decodes argument `n` (1-based) named `name`.
fn arg<T: ArgValue>(v: Option<&Value>, n: usize, name: &str) -> Result<T, ManagementError> {
    T::decode(v).map_err(|why| ManagementError::BadRequest(format!("argument {n} ({name}){why}")))
}

macro_rules! operations {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $variant:ident $op:literal
                    ( $( $field:ident : $ty:ty = $arg:literal $argdesc:literal ),* $(,)? )
                    -> $ret:expr, $impact:ident, $desc:literal;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( #[doc = $desc] $variant { $( $field: $ty ),* }, )*
        }

        impl $name {
            /// Metadata of every operation of the kind.
            pub const SPECS: &'static [OpSpec] = &[
                $( OpSpec {
                    name: $op,
                    args: &[ $( ArgSpec {
                        name: $arg,
                        type_: <$ty as ArgValue>::TYPE,
                        kind: <$ty as ArgValue>::KIND,
                        desc: $argdesc,
                    } ),* ],
                    ret: $ret,
                    impact: Impact::$impact,
                    desc: $desc,
                }, )*
            ];

            /// The wire name.
            pub fn name(&self) -> &'static str {
                match self { $( $name::$variant { .. } => $op, )* }
            }

            /// The arguments as sent in an `exec`.
            pub fn arguments(&self) -> Vec<Value> {
                match self {
                    $( $name::$variant { $( $field ),* } => vec![ $( ArgValue::encode($field) ),* ], )*
                }
            }

            /// The operation `op` with `args` (their number already checked), `None` if the
            /// kind has no such operation.
            fn decode_args(op: &str, args: &[Value]) -> Result<Option<Self>, ManagementError> {
                #[allow(unused_mut, unused_variables)]
                let mut it = args.iter();
                #[allow(unused_mut, unused_variables)]
                let mut n = 0;
                Ok(Some(match op {
                    $( $op => $name::$variant {
                        $( $field: { n += 1; arg::<$ty>(it.next(), n, $arg)? } ),*
                    }, )*
                    _ => return Ok(None),
                }))
            }
        }
    };
}

operations! {
    /// Operations of `esb:type=Server`.
    pub enum ServerOp {
        Maintenance "maintenance" (on: bool = "on" "true: /health answers 503 so load balancers drain")
            -> VOID, Action, "server maintenance on/off";
        Restart "restart" ()
            -> OBJECT, Action, "warm restart as a transaction: re-read and check esb.toml and every unit against it, bind new listeners, keep unchanged ones open; answers the outcome once the new configuration serves";
        Upgrade "upgrade" ()
            -> OBJECT, Action, "binary upgrade: start the binary at this process's path on the same listening sockets; once it serves, this process drains and exits";
    }
}

operations! {
    /// Operations of `esb:type=DeploymentManager`.
    pub enum ManagerOp {
        Load "load" (unit: String = "unit" "unit name") -> OBJECT, Action, "load a unit from disk";
        Unload "unload" (unit: String = "unit" "unit name") -> OBJECT, Action, "unload a unit";
        Reload "reload" (unit: String = "unit" "unit name") -> OBJECT, Action, "reload a unit from disk";
        ReloadAll "reloadAll" () -> OBJECTS, Action, "reload every changed unit, load new, unload removed";
        Batch "batch" (units: Names = "units" "unit names")
            -> OBJECTS, Action, "load/reload several units from disk, all-or-nothing, one swap";
        UnloadBatch "unloadBatch" (units: Names = "units" "unit names")
            -> OBJECTS, Action, "unload several units at once";
        Deploy "deploy" (
            unit: String = "unit" "unit name",
            content: Content = "content" "TOML of unit.toml, or an object of files (path → text): unit.toml and its includes",
        ) -> OBJECT, Action, "deploy a unit from content; it becomes a pushed unit, kept in state_dir and left alone by reloads from disk";
        Canary "canary" (
            unit: String = "unit" "unit name",
            percent: Percent = "percent" "share of requests for the canary (0-100)",
            header: Option<String> = "header" "NAME=VALUE: exactly the requests with this header go to the canary (empty: by weight)",
            sticky: Option<String> = "sticky" "request header whose value keeps a client on one side (e.g. cookie; empty: by turns)",
        ) -> OBJECT, Action, "start a canary of the unit's files beside the running revision";
        CanaryContent "canaryContent" (
            unit: String = "unit" "unit name",
            content: Content = "content" "as for deploy",
            percent: Percent = "percent" "share of requests for the canary (0-100)",
            header: Option<String> = "header" "NAME=VALUE, or empty",
            sticky: Option<String> = "sticky" "sticky key header, or empty",
        ) -> OBJECT, Action, "start a canary of pushed content beside the running revision";
        Promote "promote" (unit: String = "unit" "unit name")
            -> OBJECT, Action, "make the canary the running revision (the old one drains)";
        AbortCanary "abortCanary" (unit: String = "unit" "unit name")
            -> OBJECT, Action, "drop the canary; the running revision serves alone";
        SetCanaryWeight "setCanaryWeight" (
            unit: String = "unit" "unit name",
            percent: Percent = "percent" "new share (0-100)",
        ) -> OBJECT, Action, "change the canary's share of requests";
        DeployFromDisk "deployFromDisk" (unit: String = "unit" "unit name")
            -> OBJECT, Action, "deploy a unit from its directory, also a pushed one (which becomes a disk unit again)";
        Source "source" (
            unit: String = "unit" "unit name",
            revision: RevisionOrActive = "revision" "a kept revision; 0 or null: the active one",
        ) -> OBJECT, Action, "the exact files of the active or a kept revision";
        Validate "validate" (unit: String = "unit" "unit name")
            -> OBJECT, Info, "validate a unit's files on disk against the running server";
        ValidateContent "validateContent" (
            unit: String = "unit" "unit name",
            content: Content = "content" "TOML of unit.toml, or an object of files (path → text)",
        ) -> OBJECT, Info, "validate content";
        Diff "diff" (unit: String = "unit" "unit name")
            -> OBJECT, Info, "what a reload from disk would change";
        DiffContent "diffContent" (
            unit: String = "unit" "unit name",
            content: Content = "content" "TOML of unit.toml, or an object of files (path → text)",
        ) -> OBJECT, Info, "what deploying content would change";
        History "history" (unit: String = "unit" "unit name")
            -> OBJECTS, Info, "revisions kept for rollback";
        ValidateChecks "validateChecks" (unit: String = "unit" "unit name")
            -> OBJECT, Info, "build a unit's files and run its checks against that build, deploying nothing";
        Rollback "rollback" (unit: String = "unit" "unit name")
            -> OBJECT, Action, "re-activate the previous revision";
        RollbackTo "rollbackTo" (
            unit: String = "unit" "unit name",
            revision: u64 = "revision" "revision number",
        ) -> OBJECT, Action, "re-activate a revision from history";
        CancelDrain "cancelDrain" (
            unit: String = "unit" "unit name (also of an unloaded unit)",
            revision: u64 = "revision" "draining revision to end; 0 = every one",
        ) -> OBJECTS, Action, "end a drain now: leftover requests get 503";
        SetHotDeploy "setHotDeploy" (enabled: bool = "enabled" "on/off")
            -> VOID, Action, "switch the hot deployer";
    }
}

operations! {
    /// Operations of `esb:type=Transport` (HTTP(S) listeners and AMQP links).
    pub enum TransportOp {
        Pause "pause" () -> VOID, Action, "stop accepting; clients wait until resume";
        Resume "resume" () -> VOID, Action, "accept again";
        Stop "stop" () -> VOID, Action, "close the listener and release the port";
        Start "start" () -> VOID, Action, "bind the port again";
    }
}

operations! {
    /// Operations of `esb:type=Unit`.
    pub enum UnitOp {
        Reload "reload" () -> OBJECT, Action, "reload from disk";
        Unload "unload" () -> OBJECT, Action, "unload";
        Pause "pause" () -> VOID, Action, "new requests get 503";
        PauseHold "pauseHold" (hold_millis: u64 = "holdMillis" "how long new requests wait for a resume")
            -> VOID, Action, "new requests wait, then 503";
        Resume "resume" () -> VOID, Action, "serve again, releasing held requests";
        Rollback "rollback" () -> OBJECT, Action, "re-activate the previous revision";
        RollbackTo "rollbackTo" (revision: u64 = "revision" "revision number")
            -> OBJECT, Action, "re-activate a revision";
        Diff "diff" () -> OBJECT, Info, "what a reload would change";
        Validate "validate" () -> OBJECT, Info, "validate the files on disk";
        History "history" () -> OBJECTS, Info, "revisions kept";
        CancelDrain "cancelDrain" (revision: u64 = "revision" "draining revision to end; 0 = every one")
            -> OBJECTS, Action, "end a drain now: leftover requests get 503";
        SetFlag "setFlag" (
            flag: String = "flag" "a flag declared in the unit's [flags]",
            on: bool = "on" "its new value",
        ) -> VOID, Action, "flip a runtime flag without a deploy (kept across reloads and restarts)";
    }
}

operations! {
    /// Operations of `esb:type=Proxy`.
    pub enum ProxyOp {
        Pause "pause" () -> VOID, Action, "answer 503 with Retry-After";
        Resume "resume" () -> VOID, Action, "serve again";
        Stop "stop" () -> VOID, Action, "answer 404 as if not deployed";
        Start "start" () -> VOID, Action, "serve again";
    }
}

operations! {
    /// Operations of `esb:type=Endpoint`.
    pub enum EndpointOp {
        Pause "pause" () -> VOID, Action, "maintenance: fail fast into the fault sequence";
        Resume "resume" () -> VOID, Action, "end maintenance";
        AddAddress "addAddress" (url: AddressUrl = "url" "http(s) URL") -> VOID, Action, "add an address";
        RemoveAddress "removeAddress" (url: AddressUrl = "url" "address URL") -> VOID, Action, "remove an address";
        SuspendAddress "suspendAddress" (url: AddressUrl = "url" "address URL")
            -> VOID, Action, "take an address out of rotation";
        ActivateAddress "activateAddress" (url: AddressUrl = "url" "address URL") -> VOID, Action, "put an address back";
    }
}

operations! {
    /// Operations of `esb:type=Task`.
    pub enum TaskOp {
        Pause "pause" () -> VOID, Action, "skip scheduled runs";
        Resume "resume" () -> VOID, Action, "run on schedule again";
        RunNow "runNow" () -> VOID, Action, "run once now";
    }
}

operations! {
    /// Operations of `esb:type=Consumer`.
    pub enum ConsumerOp {
        Pause "pause" () -> VOID, Action, "stop consuming; messages wait in the queue or inbox";
        Resume "resume" () -> VOID, Action, "consume again";
        Stop "stop" () -> VOID, Action, "stop consuming and close the connection";
        Start "start" () -> VOID, Action, "start again (also after a stop caused by an error)";
    }
}

operations! {
    /// Operations of `esb:type=Cluster` (cluster mode; see [`super::cluster`]).
    pub enum ClusterOp {
        Deploy "deploy" (args: DeployArgs = "args" "{\"unit\": U, \"files\": {path: text}, \"wait_ms\": N}")
            -> OBJECT, Action, "validate here, then write the content as the unit's next cluster revision (compare-and-swap)";
        Publish "publish" (args: UnitArgs = "args" "{\"unit\": U, \"wait_ms\": N}")
            -> OBJECT, Action, "this node's disk files of the unit become its cluster revision";
        Unload "unload" (args: UnitArgs = "args" "{\"unit\": U, \"wait_ms\": N}")
            -> OBJECT, Action, "unload the unit on every node";
        Rollback "rollback" (args: RollbackArgs = "args" "{\"unit\": U, \"to\": N, \"wait_ms\": N}")
            -> OBJECT, Action, "the content of a kept cluster revision (default: the previous) becomes a new revision";
        Pause "pause" (args: UnitArgs = "args" "{\"unit\": U, \"wait_ms\": N}")
            -> OBJECT, Action, "pause the unit on every node (kept in the store)";
        Resume "resume" (args: UnitArgs = "args" "{\"unit\": U, \"wait_ms\": N}")
            -> OBJECT, Action, "resume the unit on every node";
        Status "status" () -> OBJECT, Info, "nodes × units with each node's sync state, and the store's health";
    }
}

/// One operation on a bean, with its arguments. Sequences have no operations.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Server(ServerOp),
    Manager(ManagerOp),
    Transport(TransportOp),
    Unit(UnitOp),
    Proxy(ProxyOp),
    Endpoint(EndpointOp),
    Task(TaskOp),
    Consumer(ConsumerOp),
    Cluster(ClusterOp),
}

/// The operation name without a signature: Jolokia clients may send `op(java.lang.String)`.
pub fn bare_name(operation: &str) -> &str {
    operation.split('(').next().unwrap_or(operation)
}

impl Operation {
    /// Metadata of every operation of `kind`.
    pub fn specs(kind: BeanKind) -> &'static [OpSpec] {
        match kind {
            BeanKind::Server => ServerOp::SPECS,
            BeanKind::Manager => ManagerOp::SPECS,
            BeanKind::Transport => TransportOp::SPECS,
            BeanKind::Unit => UnitOp::SPECS,
            BeanKind::Proxy => ProxyOp::SPECS,
            BeanKind::Sequence => &[],
            BeanKind::Endpoint => EndpointOp::SPECS,
            BeanKind::Task => TaskOp::SPECS,
            BeanKind::Consumer => ConsumerOp::SPECS,
            BeanKind::Cluster => ClusterOp::SPECS,
        }
    }

    /// Metadata of the operation `operation` (with or without a signature) of `kind`.
    pub fn spec(kind: BeanKind, operation: &str) -> Option<&'static OpSpec> {
        let name = bare_name(operation);
        Operation::specs(kind).iter().find(|s| s.name == name)
    }

    /// The operation an `exec` on `mbean` (a bean of `kind`) names, with its arguments
    /// decoded: an unknown operation, a wrong number of arguments or an argument of the
    /// wrong type is an error that says so.
    pub fn decode(
        kind: BeanKind,
        mbean: &ObjectName,
        operation: &str,
        args: &[Value],
    ) -> Result<Operation, ManagementError> {
        let name = bare_name(operation);
        let Some(spec) = Operation::spec(kind, name) else {
            return Err(ManagementError::no_such_operation(
                mbean,
                name,
                Operation::specs(kind).iter().map(|s| s.name),
            ));
        };
        if spec.args.len() != args.len() {
            return Err(ManagementError::WrongArgumentCount {
                mbean: mbean.original(),
                operation: name.into(),
                expected: spec.args.len(),
                given: args.len(),
            });
        }
        let decoded = match kind {
            BeanKind::Server => ServerOp::decode_args(name, args).map(|r| r.map(Operation::Server)),
            BeanKind::Manager => {
                ManagerOp::decode_args(name, args).map(|r| r.map(Operation::Manager))
            }
            BeanKind::Transport => {
                TransportOp::decode_args(name, args).map(|r| r.map(Operation::Transport))
            }
            BeanKind::Unit => UnitOp::decode_args(name, args).map(|r| r.map(Operation::Unit)),
            BeanKind::Proxy => ProxyOp::decode_args(name, args).map(|r| r.map(Operation::Proxy)),
            BeanKind::Sequence => Ok(None),
            BeanKind::Endpoint => {
                EndpointOp::decode_args(name, args).map(|r| r.map(Operation::Endpoint))
            }
            BeanKind::Task => TaskOp::decode_args(name, args).map(|r| r.map(Operation::Task)),
            BeanKind::Consumer => {
                ConsumerOp::decode_args(name, args).map(|r| r.map(Operation::Consumer))
            }
            BeanKind::Cluster => {
                ClusterOp::decode_args(name, args).map(|r| r.map(Operation::Cluster))
            }
        };
        decoded?.ok_or_else(|| ManagementError::no_such_operation(mbean, name, std::iter::empty()))
    }

    /// The kind of bean the operation applies to.
    pub fn kind(&self) -> BeanKind {
        match self {
            Operation::Server(_) => BeanKind::Server,
            Operation::Manager(_) => BeanKind::Manager,
            Operation::Transport(_) => BeanKind::Transport,
            Operation::Unit(_) => BeanKind::Unit,
            Operation::Proxy(_) => BeanKind::Proxy,
            Operation::Endpoint(_) => BeanKind::Endpoint,
            Operation::Task(_) => BeanKind::Task,
            Operation::Consumer(_) => BeanKind::Consumer,
            Operation::Cluster(_) => BeanKind::Cluster,
        }
    }

    /// The wire name.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Server(o) => o.name(),
            Operation::Manager(o) => o.name(),
            Operation::Transport(o) => o.name(),
            Operation::Unit(o) => o.name(),
            Operation::Proxy(o) => o.name(),
            Operation::Endpoint(o) => o.name(),
            Operation::Task(o) => o.name(),
            Operation::Consumer(o) => o.name(),
            Operation::Cluster(o) => o.name(),
        }
    }

    /// The arguments as sent in an `exec`.
    pub fn arguments(&self) -> Vec<Value> {
        match self {
            Operation::Server(o) => o.arguments(),
            Operation::Manager(o) => o.arguments(),
            Operation::Transport(o) => o.arguments(),
            Operation::Unit(o) => o.arguments(),
            Operation::Proxy(o) => o.arguments(),
            Operation::Endpoint(o) => o.arguments(),
            Operation::Task(o) => o.arguments(),
            Operation::Consumer(o) => o.arguments(),
            Operation::Cluster(o) => o.arguments(),
        }
    }

    pub fn spec_of(&self) -> &'static OpSpec {
        Operation::spec(self.kind(), self.name()).expect("every operation has metadata")
    }

    /// Whether running it may change server state (what is audited, and refused while the
    /// audit log cannot be written).
    pub fn changes_state(&self) -> bool {
        self.spec_of().impact.changes_state()
    }

    /// Whether its effect is operator state that must survive a restart: runtime control of
    /// objects, and unloads (which clear it).
    pub fn changes_operator_state(&self) -> bool {
        match self {
            Operation::Server(o) => match o {
                ServerOp::Maintenance { .. } => true,
                ServerOp::Restart {} | ServerOp::Upgrade {} => false,
            },
            Operation::Manager(o) => match o {
                ManagerOp::Unload { .. } | ManagerOp::UnloadBatch { .. } => true,
                ManagerOp::Load { .. }
                | ManagerOp::Reload { .. }
                | ManagerOp::ReloadAll {}
                | ManagerOp::Batch { .. }
                | ManagerOp::Deploy { .. }
                | ManagerOp::Canary { .. }
                | ManagerOp::CanaryContent { .. }
                | ManagerOp::Promote { .. }
                | ManagerOp::AbortCanary { .. }
                | ManagerOp::SetCanaryWeight { .. }
                | ManagerOp::DeployFromDisk { .. }
                | ManagerOp::Source { .. }
                | ManagerOp::Validate { .. }
                | ManagerOp::ValidateContent { .. }
                | ManagerOp::Diff { .. }
                | ManagerOp::DiffContent { .. }
                | ManagerOp::History { .. }
                | ManagerOp::ValidateChecks { .. }
                | ManagerOp::Rollback { .. }
                | ManagerOp::RollbackTo { .. }
                | ManagerOp::CancelDrain { .. }
                | ManagerOp::SetHotDeploy { .. } => false,
            },
            Operation::Unit(o) => match o {
                UnitOp::Pause {}
                | UnitOp::PauseHold { .. }
                | UnitOp::Resume {}
                | UnitOp::Unload {}
                | UnitOp::SetFlag { .. } => true,
                UnitOp::Reload {}
                | UnitOp::Rollback {}
                | UnitOp::RollbackTo { .. }
                | UnitOp::Diff {}
                | UnitOp::Validate {}
                | UnitOp::History {}
                | UnitOp::CancelDrain { .. } => false,
            },
            Operation::Task(o) => match o {
                TaskOp::Pause {} | TaskOp::Resume {} => true,
                TaskOp::RunNow {} => false,
            },
            Operation::Transport(_)
            | Operation::Proxy(_)
            | Operation::Endpoint(_)
            | Operation::Consumer(_) => true,
            // Desired state lives in the cluster store, not in this node's operator state.
            Operation::Cluster(_) => false,
        }
    }

    /// The units the operation on `bean` concerns (for the revisions before and after in
    /// the audit): the bean's unit, or the units a manager operation names.
    pub fn units(&self, bean: &Bean) -> Vec<String> {
        let Operation::Manager(o) = self else {
            return bean.unit().map(str::to_owned).into_iter().collect();
        };
        match o {
            ManagerOp::Batch { units } | ManagerOp::UnloadBatch { units } => units.0.clone(),
            ManagerOp::Load { unit }
            | ManagerOp::Unload { unit }
            | ManagerOp::Reload { unit }
            | ManagerOp::Deploy { unit, .. }
            | ManagerOp::Canary { unit, .. }
            | ManagerOp::CanaryContent { unit, .. }
            | ManagerOp::Promote { unit }
            | ManagerOp::AbortCanary { unit }
            | ManagerOp::SetCanaryWeight { unit, .. }
            | ManagerOp::DeployFromDisk { unit }
            | ManagerOp::Source { unit, .. }
            | ManagerOp::Validate { unit }
            | ManagerOp::ValidateContent { unit, .. }
            | ManagerOp::Diff { unit }
            | ManagerOp::DiffContent { unit, .. }
            | ManagerOp::History { unit }
            | ManagerOp::ValidateChecks { unit }
            | ManagerOp::Rollback { unit }
            | ManagerOp::RollbackTo { unit, .. }
            | ManagerOp::CancelDrain { unit, .. } => vec![unit.clone()],
            ManagerOp::ReloadAll {} | ManagerOp::SetHotDeploy { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A value of every argument type that decodes.
    fn sample(kind: ArgKind, type_: &str) -> Value {
        match (kind, type_) {
            (ArgKind::Content, "java.util.Map") => {
                json!({"unit": "u", "files": {"unit.toml": "[unit]\n"}, "wait_ms": 5})
            }
            (_, "java.util.Map") => json!({"unit": "u"}),
            (ArgKind::Bool, _) => json!(true),
            (ArgKind::Number, "double") => json!(12.5),
            (ArgKind::Number, _) => json!(3),
            (ArgKind::Names, _) => json!(["a", "b"]),
            (ArgKind::Content, _) => json!({"unit.toml": "[unit]\n"}),
            (ArgKind::Url, _) => json!("http://user:pw@h:1/x"),
            (ArgKind::Text, _) => json!("x"),
        }
    }

    #[test]
    fn every_operation_decodes_from_its_metadata_and_round_trips() {
        let mut count = 0;
        for kind in BeanKind::ALL {
            let mbean = Bean::of_kind(kind, "u", "n").object_name();
            for spec in Operation::specs(kind) {
                let args: Vec<Value> = spec.args.iter().map(|a| sample(a.kind, a.type_)).collect();
                let op = Operation::decode(kind, &mbean, spec.name, &args)
                    .unwrap_or_else(|e| panic!("{kind} {}: {e}", spec.name));
                assert_eq!(op.kind(), kind);
                assert_eq!(op.name(), spec.name);
                assert_eq!(op.spec_of(), spec);
                let again = Operation::decode(kind, &mbean, spec.name, &op.arguments()).unwrap();
                assert_eq!(again, op, "{kind} {}", spec.name);
                // Serialized as a Jolokia exec and read back.
                let req = super::super::Request::exec(mbean.clone(), spec.name, op.arguments());
                let wire = serde_json::to_value(req.to_echo_json()).unwrap();
                let back = super::super::parse_post_body(&serde_json::to_vec(&wire).unwrap())
                    .unwrap()
                    .requests
                    .remove(0);
                let super::super::Request::Exec { arguments, .. } = back else {
                    panic!("not an exec: {back:?}")
                };
                assert_eq!(
                    Operation::decode(kind, &mbean, spec.name, &arguments).unwrap(),
                    op
                );
                count += 1;
            }
        }
        assert!(count >= 60, "{count} operations");
    }

    #[test]
    fn decoding_says_what_is_wrong() {
        let m = Bean::Manager.object_name();
        let e = Operation::decode(BeanKind::Manager, &m, "relaod", &[json!("u")]).unwrap_err();
        assert!(e.to_string().contains("reload"), "{e}");
        let e = Operation::decode(BeanKind::Manager, &m, "reload", &[]).unwrap_err();
        assert!(matches!(
            e,
            ManagementError::WrongArgumentCount {
                expected: 1,
                given: 0,
                ..
            }
        ));
        let e = Operation::decode(
            BeanKind::Manager,
            &m,
            "rollbackTo",
            &[json!("u"), json!("x")],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument 2 (revision) must be a whole number, got \"x\""
        );
        let s = Bean::Sequence("u".into(), "s".into()).object_name();
        assert!(Operation::decode(BeanKind::Sequence, &s, "pause", &[]).is_err());
        let op = Operation::decode(
            BeanKind::Manager,
            &m,
            "validateContent(java.lang.String,java.lang.String)",
            &[json!("u"), json!("[unit]")],
        )
        .unwrap();
        assert!(!op.changes_state());
        assert_eq!(op.units(&Bean::Manager), ["u"]);
    }

    #[test]
    fn only_diff_history_and_validate_operations_are_reads() {
        for kind in BeanKind::ALL {
            for spec in Operation::specs(kind) {
                if !spec.impact.changes_state() {
                    assert!(
                        [
                            "diff",
                            "diffContent",
                            "history",
                            "validate",
                            "validateContent",
                            "validateChecks",
                            "status"
                        ]
                        .contains(&spec.name),
                        "{kind} {}",
                        spec.name
                    );
                }
            }
        }
    }
}
