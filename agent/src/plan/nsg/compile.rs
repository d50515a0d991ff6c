//! NSG rules compiled for one fabric (one VNet): address sets with the
//! VNet-relative tags and ASGs expanded, rules in evaluation order, and which
//! NSG each NIC link / subnet mark dispatches to.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::super::layout::Layout;
use super::super::names;
use crate::model::{
    default_rules, AddressMatch, Direction, Inventory, NetworkSecurityGroup, ResourceId,
    ServiceTag, TypedRule, VirtualNetwork, AZURE_PLATFORM_IP,
};

/// A set of IPv4 addresses as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AddrSet(Vec<(u32, u32)>);

impl AddrSet {
    pub fn of(nets: impl IntoIterator<Item = Ipv4Net>) -> AddrSet {
        let mut r: Vec<(u32, u32)> = nets
            .into_iter()
            .map(|n| (u32::from(n.network()), u32::from(n.broadcast())))
            .collect();
        r.sort();
        let mut out: Vec<(u32, u32)> = Vec::new();
        for (a, b) in r {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        AddrSet(out)
    }

    /// Everything not in `self`.
    pub fn complement(&self) -> AddrSet {
        let mut out = Vec::new();
        let mut next: u64 = 0;
        for &(a, b) in &self.0 {
            if u64::from(a) > next {
                out.push((next as u32, a - 1));
            }
            next = u64::from(b) + 1;
        }
        if next <= u64::from(u32::MAX) {
            out.push((next as u32, u32::MAX));
        }
        AddrSet(out)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.0.iter().any(|&(a, b)| a <= ip && ip <= b)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The inclusive ranges (addresses as u32), sorted and disjoint.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.0
    }

    /// The smallest list of CIDR blocks covering exactly this set, in order.
    pub fn cidrs(&self) -> Vec<Ipv4Net> {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let (mut a, b) = (u64::from(a), u64::from(b));
            while a <= b {
                let mut len = 32u8;
                while len > 0 {
                    let size = 1u64 << (33 - len);
                    if a % size != 0 || a + size - 1 > b {
                        break;
                    }
                    len -= 1;
                }
                out.push(Ipv4Net::new(Ipv4Addr::from(a as u32), len).expect("len <= 32"));
                a += 1u64 << (32 - len);
            }
        }
        out
    }
}

/// Inputs of the `VirtualNetwork` tag beyond the VNet's own space: peered
/// VNets' spaces and on-premises prefixes (AZURE-FACTS §3): a local network
/// gateway's prefixes and what a gateway learned over BGP (`tag_set` fills
/// those from the layout).
#[derive(Debug, Clone, Default)]
pub(crate) struct VnetTagInputs {
    pub peered_prefixes: Vec<Ipv4Net>,
    pub on_premises_prefixes: Vec<Ipv4Net>,
}

/// The `VirtualNetwork` tag grows with the address spaces of the VNets
/// this one is peered with (Connected peerings).
pub(crate) fn vnet_tag_inputs(inv: &Inventory, vnet: &VirtualNetwork) -> VnetTagInputs {
    VnetTagInputs {
        peered_prefixes: inv
            .connected_peerings(vnet)
            .flat_map(|(p, remote)| p.remote_prefixes(remote))
            .collect(),
        ..VnetTagInputs::default()
    }
}

/// The addresses of a tag seen from `vnet`.
pub(crate) fn tag_set(l: &Layout, vnet: &VirtualNetwork, tag: &ServiceTag) -> AddrSet {
    let inv = &l.inv;
    let platform = Ipv4Net::new(AZURE_PLATFORM_IP, 32).expect("/32");
    let vnet_set = || {
        let mut inputs = vnet_tag_inputs(inv, vnet);
        // On-premises prefixes the VNet routes to a gateway (a local network
        // gateway's, or learned over BGP) are part of the tag too.
        inputs.on_premises_prefixes = l
            .fabrics
            .iter()
            .find(|f| f.vnet.id == vnet.id)
            .map(|f| f.gateway_routes.iter().map(|r| r.prefix).collect())
            .unwrap_or_default();
        AddrSet::of(
            vnet.address_prefixes
                .iter()
                .copied()
                .chain(inputs.peered_prefixes)
                .chain(inputs.on_premises_prefixes)
                .chain([platform]),
        )
    };
    match tag {
        ServiceTag::VirtualNetwork => vnet_set(),
        ServiceTag::Internet => vnet_set().complement(),
        ServiceTag::AzureLoadBalancer => AddrSet::of([platform]),
        ServiceTag::Service(_) => {
            AddrSet::of(super::super::services::tag_prefixes(&l.service_addrs, tag))
        }
    }
}

/// nft set name of a tag: `tag-<lower-cased name, '.' -> '-'>`.
pub(crate) fn tag_set_name(tag: &ServiceTag) -> String {
    format!("tag-{}", tag.name().to_ascii_lowercase().replace('.', "-"))
}

