//! Workers (one per plan instance) and app sandboxes (one per site per
//! instance), docs/datapath.md "Worker" and "App sandbox". Seed, "How virtual
//! network integration works": virtual interfaces with addresses in the
//! delegated subnet are mounted to the worker roles; "Application routing":
//! Route All off sends RFC1918 into the VNet, on sends everything.

use super::builder::{default_route, host, net, Builder, NsExt, MAIN};
use super::env::site_env;
use super::layout::{
    Layout, WorkerL, PLATFORM_MARK_BASE, PLATFORM_TABLE_BASE, RULE_PRIORITY, SANDBOX_TABLE_BASE,
    STAMP_GW, WORKER_GW,
};
use super::names;
use super::nft::{self, Batch, ChainType};
use super::routes::RFC1918;
use super::types::{CgroupPlan, NamespaceRole, ProcessPlan, RulePlan};

/// Azure's platform address: DNS always goes through the vNIC of an integrated app.
pub(crate) const AZURE_PLATFORM_IP: &str = "168.63.129.16/32";

pub(crate) fn build(l: &Layout, b: &mut Builder) {
    for w in &l.workers {
        let wk = w.netns.as_str();
        let ns = b.namespace(
            wk,
            NamespaceRole::Worker {
                plan_id: w.plan.to_string(),
                instance: w.instance,
            },
            true,
        );
        ns.addr("lo", host(WORKER_GW));
        ns.addr("pub0", host(w.pub0));
        skip_source_validation(ns);
        ns.via(MAIN, default_route(), STAMP_GW, "pub0");
        for (i, v) in w.vnics.iter().enumerate() {
            ns.addr(&v.ifname, net(v.ip, v.prefix_len));
            // Configuration routing: platform sockets marked for this vNIC
            // leave through it (source = the instance address); everything
            // else the worker itself sends takes the public route.
            let table = PLATFORM_TABLE_BASE + i as u32;
            ns.rules.push(RulePlan {
                priority: RULE_PRIORITY,
                fwmark: Some((PLATFORM_MARK_BASE + i as u32, u32::MAX)),
                iif: None,
                table,
            });
            ns.via(table, default_route(), v.gateway, &v.ifname);
        }
        ns.nft = Some(nft_batch(w));

        let stamp = &l.stamps[w.stamp].netns;
        let w_link = names::link('w', wk, "pub0");
        b.veth(stamp, &w_link, wk, "pub0");
        b.get(stamp).dev_route(host(w.pub0), &w_link);
        for v in &w.vnics {
            let fab = &l.fabrics[v.fabric].netns;
            let n_link = names::link('n', wk, &v.ifname);
            b.veth(fab, &n_link, wk, &v.ifname);
            let f = b.get(fab);
            f.dev_route(host(v.ip), &n_link);
            f.proxy_arp(&n_link);
        }
        for sb in &w.sandboxes {
            let role = NamespaceRole::AppSandbox {
                site_id: sb.site.id.to_string(),
                instance: w.instance,
            };
            let sns = b.namespace(&sb.netns, role, false);
            sns.addr("eth0", host(sb.ip));
            sns.via(MAIN, default_route(), WORKER_GW, "eth0");
            let a_link = names::link('a', &sb.netns, "eth0");
            b.veth(wk, &a_link, &sb.netns, "eth0");
            let table = SANDBOX_TABLE_BASE + sb.k;
            if let (Some(v), Some(cip)) = (sb.vnic.map(|i| &w.vnics[i]), sb.container_ip) {
                // A Windows container's own subnet address: held on the vNIC
                // (SNAT in `nft_batch`), routed to this worker by the fabric.
                b.get(wk).addr(&v.ifname, host(cip));
                let n_link = names::link('n', wk, &v.ifname);
                b.get(&l.fabrics[v.fabric].netns)
                    .dev_route(host(cip), &n_link);
            }
            let ns = b.get(wk);
            ns.dev_route(host(sb.ip), &a_link);
            ns.rules.push(RulePlan {
                priority: RULE_PRIORITY,
                fwmark: None,
                iif: Some(a_link.clone()),
                table,
            });
            match sb.vnic.map(|i| &w.vnics[i]) {
                None => ns.via(table, default_route(), STAMP_GW, "pub0"),
                Some(v) if sb.site.route_all => {
                    ns.via(table, default_route(), v.gateway, &v.ifname)
                }
                Some(v) => {
                    for p in RFC1918.iter().chain([&AZURE_PLATFORM_IP]) {
                        ns.via(table, p.parse().expect("constant"), v.gateway, &v.ifname);
                    }
                    // Seed, "Service endpoints": traffic to a service the
                    // integration subnet has an endpoint for enters the VNet
                    // even with Route All off.
                    for p in endpoint_prefixes(l, v) {
                        ns.via(table, p, v.gateway, &v.ifname);
                    }
                    ns.via(table, default_route(), STAMP_GW, "pub0");
                }
            }
            if let Some(cmd) = &sb.site.app_command_line {
                b.process(ProcessPlan {
                    key: names::instance_key(&sb.site.id.key(), w.instance),
                    netns: sb.netns.clone(),
                    argv: vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
                    env: site_env(l, w, sb),
                    cgroup: Some(app_cgroup(l, b.lab(), w, sb)),
                });
            }
        }
    }
}

