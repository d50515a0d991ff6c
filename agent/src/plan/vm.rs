//! Virtual machines: a namespace with one `ethN` per NIC, routed by the
//! fabric (docs/datapath.md, "VM").

use super::builder::{default_route, host, net, Builder, NsExt, MAIN};
use super::layout::Layout;
use super::names;
use super::types::{NamespaceRole, ProcessPlan, RouteKind};

pub(crate) fn build(l: &Layout, b: &mut Builder) {
    for vm in &l.vms {
        let ns = b.namespace(
            &vm.netns,
            NamespaceRole::VirtualMachine {
                vm_id: vm.id.to_string(),
            },
            false,
        );
        for n in &vm.nics {
            for a in &n.addresses {
                ns.addr(&n.ifname, net(*a, n.prefix_len));
            }
            if n.primary {
                ns.route(
                    MAIN,
                    default_route(),
                    RouteKind::Via {
                        gateway: n.gateway,
                        ifname: n.ifname.clone(),
                        onlink: false,
                    },
                );
            }
        }
        // Custom Script extensions: the command runs supervised in the VM,
        // as an app's appCommandLine runs in its sandbox.
        if let Some(v) = l.inv.vms.iter().find(|v| v.id == vm.id) {
            for ext in v.extensions.iter().filter(|e| e.is_custom_script()) {
                let Some(cmd) = &ext.command else { continue };
                b.process(ProcessPlan {
                    key: vm.id.child("extensions", &ext.name).key(),
                    netns: vm.netns.clone(),
                    argv: vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
                    env: Default::default(),
                    cgroup: None,
                });
            }
        }
        for n in &vm.nics {
            let fab = &l.fabrics[n.fabric].netns;
            let n_link = names::link('n', &vm.netns, &n.ifname);
            b.veth(fab, &n_link, &vm.netns, &n.ifname);
            let f = b.get(fab);
            for a in &n.addresses {
                f.dev_route(host(*a), &n_link);
            }
            f.proxy_arp(&n_link);
        }
    }
}
