//! The lab's internet `<lab>-inet` and its public test hosts
//! (docs/datapath.md, "Internet" and "Internet host").

use super::builder::{default_route, host, Builder, NsExt, MAIN};
use super::layout::{Layout, INET_GW};
use super::names;
use super::nft::{self, Batch, ChainType};
use super::types::{NamespaceRole, RouteKind};
use crate::model::LabConfig;

pub(crate) fn build(l: &Layout, lab: &LabConfig, b: &mut Builder) {
    let inet = l.inet.as_str();
    let ns = b.namespace(inet, NamespaceRole::Internet, true);
    ns.addr("lo", host(INET_GW));
    // Public addresses nobody owns are unreachable (owners get /32 routes).
    ns.route(MAIN, lab.public_pool, RouteKind::Unreachable);
    let mut batch = Batch::default();
    batch.chain("forward", ChainType::Filter, "forward", 0);
    batch.rule("forward", vec![nft::counter()]);
    ns.nft = Some(batch.finish());

    for h in &l.hosts {
        let far = names::link('h', &h.netns, "eth0");
        let ns = b.namespace(
            &h.netns,
            NamespaceRole::InternetHost {
                resource_id: h.id.to_string(),
            },
            false,
        );
        ns.addr("eth0", host(h.ip));
        ns.via(MAIN, default_route(), INET_GW, "eth0");
        b.veth(inet, &far, &h.netns, "eth0");
        b.get(inet).dev_route(host(h.ip), &far);
    }
}