/// The cgroup of a site's process on one instance, with the limits of the
/// instance's size (the plan's SKU): every site of a plan gets the whole
/// instance's memory, as the apps of a plan share its instances in Azure.
fn app_cgroup(l: &Layout, lab: &str, w: &WorkerL, sb: &super::layout::SandboxL) -> CgroupPlan {
    let sku = l
        .inv
        .plan(&w.plan)
        .map(|p| p.sku_name.as_str())
        .unwrap_or_default();
    CgroupPlan {
        path: names::app_cgroup(lab, &sb.site.name, &sb.site.id.key(), w.instance),
        limits: super::limits::sku_limits(sku),
    }
}

/// The active service endpoint prefixes of a vNIC's subnet.
fn endpoint_prefixes(l: &Layout, v: &super::layout::VnicL) -> Vec<ipnet::Ipv4Net> {
    l.fabrics[v.fabric]
        .subnets
        .iter()
        .filter(|s| s.id == v.subnet)
        .flat_map(super::services::active_endpoint_prefixes)
        .collect()
}

/// `accept_local=1`: with policy rules in a namespace, the kernel validates
/// the source of every forwarded packet with a second, reverse route lookup
/// (rp_filter=0 only makes it lenient, not skipped); accepting local source
/// addresses skips it. The only packets this lets through are ones claiming
/// one of the namespace's own addresses as source, which the fabric's
/// spoofing checks stop at NICs without IP forwarding.
pub(crate) fn skip_source_validation(ns: &mut super::types::NamespacePlan) {
    ns.sysctl("net/ipv4/conf/all/accept_local".into(), "1");
}

/// The named counter of NetBIOS dropped at a worker's vNICs.
pub const NETBIOS_COUNTER: &str = "netbios-blocked";

/// Seed: "There are some things that virtual network integration doesn't
/// support, like: ... NetBIOS." NetBIOS name and datagram service (UDP 137,
/// 138) and session service (TCP 139) from an app never cross the
/// integration: dropped on the way into the vNICs, counted. The direct path
/// (`pub0`) is not the integration and is left as it is.
fn netbios_rules(w: &WorkerL, batch: &mut Batch) {
    if w.vnics.is_empty() {
        return;
    }
    let vnics: Vec<String> = w.vnics.iter().map(|v| v.ifname.clone()).collect();
    batch.counter(NETBIOS_COUNTER);
    for (protocol, ports) in [("udp", &[137u16, 138][..]), ("tcp", &[139][..])] {
        batch.rule(
            "forward",
            vec![
                nft::oifname_in(&vnics),
                nft::dport_in(protocol, ports),
                nft::named_counter(NETBIOS_COUNTER),
                nft::drop(),
            ],
        );
    }
}

fn nft_batch(w: &WorkerL) -> serde_json::Value {
    let mut batch = Batch::default();
    batch.chain("input", ChainType::Filter, "input", 0);
    batch.chain("forward", ChainType::Filter, "forward", 0);
    batch.chain("postrouting", ChainType::Nat, "postrouting", 100);
    for (sb, v) in w
        .sandboxes
        .iter()
        .filter_map(|sb| Some((sb, &w.vnics[sb.vnic?])))
    {
        // A Windows container's VNet traffic leaves with its own address.
        if let Some(cip) = sb.container_ip {
            batch.rule(
                "postrouting",
                vec![
                    nft::oifname(&v.ifname),
                    nft::ip_saddr(sb.ip),
                    nft::snat(cip),
                ],
            );
        }
    }
    for v in &w.vnics {
        // Integration is outbound only: new connections from the VNet are dropped.
        for chain in ["input", "forward"] {
            let name = format!("{chain}-new-{}", v.ifname);
            batch.counter(&name);
            batch.rule(
                chain,
                vec![
                    nft::iifname(&v.ifname),
                    nft::ct_state_new(),
                    nft::named_counter(&name),
                    nft::drop(),
                ],
            );
        }
        batch.rule(
            "postrouting",
            vec![nft::oifname(&v.ifname), nft::snat(v.ip)],
        );
    }
    netbios_rules(w, &mut batch);
    batch.rule("postrouting", vec![nft::oifname("pub0"), nft::snat(w.pub0)]);
    super::frontend::worker_rules(w, &mut batch);
    batch.finish()
}
