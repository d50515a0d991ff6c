use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::*;
use crate::model::{LabConfig, LabState};
use crate::validate::fixtures::{deploy, deploy_template, example_state, id_str, rid};

fn lab() -> LabConfig {
    LabConfig::default()
}

fn example() -> NetworkPlan {
    build(&example_state(), &lab())
}

fn ns_of<'a>(p: &'a NetworkPlan, prefix: &str) -> Vec<&'a NamespacePlan> {
    p.namespaces
        .values()
        .filter(|n| n.name.starts_with(prefix))
        .collect()
}

fn one<'a>(p: &'a NetworkPlan, prefix: &str) -> &'a NamespacePlan {
    let v = ns_of(p, prefix);
    assert_eq!(
        v.len(),
        1,
        "{prefix}: {:?}",
        v.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
    v[0]
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn table(n: &NamespacePlan, t: u32) -> BTreeMap<String, RouteKind> {
    n.routes
        .iter()
        .filter(|r| r.table == t)
        .map(|r| (r.destination.to_string(), r.kind.clone()))
        .collect()
}

fn via(gw: &str, ifname: &str) -> RouteKind {
    RouteKind::Via {
        gateway: ip(gw),
        ifname: ifname.into(),
        onlink: true,
    }
}

/// Interfaces of a namespace: `lo` and its veth ends.
fn interfaces(p: &NetworkPlan, ns: &str) -> Vec<String> {
    let mut v = vec!["lo".to_string()];
    for veth in &p.veths {
        for end in [&veth.a, &veth.b] {
            if end.netns == ns {
                v.push(end.ifname.clone());
            }
        }
    }
    v
}

#[test]
fn example_has_every_namespace_with_its_role() {
    let p = example();
    assert_eq!(p.lab, "vl");
    assert_eq!(
        p.namespaces.len(),
        11,
        "{:?}",
        p.namespaces.keys().collect::<Vec<_>>()
    );
    assert_eq!(p.namespaces["vl-inet"].role, NamespaceRole::Internet);
    assert_eq!(
        one(&p, "vl-stamp-").role,
        NamespaceRole::Stamp {
            location: "westeurope".into()
        }
    );
    assert_eq!(one(&p, "vl-stamp-").name, "vl-stamp-westeurope");
    assert!(matches!(
        one(&p, "vl-vnet-vnet1-").role,
        NamespaceRole::Fabric { .. }
    ));
    assert!(matches!(
        one(&p, "vl-host-host1-").role,
        NamespaceRole::InternetHost { .. }
    ));
    assert!(matches!(
        one(&p, "vl-vm-vm1-").role,
        NamespaceRole::VirtualMachine { .. }
    ));
    let plan_id = id_str("Microsoft.Web/serverfarms/plan1");
    for i in 0..2 {
        let w = one(&p, &format!("vl-wk-plan1-{i}-"));
        assert_eq!(
            w.role,
            NamespaceRole::Worker {
                plan_id: plan_id.clone(),
                instance: i
            }
        );
        for site in ["web1", "web2"] {
            let a = one(&p, &format!("vl-app-{site}-{i}-"));
            assert_eq!(
                a.role,
                NamespaceRole::AppSandbox {
                    site_id: id_str(&format!("Microsoft.Web/sites/{site}")),
                    instance: i
                }
            );
        }
    }
    // Name shape: <lab>-<kind>-<readable>-<hash4>.
    let vm = &one(&p, "vl-vm-vm1-").name;
    assert_eq!(vm.len(), "vl-vm-vm1-".len() + 4);
}

#[test]
fn sysctls_everywhere_and_forwarding_in_routers() {
    let p = example();
    for n in p.namespaces.values() {
        for k in [
            "net/ipv4/conf/all/rp_filter",
            "net/ipv4/conf/default/rp_filter",
        ] {
            assert_eq!(
                n.sysctls.get(k).map(String::as_str),
                Some("0"),
                "{} {k}",
                n.name
            );
        }
        for k in [
            "net/ipv6/conf/all/disable_ipv6",
            "net/ipv6/conf/default/disable_ipv6",
        ] {
            assert_eq!(
                n.sysctls.get(k).map(String::as_str),
                Some("1"),
                "{} {k}",
                n.name
            );
        }
        let router = matches!(
            n.role,
            NamespaceRole::Internet
                | NamespaceRole::Stamp { .. }
                | NamespaceRole::Fabric { .. }
                | NamespaceRole::Worker { .. }
        );
        assert_eq!(
            n.sysctls.contains_key("net/ipv4/ip_forward"),
            router,
            "{}",
            n.name
        );
    }
    let fabric = one(&p, "vl-vnet-");
    assert_eq!(fabric.sysctls["net/ipv4/conf/stamp0/proxy_arp"], "1");
    let proxied = fabric
        .sysctls
        .keys()
        .filter(|k| k.starts_with("net/ipv4/conf/n-") && k.ends_with("/proxy_arp"))
        .count();
    assert_eq!(proxied, 3, "two worker vNICs and one VM NIC");
}

#[test]
fn interface_names_fit_and_are_unique_and_every_reference_exists() {
    let p = example();
    for n in p.namespaces.values() {
        let ifs = interfaces(&p, &n.name);
        let set: BTreeSet<&String> = ifs.iter().collect();
        assert_eq!(
            set.len(),
            ifs.len(),
            "duplicate interface in {}: {ifs:?}",
            n.name
        );
        for i in &ifs {
            assert!(i.len() <= 15, "{i} in {}", n.name);
        }
        let known = |i: &str| ifs.iter().any(|x| x == i);
        for a in &n.addresses {
            assert!(
                known(&a.ifname),
                "address on unknown {} in {}",
                a.ifname,
                n.name
            );
        }
        for r in &n.routes {
            match &r.kind {
                RouteKind::Dev { ifname } | RouteKind::Via { ifname, .. } => {
                    assert!(known(ifname), "route via unknown {ifname} in {}", n.name)
                }
                _ => {}
            }
        }
        for r in &n.rules {
            if let Some(i) = &r.iif {
                assert!(known(i), "rule iif unknown {i} in {}", n.name);
            }
        }
        for k in n.sysctls.keys() {
            if let Some(rest) = k.strip_prefix("net/ipv4/conf/") {
                let i = rest.split('/').next().unwrap();
                assert!(
                    i == "all" || i == "default" || known(i),
                    "sysctl {k} in {}",
                    n.name
                );
            }
        }
    }
    for v in &p.veths {
        assert!(p.namespaces.contains_key(&v.a.netns) && p.namespaces.contains_key(&v.b.netns));
    }
}

#[test]
fn worker_tables_for_route_all_off_and_on() {
    let p = example();
    let w = one(&p, "vl-wk-plan1-0-");
    assert!(w.addresses.contains(&AddressPlan {
        ifname: "vnet0".into(),
        address: net("10.0.1.4/24")
    }));
    assert!(w.addresses.contains(&AddressPlan {
        ifname: "pub0".into(),
        address: net("169.254.16.0/32")
    }));
    assert!(w.addresses.contains(&AddressPlan {
        ifname: "lo".into(),
        address: net("169.254.3.1/32")
    }));
    assert_eq!(table(w, 254)["0.0.0.0/0"], via("169.254.2.1", "pub0"));
    // web1 (k = 0): Route All off.
    let t = table(w, 2000);
    for p in [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "168.63.129.16/32",
    ] {
        assert_eq!(t[p], via("10.0.1.1", "vnet0"), "{p}");
    }
    assert_eq!(t["0.0.0.0/0"], via("169.254.2.1", "pub0"));
    // web2 (k = 1): Route All on.
    let t = table(w, 2001);
    assert_eq!(t.len(), 1);
    assert_eq!(t["0.0.0.0/0"], via("10.0.1.1", "vnet0"));
    // Configuration routing: platform sockets marked 0x200 take vnet0.
    assert_eq!(table(w, 3000)["0.0.0.0/0"], via("10.0.1.1", "vnet0"));
    assert!(w
        .rules
        .iter()
        .any(|r| r.fwmark == Some((0x200, u32::MAX)) && r.table == 3000 && r.iif.is_none()));
    let iifs: Vec<(Option<String>, u32)> = w
        .rules
        .iter()
        .filter(|r| r.fwmark.is_none())
        .map(|r| (r.iif.clone(), r.table))
        .collect();
    assert_eq!(iifs.len(), 2);
    assert!(iifs
        .iter()
        .all(|(i, _)| i.as_deref().is_some_and(|i| i.starts_with("a-"))));
    // The second worker has the next pub0 address and the second instance IP.
    let w1 = one(&p, "vl-wk-plan1-1-");
    assert!(w1.addresses.contains(&AddressPlan {
        ifname: "pub0".into(),
        address: net("169.254.16.1/32")
    }));
    assert!(w1.addresses.contains(&AddressPlan {
        ifname: "vnet0".into(),
        address: net("10.0.1.5/24")
    }));
    // Sandboxes: 169.254.129.2 + k.
    let a = one(&p, "vl-app-web2-0-");
    assert_eq!(
        a.addresses,
        vec![AddressPlan {
            ifname: "eth0".into(),
            address: net("169.254.129.3/32")
        }]
    );
    assert_eq!(table(a, 254)["0.0.0.0/0"], via("169.254.3.1", "eth0"));
}

fn nft_text(n: &NamespacePlan) -> String {
    n.nft.as_ref().map(Value::to_string).unwrap_or_default()
}

#[test]
fn stamp_snat_maps_hold_the_outbound_ips() {
    let p = example();
    let s = one(&p, "vl-stamp-");
    let nft = nft_text(s);
    for o in ["198.18.0.4", "198.18.0.5"] {
        assert!(nft.contains(o), "{o} not in {nft}");
        assert!(s.addresses.contains(&AddressPlan {
            ifname: "lo".into(),
            address: net(&format!("{o}/32"))
        }));
    }
    // Route-all traffic handed back by the fabric: (f-link . instance IP) -> outbound IP.
    let fabric = one(&p, "vl-vnet-");
    let f_link = names::link('f', &fabric.name, "stamp0");
    assert!(
        nft.contains(&json!([{"concat": [f_link, "10.0.1.4"]}, "198.18.0.4"]).to_string()),
        "{nft}"
    );
    assert!(
        nft.contains(&json!([{"concat": [f_link, "10.0.1.5"]}, "198.18.0.5"]).to_string()),
        "{nft}"
    );
    assert_eq!(
        s.rules,
        vec![RulePlan {
            priority: 100,
            fwmark: Some((0x100, u32::MAX)),
            iif: None,
            table: 0x100
        }]
    );
    assert_eq!(
        table(s, 0x100)["0.0.0.0/0"],
        RouteKind::Dev { ifname: f_link }
    );
    // The internet routes the outbound IPs to the stamp, the host to its link.
    let inet = &p.namespaces["vl-inet"];
    let s_link = names::link('s', &s.name, "inet0");
    assert_eq!(
        table(inet, 254)["198.18.0.4/32"],
        RouteKind::Dev { ifname: s_link }
    );
    assert!(matches!(
        table(inet, 254)["198.18.100.10/32"],
        RouteKind::Dev { .. }
    ));
    assert_eq!(table(inet, 254)["198.18.0.0/15"], RouteKind::Unreachable);
}

#[test]
fn fabric_subnet_tables_and_marks() {
    let p = example();
    let f = one(&p, "vl-vnet-");
    assert!(f.addresses.contains(&AddressPlan {
        ifname: "lo".into(),
        address: net("10.0.1.1/32")
    }));
    assert!(f.addresses.contains(&AddressPlan {
        ifname: "lo".into(),
        address: net("10.0.2.1/32")
    }));
    let marks: Vec<u32> = f.rules.iter().map(|r| r.fwmark.unwrap().0).collect();
    assert_eq!(marks, vec![1000, 1001]);
    let integration = table(f, 1000);
    assert_eq!(integration["10.0.0.0/16"], RouteKind::Throw);
    assert_eq!(integration["10.0.0.0/8"], RouteKind::Blackhole);
    assert_eq!(integration["100.64.0.0/10"], RouteKind::Blackhole);
    assert_eq!(integration["0.0.0.0/0"], via("169.254.2.1", "stamp0"));
    let vms = table(f, 1001);
    assert_eq!(vms["0.0.0.0/0"], via("169.254.1.1", "inet0"));
    assert_eq!(vms["10.0.0.0/16"], RouteKind::Throw);
    // NIC /32s in main, and the mark map: worker vNICs -> 1000, the VM NIC -> 1001.
    let main = table(f, 254);
    for a in ["10.0.1.4/32", "10.0.1.5/32", "10.0.2.4/32"] {
        assert!(matches!(main[a], RouteKind::Dev { .. }), "{a}");
    }
    let vm = one(&p, "vl-vm-vm1-");
    let vm_link = names::link('n', &vm.name, "eth0");
    let w0 = one(&p, "vl-wk-plan1-0-");
    let w_link = names::link('n', &w0.name, "vnet0");
    let nft = nft_text(f);
    assert!(nft.contains(&json!([vm_link, 1001]).to_string()), "{nft}");
    assert!(nft.contains(&json!([w_link, 1000]).to_string()), "{nft}");
    assert!(
        nft.contains(&format!("\"in-{vm_link}\"")) && nft.contains(&format!("\"out-{vm_link}\""))
    );
    // The VM: its address and default route through the subnet gateway.
    assert_eq!(
        vm.addresses,
        vec![AddressPlan {
            ifname: "eth0".into(),
            address: net("10.0.2.4/24")
        }]
    );
    assert_eq!(
        table(vm, 254)["0.0.0.0/0"],
        RouteKind::Via {
            gateway: ip("10.0.2.1"),
            ifname: "eth0".into(),
            onlink: false
        }
    );
}

#[test]
fn processes_carry_the_app_environment() {
    let p = example();
    assert_eq!(p.processes.len(), 4);
    let web1_0 = p
        .processes
        .iter()
        .find(|pr| pr.key == format!("{}/instances/0", rid("Microsoft.Web/sites/web1").key()))
        .unwrap();
    assert_eq!(web1_0.argv, vec!["/bin/sh", "-c", "exec sleep infinity"]);
    assert!(web1_0.netns.starts_with("vl-app-web1-0-"));
    let env = &web1_0.env;
    assert_eq!(env["WEBSITE_PRIVATE_IP"], "10.0.1.4");
    assert_eq!(env["WEBSITE_SITE_NAME"], "web1");
    assert_eq!(env["WEBSITE_RESOURCE_GROUP"], "lab");
    assert_eq!(env["GREETING"], "hello from web1");
    assert_eq!(env["WEBSITE_INSTANCE_ID"].len(), 64);
    assert!(env["WEBSITE_OWNER_NAME"].ends_with("+lab-westeuropewebspace-Linux"));
}

#[test]
fn app_processes_carry_their_instance_cgroup_and_the_plan_sku_limits() {
    let p = example();
    let site_key = rid("Microsoft.Web/sites/web1").key();
    let hash8 = &names::sha256_hex(&site_key.to_ascii_lowercase())[..8];
    for i in 0..2u32 {
        let pr = p
            .processes
            .iter()
            .find(|pr| pr.key == format!("{site_key}/instances/{i}"))
            .unwrap();
        let cg = pr.cgroup.as_ref().expect("an app instance has a cgroup");
        assert_eq!(cg.path, format!("vnet-agent/vl/web1-{hash8}/{i}"));
        // plan1 is a P1v3: 8 GiB per instance (overview-hosting-plans.md).
        assert_eq!(
            cg.limits,
            CgroupLimits {
                memory_bytes: 8 << 30,
                pids_max: limits::PIDS_MAX
            }
        );
    }
    // Scaling the plan up changes only the limits: the same process.
    let mut state = example_state();
    for r in state.resources.values_mut() {
        if r.id
            .full_type()
            .eq_ignore_ascii_case("Microsoft.Web/serverfarms")
        {
            r.sku = Some(json!({ "name": "P2v3", "tier": "PremiumV3", "capacity": 2 }));
        }
    }
    let up = build(&state, &lab());
    for (a, b) in p.processes.iter().zip(&up.processes) {
        assert!(a.same_process(b), "{}", a.key);
        if let (Some(ca), Some(cb)) = (&a.cgroup, &b.cgroup) {
            assert_eq!(cb.limits.memory_bytes, 2 * ca.limits.memory_bytes);
        }
    }
    // A process recorded before cgroups is the same process (moved into its
    // cgroup, not restarted); one that loses its cgroup is not.
    let with = p.processes.iter().find(|pr| pr.cgroup.is_some()).unwrap();
    let without = ProcessPlan {
        cgroup: None,
        ..with.clone()
    };
    assert!(without.same_process(with));
    assert!(!with.same_process(&without));
    let mut moved = with.clone();
    moved.cgroup.as_mut().unwrap().path.push('x');
    assert!(!with.same_process(&moved));
}

#[test]
fn build_is_deterministic_and_independent_of_input_order() {
    let s = example_state();
    assert_eq!(build(&s, &lab()), build(&s, &lab()));
    let mut template: Value = serde_json::from_str(crate::validate::fixtures::EXAMPLE).unwrap();
    template["resources"].as_array_mut().unwrap().reverse();
    let reversed = deploy_template(&LabState::default(), template).unwrap();
    assert_eq!(build(&reversed, &lab()), build(&s, &lab()));
}

#[test]
fn a_site_without_integration_goes_straight_out() {
    let s = deploy(
        &LabState::default(),
        json!([
            {"type": "Microsoft.Web/serverfarms", "name": "p", "sku": {"name": "S1", "capacity": 1}},
            {"type": "Microsoft.Web/sites", "name": "w1", "properties": {"serverFarmId": id_str("Microsoft.Web/serverfarms/p")}}
        ]),
    )
    .unwrap();
    let p = build(&s, &lab());
    let w = one(&p, "vl-wk-p-0-");
    assert_eq!(table(w, 2000)["0.0.0.0/0"], via("169.254.2.1", "pub0"));
    assert!(!w.addresses.iter().any(|a| a.ifname.starts_with("vnet")));
    assert!(one(&p, "vl-stamp-").rules.is_empty());
    assert!(p.processes.is_empty());
    let spec = exec_target(
        &s,
        &lab(),
        &ExecTarget::App {
            site: "w1".into(),
            instance: 0,
        },
    )
    .unwrap();
    assert!(!spec.env.contains_key("WEBSITE_PRIVATE_IP"));
}

#[test]
fn an_empty_lab_is_just_the_internet() {
    let p = build(&LabState::default(), &lab());
    assert_eq!(p.namespaces.keys().collect::<Vec<_>>(), vec!["vl-inet"]);
}

#[test]
fn exec_targets() {
    let s = example_state();
    let spec = exec_target(
        &s,
        &lab(),
        &ExecTarget::App {
            site: "web1".into(),
            instance: 1,
        },
    )
    .unwrap();
    assert!(spec.netns.starts_with("vl-app-web1-1-"));
    assert_eq!(spec.env["WEBSITE_PRIVATE_IP"], "10.0.1.5");
    let by_id = exec_target(
        &s,
        &lab(),
        &ExecTarget::App {
            site: id_str("Microsoft.Web/sites/web1"),
            instance: 1,
        },
    )
    .unwrap();
    assert_eq!(by_id, spec);
    let e = exec_target(
        &s,
        &lab(),
        &ExecTarget::App {
            site: "web1".into(),
            instance: 2,
        },
    )
    .unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("2 instance"), "{}", e.message);
    let e = exec_target(
        &s,
        &lab(),
        &ExecTarget::App {
            site: "nope".into(),
            instance: 0,
        },
    )
    .unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (404, "ResourceNotFound"));
    let vm = exec_target(&s, &lab(), &ExecTarget::Vm { name: "VM1".into() }).unwrap();
    assert!(vm.netns.starts_with("vl-vm-vm1-") && vm.env.is_empty());
    let h = exec_target(
        &s,
        &lab(),
        &ExecTarget::Host {
            name: "host1".into(),
        },
    )
    .unwrap();
    assert!(h.netns.starts_with("vl-host-host1-"));
}