/// nft set name of an ASG: `asg-<8 hex of sha256(lower-cased id)>`.
pub(crate) fn asg_set_name(asg: &ResourceId) -> String {
    format!("asg-{}", &names::sha256_hex(&asg.key())[..8])
}

/// `<8 hex of sha256(lower-cased NSG id)>`: the NSG part of chain and counter names.
pub(crate) fn nsg_hash(nsg: &ResourceId) -> String {
    names::sha256_hex(&nsg.key())[..8].to_string()
}

/// `nsg-<hash>-out` / `nsg-<hash>-in`.
pub(crate) fn chain_name(nsg: &ResourceId, dir: Direction) -> String {
    format!("nsg-{}-{}", nsg_hash(nsg), dir.short())
}

/// `nsg-<nsg hash>-<8 hex of sha256(lower-cased rule path)>`, rule path =
/// `securityRules/<name>` or `defaultSecurityRules/<name>`.
pub(crate) fn counter_name(nsg: &ResourceId, path: &str) -> String {
    format!(
        "nsg-{}-{}",
        nsg_hash(nsg),
        &names::sha256_hex(&path.to_ascii_lowercase())[..8]
    )
}

/// One side of a compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Addr {
    Any,
    /// Written IPs/CIDRs (an anonymous nft set).
    Literal(AddrSet),
    /// A tag or ASG (a named nft set of the fabric).
    Named {
        set: String,
        content: AddrSet,
    },
}

impl Addr {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        match self {
            Addr::Any => true,
            Addr::Literal(s) | Addr::Named { content: s, .. } => s.contains(ip),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    /// `securityRules/<name>` or `defaultSecurityRules/<name>`.
    pub path: String,
    pub rule: TypedRule,
    pub src: Addr,
    pub dst: Addr,
    pub counter: String,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledNsg {
    pub id: ResourceId,
    /// User rules by priority, then the defaults; both directions.
    pub rules: Vec<CompiledRule>,
}

impl CompiledNsg {
    pub fn direction(&self, d: Direction) -> impl Iterator<Item = &CompiledRule> {
        self.rules.iter().filter(move |r| r.rule.direction == d)
    }
}

/// The typed user rules of `nsg` sorted by (direction, priority), then the defaults.
pub(crate) fn ordered_rules(nsg: &NetworkSecurityGroup) -> Vec<(String, TypedRule)> {
    let mut user: Vec<TypedRule> = nsg
        .rules
        .iter()
        .filter_map(|r| r.typed(&nsg.name).ok())
        .collect();
    user.sort_by_key(|r| (r.direction, r.priority));
    let mut out: Vec<(String, TypedRule)> = Vec::new();
    for d in [Direction::Inbound, Direction::Outbound] {
        out.extend(
            user.iter()
                .filter(|r| r.direction == d)
                .map(|r| (format!("securityRules/{}", r.name), r.clone())),
        );
        out.extend(
            default_rules()
                .into_iter()
                .filter(|r| r.direction == d)
                .map(|r| (format!("defaultSecurityRules/{}", r.name), r)),
        );
    }
    out
}

/// Private IPs of the ASG's member NIC configurations inside `vnet`
/// (VM NICs of the lab, from the layout).
pub(crate) fn asg_members(l: &Layout, vnet: &ResourceId, asg: &ResourceId) -> AddrSet {
    let mut ips = Vec::new();
    for vm in &l.vms {
        for n in &vm.nics {
            if l.fabrics[n.fabric].vnet.id != *vnet {
                continue;
            }
            let Some(nic) = l.inv.nic(&n.nic) else {
                continue;
            };
            if nic.ip_configurations.len() == n.addresses.len() {
                for (c, a) in nic.ip_configurations.iter().zip(&n.addresses) {
                    if c.application_security_groups.contains(asg) {
                        ips.push(*a);
                    }
                }
            }
        }
    }
    AddrSet::of(ips.into_iter().map(|a| Ipv4Net::new(a, 32).expect("/32")))
}

fn side(l: &Layout, vnet: &VirtualNetwork, m: &AddressMatch) -> Addr {
    match m {
        AddressMatch::Any => Addr::Any,
        AddressMatch::Prefixes(p) => Addr::Literal(AddrSet::of(p.iter().copied())),
        AddressMatch::Tag(t) => Addr::Named {
            set: tag_set_name(t),
            content: tag_set(l, vnet, t),
        },
        AddressMatch::Asg(a) => Addr::Named {
            set: asg_set_name(a),
            content: asg_members(l, &vnet.id, a),
        },
    }
}

/// `nsg` compiled for the fabric of `vnet`.
pub(crate) fn compile(
    l: &Layout,
    vnet: &VirtualNetwork,
    nsg: &NetworkSecurityGroup,
) -> CompiledNsg {
    let rules = ordered_rules(nsg)
        .into_iter()
        .map(|(path, rule)| CompiledRule {
            src: side(l, vnet, &rule.source),
            dst: side(l, vnet, &rule.destination),
            counter: counter_name(&nsg.id, &path),
            path,
            rule,
        })
        .collect();
    CompiledNsg {
        id: nsg.id.clone(),
        rules,
    }
}

/// A VM NIC's link in its fabric, with its NSGs.
#[derive(Debug, Clone)]
pub(crate) struct NicAttach {
    pub nic: ResourceId,
    pub link: String,
    pub subnet: ResourceId,
    pub addresses: Vec<Ipv4Addr>,
    pub nic_nsg: Option<ResourceId>,
    pub subnet_nsg: Option<ResourceId>,
}

/// Everything NSG about one fabric.
#[derive(Debug, Clone, Default)]
pub(crate) struct FabricNsgs {
    /// Every NSG associated with a subnet of the VNet or a VM NIC in it, by id.
    pub nsgs: Vec<CompiledNsg>,
    pub nics: Vec<NicAttach>,
    /// `(subnet id, subnet table = mark, NSG)` for subnets with an NSG.
    pub subnets: Vec<(ResourceId, u32, ResourceId)>,
}

impl FabricNsgs {
    pub fn nsg(&self, id: &ResourceId) -> Option<&CompiledNsg> {
        self.nsgs.iter().find(|n| &n.id == id)
    }

