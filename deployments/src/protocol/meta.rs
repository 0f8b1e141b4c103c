//! List metadata of every bean kind, generated from the typed declarations: attributes from
//! [`super::attrs`], operations from [`super::ops`]. Nothing here is written by hand but the
//! one-line description of each kind.

use super::attrs::{
    AttrSpec, ClusterAttrs, ConsumerAttrs, EndpointAttrs, ManagerAttrs, ProxyAttrs, SequenceAttrs,
    ServerAttrs, TaskAttrs, TransportAttrs, UnitAttrs,
};
use super::beans::BeanKind;
use super::ops::Operation;
use super::MBeanInfo;

/// What a bean of the kind is.
pub fn description(kind: BeanKind) -> &'static str {
    match kind {
        BeanKind::Server => "The ESB server",
        BeanKind::Manager => "Deploys, reloads and rolls back units",
        BeanKind::Transport => "An HTTP(S) listener",
        BeanKind::Unit => "A deployment unit",
        BeanKind::Proxy => "A proxy service",
        BeanKind::Sequence => "A mediation sequence",
        BeanKind::Endpoint => "A backend endpoint",
        BeanKind::Task => "A scheduled task",
        BeanKind::Consumer => "A message (amqp) or file consumer",
        BeanKind::Cluster => "This node of a cluster: cluster-wide operations through the store",
    }
}

/// Metadata of every attribute of the kind.
pub fn attributes(kind: BeanKind) -> Vec<AttrSpec> {
    match kind {
        BeanKind::Server => ServerAttrs::specs(),
        BeanKind::Manager => ManagerAttrs::specs(),
        BeanKind::Transport => TransportAttrs::specs(),
        BeanKind::Unit => UnitAttrs::specs(),
        BeanKind::Proxy => ProxyAttrs::specs(),
        BeanKind::Sequence => SequenceAttrs::specs(),
        BeanKind::Endpoint => EndpointAttrs::specs(),
        BeanKind::Task => TaskAttrs::specs(),
        BeanKind::Consumer => ConsumerAttrs::specs(),
        BeanKind::Cluster => ClusterAttrs::specs(),
    }
}

/// The list metadata of a bean of `kind`.
pub fn mbean_info(kind: BeanKind) -> MBeanInfo {
    let mut info = MBeanInfo::new(description(kind));
    for a in attributes(kind) {
        info = info.with_attr(a.name, a.type_, a.desc, a.writable);
    }
    for op in Operation::specs(kind) {
        let args: Vec<(&str, &str, &str)> =
            op.args.iter().map(|a| (a.name, a.type_, a.desc)).collect();
        info = info.with_op_impact(op.name, &args, op.ret, op.desc, op.impact);
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_metadata_covers_every_operation_and_attribute() {
        for kind in BeanKind::ALL {
            let info = mbean_info(kind);
            let specs = Operation::specs(kind);
            assert_eq!(info.op.len(), specs.len(), "{kind}: one name per operation");
            for s in specs {
                let op = &info.op[s.name];
                assert_eq!(op.args.len(), s.args.len());
                assert_eq!(op.impact, s.impact);
                assert_eq!(op.desc, s.desc);
            }
            let attrs = attributes(kind);
            assert_eq!(
                info.attr.len(),
                attrs.len(),
                "{kind}: one name per attribute"
            );
        }
        let unit = mbean_info(BeanKind::Unit);
        assert_eq!(unit.attr["Revision"].type_, "long");
        assert_eq!(unit.attr["Draining"].type_, "[Ljava.lang.Object;");
        assert_eq!(unit.attr["Canary"].type_, "java.lang.Object");
        assert_eq!(unit.op["pauseHold"].args[0].name, "holdMillis");
        assert!(mbean_info(BeanKind::Server).attr["HotDeploy"].rw);
        assert!(mbean_info(BeanKind::Sequence).op.is_empty());
    }
}