#[test]
fn views() {
    let s = example_state();
    let l = lab();
    let w =
        view::webapp_show(&s, &l, crate::template::DEFAULT_SUBSCRIPTION, "lab", "web1").unwrap();
    assert_eq!(
        w["properties"]["outboundIpAddresses"],
        "198.18.0.4,198.18.0.5"
    );
    assert_eq!(
        w["properties"]["possibleOutboundIpAddresses"],
        "198.18.0.4,198.18.0.5"
    );
    assert_eq!(w["properties"]["vnetRouteAllEnabled"], false);
    assert_eq!(w["properties"]["state"], "Running");
    assert_eq!(
        w["properties"]["virtualNetworkSubnetId"],
        id_str("Microsoft.Network/virtualNetworks/vnet1/subnets/integration")
    );
    assert_eq!(
        w["emulator"]["instances"][0]["privateIpAddress"],
        "10.0.1.4"
    );
    assert_eq!(
        w["emulator"]["instances"][1]["outboundIpAddress"],
        "198.18.0.5"
    );
    assert!(w["emulator"]["instances"][0]["sandboxNamespace"]
        .as_str()
        .unwrap()
        .starts_with("vl-app-web1-0-"));
    let w2 =
        view::webapp_show(&s, &l, crate::template::DEFAULT_SUBSCRIPTION, "lab", "web2").unwrap();
    assert_eq!(w2["properties"]["vnetRouteAllEnabled"], true);

    let v = view::resource_view(&s, &l, &rid("Microsoft.Network/virtualNetworks/vnet1")).unwrap();
    let subnets = v["properties"]["subnets"].as_array().unwrap();
    assert_eq!(
        subnets[0]["properties"]["serviceAssociationLinks"][0]["name"],
        "AppServiceLink"
    );
    assert_eq!(
        subnets[0]["properties"]["delegations"][0]["properties"]["serviceName"],
        "Microsoft.Web/serverFarms"
    );
    assert!(subnets[1]["properties"]["ipConfigurations"][0]["id"]
        .as_str()
        .unwrap()
        .ends_with("/vm1-nic/ipConfigurations/ipconfig1"));
    assert!(v["emulator"]["fabricNamespace"]
        .as_str()
        .unwrap()
        .starts_with("vl-vnet-vnet1-"));
    assert_eq!(v["emulator"]["defaultOutboundIp"], "198.18.0.6");

    let subnet = view::resource_view(
        &s,
        &l,
        &rid("Microsoft.Network/virtualNetworks/vnet1/subnets/vms"),
    )
    .unwrap();
    assert_eq!(subnet["name"], "vms");

    let n =
        view::resource_view(&s, &l, &rid("Microsoft.Network/networkInterfaces/vm1-nic")).unwrap();
    assert_eq!(
        n["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.2.4"
    );
    let vm = view::resource_view(&s, &l, &rid("Microsoft.Compute/virtualMachines/vm1")).unwrap();
    assert!(vm["emulator"]["namespace"]
        .as_str()
        .unwrap()
        .starts_with("vl-vm-vm1-"));
    let h = view::resource_view(&s, &l, &rid("Lab.Emulator/internetHosts/host1")).unwrap();
    assert_eq!(h["properties"]["ipAddress"], "198.18.100.10");
    let plan = view::resource_view(&s, &l, &rid("Microsoft.Web/serverfarms/plan1")).unwrap();
    assert_eq!(plan["emulator"]["workers"].as_array().unwrap().len(), 2);

    assert_eq!(view::list(&s, &l, None).len(), 7);
    assert_eq!(view::list(&s, &l, Some("LAB")).len(), 7);
    assert!(view::list(&s, &l, Some("other")).is_empty());
    let e = view::resource_view(&s, &l, &rid("Microsoft.Web/sites/nope")).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (404, "ResourceNotFound"));
}