    /// Named sets used by the rules: name -> content, sorted by name.
    pub fn named_sets(&self) -> BTreeMap<String, AddrSet> {
        let mut sets = BTreeMap::new();
        for r in self.nsgs.iter().flat_map(|n| &n.rules) {
            for a in [&r.src, &r.dst] {
                if let Addr::Named { set, content } = a {
                    sets.insert(set.clone(), content.clone());
                }
            }
        }
        sets
    }
}

/// The NSG picture of fabric `fi`.
pub(crate) fn fabric(l: &Layout, fi: usize) -> FabricNsgs {
    let f = &l.fabrics[fi];
    let mut ids: Vec<ResourceId> = Vec::new();
    let mut subnets = Vec::new();
    for (s, sl) in f.vnet.subnets.iter().zip(&f.subnets) {
        if let Some(n) = s
            .network_security_group
            .as_ref()
            .filter(|n| l.inv.nsg(n).is_some())
        {
            subnets.push((s.id.clone(), sl.table, n.clone()));
            ids.push(n.clone());
        }
    }
    let mut nics = Vec::new();
    for vm in &l.vms {
        for n in vm.nics.iter().filter(|n| n.fabric == fi) {
            let Some(nic) = l.inv.nic(&n.nic) else {
                continue;
            };
            let subnet = nic.subnet_id().clone();
            let nic_nsg = nic
                .network_security_group
                .clone()
                .filter(|n| l.inv.nsg(n).is_some());
            let subnet_nsg = subnets
                .iter()
                .find(|(s, _, _)| *s == subnet)
                .map(|(_, _, n)| n.clone());
            ids.extend(nic_nsg.clone());
            nics.push(NicAttach {
                nic: nic.id.clone(),
                link: names::link('n', &vm.netns, &n.ifname),
                subnet,
                addresses: n.addresses.clone(),
                nic_nsg,
                subnet_nsg,
            });
        }
    }
    nics.sort_by(|a, b| a.link.cmp(&b.link));
    ids.sort();
    ids.dedup();
    let nsgs = ids
        .iter()
        .filter_map(|id| Some(compile(l, &f.vnet, l.inv.nsg(id)?)))
        .collect();
    FabricNsgs {
        nsgs,
        nics,
        subnets,
    }
}

/// Every NSG of the lab compiled as seen from `vnet` (for effective rules of
/// NICs that are not attached to a VM, whose NSG is in no batch).
pub(crate) fn fabric_for_effective(l: &Layout, vnet: &ResourceId) -> FabricNsgs {
    let Some(f) = l.fabrics.iter().find(|f| &f.vnet.id == vnet) else {
        return FabricNsgs::default();
    };
    FabricNsgs {
        nsgs: l.inv.nsgs.iter().map(|n| compile(l, &f.vnet, n)).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn sets_merge_complement_and_cidrs() {
        let s = AddrSet::of([n("10.0.1.0/24"), n("10.0.0.0/24"), n("10.0.0.128/25")]);
        assert_eq!(s.cidrs(), vec![n("10.0.0.0/23")]);
        let c = AddrSet::of([n("10.0.0.0/8")]).complement();
        assert_eq!(c.cidrs().len(), 8);
        assert!(!c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("11.0.0.0".parse().unwrap()));
        assert!(c.contains("0.0.0.0".parse().unwrap()));
        assert!(c.contains("255.255.255.255".parse().unwrap()));
        assert_eq!(
            AddrSet::default().complement().cidrs(),
            vec![n("0.0.0.0/0")]
        );
        assert!(AddrSet::of([n("0.0.0.0/0")]).complement().is_empty());
    }
}
