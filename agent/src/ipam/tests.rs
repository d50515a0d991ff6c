use serde_json::{json, Value};

use super::*;
use crate::validate::fixtures::{id_str, rid};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn lab() -> LabConfig {
    LabConfig::default()
}

fn plan(key: &str, capacity: u32, containers: u32) -> PlanDemand {
    PlanDemand {
        key: key.into(),
        label: format!("App Service plan '{key}'"),
        capacity,
        containers: (0..containers)
            .map(|c| ContainerDemand {
                site: format!("site{c}"),
                label: format!("Windows container app 'site{c}'"),
            })
            .collect(),
    }
}

fn subnet(prefix: &str, plans: &[(&str, u32)], nics: &[(&str, Option<&str>)]) -> SubnetDemand {
    SubnetDemand {
        key: "s".into(),
        label: "s".into(),
        prefix: prefix.parse().unwrap(),
        plans: plans.iter().map(|(p, c)| plan(p, *c, 0)).collect(),
        nics: nics
            .iter()
            .map(|(k, a)| NicDemand {
                key: k.to_string(),
                label: format!("nic {k}"),
                static_address: a.map(ip),
            })
            .collect(),
    }
}

fn size(capacity: u32) -> PlanSize {
    PlanSize {
        sku: "P1v3".into(),
        tier: "PremiumV3".into(),
        capacity,
    }
}

/// A demand whose plans' sizes match their capacity in the subnets.
fn demand(subnets: Vec<SubnetDemand>) -> Demand {
    let sizes = subnets
        .iter()
        .flat_map(|s| &s.plans)
        .map(|p| (p.key.clone(), size(p.capacity)))
        .collect();
    Demand {
        subnets,
        sizes,
        ..Default::default()
    }
}

/// The same demand with plan `p` at `capacity` instances.
fn scaled(d: &Demand, p: &str, capacity: u32) -> Demand {
    let mut d = d.clone();
    for pd in d.subnets.iter_mut().flat_map(|s| &mut s.plans) {
        if pd.key == p {
            pd.capacity = capacity;
        }
    }
    d.sizes.insert(p.into(), size(capacity));
    d
}

fn instance_ips(a: &Allocations, p: &str) -> Vec<Ipv4Addr> {
    a.instances[p]["s"].values().copied().collect()
}

fn releasing(a: &Allocations) -> Vec<(Ipv4Addr, u64)> {
    a.releasing
        .iter()
        .map(|r| (r.address, r.released_at))
        .collect()
}

#[test]
fn two_instances_get_dot4_and_dot5() {
    let d = demand(vec![subnet("10.0.1.0/24", &[("p", 2)], &[])]);
    let a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap();
    assert_eq!(a.instance_ip("p", "s", 0), Some(ip("10.0.1.4")));
    assert_eq!(a.instance_ip("p", "s", 1), Some(ip("10.0.1.5")));
    assert_eq!(a.plan_sizes["p"], size(2));
    assert!(a.releasing.is_empty());
}

#[test]
fn a_slash_28_has_11_usable() {
    let p: Ipv4Net = "10.0.1.0/28".parse().unwrap();
    assert_eq!(usable_count(p), 11);
    assert_eq!(usable_range(p), Some((ip("10.0.1.4"), ip("10.0.1.14"))));
    let d = demand(vec![subnet("10.0.1.0/28", &[("p", 11)], &[])]);
    assert!(allocate(&d, &Allocations::default(), &lab(), 0).is_ok());
    let d = demand(vec![subnet("10.0.1.0/28", &[("p", 12)], &[])]);
    let e = allocate(&d, &Allocations::default(), &lab(), 0).unwrap_err();
    assert_eq!(e.code, "SubnetIsFull");
    for want in ["11 usable", "11 free", "12 are needed", "/26"] {
        assert!(e.message.contains(want), "{want}: {}", e.message);
    }
}

#[test]
fn redeploy_keeps_everything() {
    let d = Demand {
        plans: vec!["p".into()],
        vnets: vec!["v".into()],
        hosts: vec![
            ("h1".into(), "h1".into(), None),
            ("h2".into(), "h2".into(), Some(ip("198.18.100.10"))),
        ],
        ..demand(vec![subnet(
            "10.0.1.0/24",
            &[("p", 3)],
            &[("n1", None), ("n2", Some("10.0.1.100"))],
        )])
    };
    let a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap();
    assert_eq!(allocate(&d, &a, &lab(), 1000).unwrap(), a);
    assert_eq!(a.nic_addresses["n1"], ip("10.0.1.7"));
    assert_eq!(
        a.plan_outbound["p"],
        vec![ip("198.18.0.4"), ip("198.18.0.5")]
    );
    assert_eq!(a.vnet_outbound["v"], ip("198.18.0.6"));
    assert_eq!(a.host_addresses["h1"], ip("198.18.0.7"));
}

#[test]
fn scale_2_to_3_in_a_slash_28_fits_old_plus_new() {
    let d2 = demand(vec![subnet("10.0.1.0/28", &[("p", 2)], &[])]);
    let a = allocate(&d2, &Allocations::default(), &lab(), 0).unwrap();
    assert_eq!(instance_ips(&a, "p"), vec![ip("10.0.1.4"), ip("10.0.1.5")]);
    // 2 old + 3 new = 5 <= 11: every instance gets a NEW address.
    let b = allocate(&scaled(&d2, "p", 3), &a, &lab(), 1000).unwrap();
    assert_eq!(
        instance_ips(&b, "p"),
        vec![ip("10.0.1.6"), ip("10.0.1.7"), ip("10.0.1.8")]
    );
    assert_eq!(
        releasing(&b),
        vec![(ip("10.0.1.4"), 1000), (ip("10.0.1.5"), 1000)]
    );
    assert_eq!(b.releasing[0].reusable_at(300), 1300);
    assert_eq!(b.plan_sizes["p"], size(3));
    let u = subnet_usage(&b, "s", "10.0.1.0/28".parse().unwrap(), 300, Some(1000));
    assert_eq!(
        u,
        SubnetUsage {
            usable: 11,
            used: 3,
            cooling_down: 2,
            free: 6
        }
    );
}

#[test]
fn scale_6_to_7_in_a_slash_28_fails_with_needed_and_free() {
    let d6 = demand(vec![subnet("10.0.1.0/28", &[("p", 6)], &[])]);
    let a = allocate(&d6, &Allocations::default(), &lab(), 0).unwrap();
    let e = allocate(&scaled(&d6, "p", 7), &a, &lab(), 1000).unwrap_err();
    assert_eq!(e.code, "SubnetIsFull");
    for want in [
        "capacity for 7 IP address",
        "from 6 to 7 instance(s)",
        "13 at once",
        "11 usable",
        "6 in use",
        "5 free",
        "7 are needed",
        "/26 with 64 addresses",
    ] {
        assert!(e.message.contains(want), "{want}: {}", e.message);
    }
    // Scaling up in size (same count) doubles too: 6 + 6 > 11.
    let mut up = d6.clone();
    up.sizes.insert(
        "p".into(),
        PlanSize {
            sku: "P2v3".into(),
            ..size(6)
        },
    );
    let e = allocate(&up, &a, &lab(), 1000).unwrap_err();
    assert!(
        e.message
            .contains("from P1v3 (6 instance(s)) to P2v3 (6 instance(s))"),
        "{}",
        e.message
    );
    // The same size is no scale: nothing moves.
    assert_eq!(allocate(&d6, &a, &lab(), 1000).unwrap(), a);
}

#[test]
fn released_addresses_are_not_reused_before_the_cooldown() {
    let d2 = demand(vec![subnet("10.0.1.0/28", &[("p", 2)], &[])]);
    let a = allocate(&d2, &Allocations::default(), &lab(), 0).unwrap();
    let b = allocate(&scaled(&d2, "p", 3), &a, &lab(), 1000).unwrap(); // .4 .5 released at 1000
                                                                       // Scale back to 2 one second before the cooldown ends: .4 .5 still cool.
    let early = allocate(&d2, &b, &lab(), 1299).unwrap();
    assert_eq!(
        instance_ips(&early, "p"),
        vec![ip("10.0.1.9"), ip("10.0.1.10")]
    );
    assert_eq!(
        releasing(&early),
        vec![
            (ip("10.0.1.4"), 1000),
            (ip("10.0.1.5"), 1000),
            (ip("10.0.1.6"), 1299),
            (ip("10.0.1.7"), 1299),
            (ip("10.0.1.8"), 1299),
        ]
    );
    // At released_at + cooldown they are free again (and forgotten).
    let late = allocate(&d2, &b, &lab(), 1300).unwrap();
    assert_eq!(
        instance_ips(&late, "p"),
        vec![ip("10.0.1.4"), ip("10.0.1.5")]
    );
    assert_eq!(
        releasing(&late),
        vec![
            (ip("10.0.1.6"), 1300),
            (ip("10.0.1.7"), 1300),
            (ip("10.0.1.8"), 1300)
        ]
    );
    // Addresses cooling down count against the room for a scale.
    let d6 = demand(vec![subnet("10.0.1.0/28", &[("p", 4)], &[])]);
    let a = allocate(&d6, &Allocations::default(), &lab(), 0).unwrap(); // .4-.7
    let b = allocate(&scaled(&d6, "p", 3), &a, &lab(), 10).unwrap(); // .8-.10, .4-.7 cool
                                                                     // 3 -> 5: 3 old held + 4 cooling leave 4 free, 5 are needed.
    let e = allocate(&scaled(&d6, "p", 5), &b, &lab(), 20).unwrap_err();
    for want in ["4 cooling down", "4 free", "5 are needed"] {
        assert!(e.message.contains(want), "{want}: {}", e.message);
    }
    assert!(allocate(&scaled(&d6, "p", 5), &b, &lab(), 310).is_ok());
}

#[test]
fn a_cooldown_of_zero_reuses_at_once_but_still_makes_before_breaking() {
    let lab0 = LabConfig {
        address_cooldown_secs: 0,
        ..lab()
    };
    let d6 = demand(vec![subnet("10.0.1.0/28", &[("p", 6)], &[])]);
    let a = allocate(&d6, &Allocations::default(), &lab0, 0).unwrap();
    assert!(allocate(&scaled(&d6, "p", 7), &a, &lab0, 5).is_err());
    let b = allocate(&scaled(&d6, "p", 5), &a, &lab0, 5).unwrap();
    assert_eq!(instance_ips(&b, "p")[0], ip("10.0.1.10"));
    assert!(b.releasing.is_empty());
    let c = allocate(&scaled(&d6, "p", 4), &b, &lab0, 5).unwrap();
    assert_eq!(instance_ips(&c, "p")[0], ip("10.0.1.4"));
}

#[test]
fn disconnecting_releases_into_the_cooldown() {
    let d = demand(vec![subnet("10.0.1.0/24", &[("p", 2)], &[])]);
    let a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap();
    let gone = Demand {
        subnets: vec![subnet("10.0.1.0/24", &[], &[("n", None)])],
        ..Default::default()
    };
    let b = allocate(&gone, &a, &lab(), 50).unwrap();
    assert!(b.instances.is_empty());
    assert_eq!(
        releasing(&b),
        vec![(ip("10.0.1.4"), 50), (ip("10.0.1.5"), 50)]
    );
    assert_eq!(b.nic_addresses["n"], ip("10.0.1.6"));
    // The subnet itself deleted: nothing is left to cool down in.
    assert!(allocate(&Demand::default(), &b, &lab(), 60)
        .unwrap()
        .releasing
        .is_empty());
}

#[test]
fn a_state_from_before_plan_sizes_keeps_its_addresses() {
    let d = demand(vec![subnet("10.0.1.0/24", &[("p", 3)], &[])]);
    let mut a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap();
    a.plan_sizes.clear();
    let b = allocate(&scaled(&d, "p", 1), &a, &lab(), 10).unwrap();
    assert_eq!(instance_ips(&b, "p"), vec![ip("10.0.1.4")]);
    assert_eq!(
        releasing(&b),
        vec![(ip("10.0.1.5"), 10), (ip("10.0.1.6"), 10)]
    );
}

#[test]
fn allocation_is_deterministic_given_state_and_now() {
    let d = demand(vec![subnet("10.0.1.0/26", &[("p", 4)], &[("n", None)])]);
    let a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap();
    let runs: Vec<Allocations> = (0..3)
        .map(|_| allocate(&scaled(&d, "p", 6), &a, &lab(), 77).unwrap())
        .collect();
    assert!(runs.windows(2).all(|w| w[0] == w[1]));
    let back: Allocations =
        serde_json::from_str(&serde_json::to_string(&runs[0]).unwrap()).unwrap();
    assert_eq!(back, runs[0]);
    // From the round-tripped state, the same next step.
    let d2 = scaled(&d, "p", 2);
    assert_eq!(
        allocate(&d2, &back, &lab(), 500).unwrap(),
        allocate(&d2, &runs[0], &lab(), 500).unwrap()
    );
}

#[test]
fn the_seeds_windows_container_sample_needs_50_and_doubles_on_scale() {
    // Seed: 10 instances x (4 Windows container apps + 1) = 50 addresses.
    let sub = |prefix: &str, cap| SubnetDemand {
        plans: vec![plan("p", cap, 4)],
        ..subnet(prefix, &[], &[])
    };
    let d = demand(vec![sub("10.0.1.0/26", 10)]);
    let a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap();
    let u = subnet_usage(&a, "s", "10.0.1.0/26".parse().unwrap(), 300, Some(0));
    assert_eq!((u.used, u.free), (50, 9));
    assert_eq!(instance_ips(&a, "p").len(), 10);
    assert_eq!(a.instance_ip("p", "s", 9), Some(ip("10.0.1.13")));
    // Containers follow the instances: instance 0's four apps, then instance 1's.
    assert_eq!(a.container_ip("p", "s", 0, "site0"), Some(ip("10.0.1.14")));
    assert_eq!(a.container_ip("p", "s", 0, "site3"), Some(ip("10.0.1.17")));
    assert_eq!(a.container_ip("p", "s", 9, "site3"), Some(ip("10.0.1.53")));
    // 11 instances in a /26 do not fit (55 > 59 - 50 = 9 free) ...
    let e = allocate(&scaled(&d, "p", 11), &a, &lab(), 100).unwrap_err();
    for want in [
        "capacity for 55 IP address",
        "105 at once",
        "9 free",
        "4 app(s)",
    ] {
        assert!(e.message.contains(want), "{want}: {}", e.message);
    }
    // ... while a /25 (123 usable) the scale to 11 fits: 50 old + 55 new = 105.
    let d = demand(vec![sub("10.0.1.0/25", 10)]);
    let a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap();
    let b = allocate(&scaled(&d, "p", 11), &a, &lab(), 100).unwrap();
    let u = subnet_usage(&b, "s", "10.0.1.0/25".parse().unwrap(), 300, Some(100));
    assert_eq!((u.used, u.cooling_down, u.free), (55, 50, 18));
    assert!(b.containers["p"]["s"]
        .values()
        .flat_map(|m| m.values())
        .all(|a| u32::from(*a) >= u32::from(ip("10.0.1.54"))));
}

fn web_lab(capacity: u32, prefix: &str, containers: &[&str]) -> Value {
    let mut res = vec![
        json!({"type": "Microsoft.Network/virtualNetworks", "name": "v", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "int", "properties": {"addressPrefix": prefix}}]}}),
        json!({"type": "Microsoft.Web/serverfarms", "name": "p", "kind": "windows",
               "sku": {"name": "P1v3", "capacity": capacity}}),
        json!({"type": "Microsoft.Web/sites", "name": "code", "properties": {
            "serverFarmId": id_str("Microsoft.Web/serverfarms/p"),
            "virtualNetworkSubnetId": id_str("Microsoft.Network/virtualNetworks/v/subnets/int")}}),
    ];
    for c in containers {
        res.push(json!({"type": "Microsoft.Web/sites", "name": c, "properties": {
            "serverFarmId": id_str("Microsoft.Web/serverfarms/p"),
            "virtualNetworkSubnetId": id_str("Microsoft.Network/virtualNetworks/v/subnets/int"),
            "siteConfig": {"windowsFxVersion": "DOCKER|mcr.microsoft.com/dotnet/samples:aspnetapp"}}}));
    }
    Value::Array(res)
}

fn deploy_at(state: &LabState, resources: Value, now: u64) -> Result<LabState, AzureError> {
    let req = crate::template::DeploymentRequest {
        subscription: crate::template::DEFAULT_SUBSCRIPTION.into(),
        resource_group: "lab".into(),
        template: json!({ "resources": resources }),
        parameters: Default::default(),
        ..Default::default()
    };
    crate::validate::apply_resources(
        state,
        crate::template::expand(&req)?,
        &lab(),
        &crate::validate::RequestContext {
            now,
            ..Default::default()
        },
    )
}

#[test]
fn windows_containers_are_found_in_the_inventory() {
    let s = deploy_at(
        &LabState::default(),
        web_lab(2, "10.0.1.0/26", &["c1", "c2"]),
        0,
    )
    .unwrap();
    let inv = Inventory::parse(&s.resources).unwrap();
    let d = Demand::of(&inv);
    let sd = d.subnets.iter().find(|s| !s.plans.is_empty()).unwrap();
    assert_eq!(sd.plans[0].containers.len(), 2);
    assert_eq!(sd.plans[0].addresses(), 6);
    let (p, sub) = (
        rid("Microsoft.Web/serverfarms/p").key(),
        rid("Microsoft.Network/virtualNetworks/v/subnets/int").key(),
    );
    let c1 = rid("Microsoft.Web/sites/c1").key();
    // Instances .4 .5 first, then instance 0's apps (.6 .7), then instance 1's.
    assert_eq!(
        s.allocations.container_ip(&p, &sub, 0, &c1),
        Some(ip("10.0.1.6"))
    );
    assert_eq!(
        s.allocations.container_ip(&p, &sub, 1, &c1),
        Some(ip("10.0.1.8"))
    );
    // A Hyper-V plan makes every app a container; a Linux plan none.
    let plan_of = |props: Value, kind: &str| {
        let res: crate::model::GenericResource = serde_json::from_value(json!({
            "id": id_str("Microsoft.Web/serverfarms/x"), "type": "Microsoft.Web/serverfarms",
            "name": "x", "kind": kind, "properties": props}))
        .unwrap();
        crate::model::ServerFarm::from_resource(&res).unwrap()
    };
    let code = inv.site(&rid("Microsoft.Web/sites/code")).unwrap();
    let c1 = inv.site(&rid("Microsoft.Web/sites/c1")).unwrap();
    assert!(is_windows_container(
        code,
        &plan_of(json!({"hyperV": true}), "windows")
    ));
    assert!(is_windows_container(
        code,
        &plan_of(json!({"isXenon": true}), "windows")
    ));
    assert!(!is_windows_container(code, &plan_of(json!({}), "windows")));
    assert!(is_windows_container(c1, &plan_of(json!({}), "windows")));
    assert!(!is_windows_container(
        c1,
        &plan_of(json!({"reserved": true}), "linux")
    ));
}

#[test]
fn scaling_through_a_deployment_moves_every_address() {
    let s = deploy_at(&LabState::default(), web_lab(2, "10.0.1.0/28", &[]), 0).unwrap();
    let (p, sub) = (
        rid("Microsoft.Web/serverfarms/p").key(),
        rid("Microsoft.Network/virtualNetworks/v/subnets/int").key(),
    );
    let s3 = deploy_at(&s, web_lab(3, "10.0.1.0/28", &[]), 1000).unwrap();
    assert_eq!(
        s3.allocations.instance_ip(&p, &sub, 0),
        Some(ip("10.0.1.6"))
    );
    assert_eq!(s3.allocations.releasing_of(&p).count(), 2);
    // 3 -> 5: 3 old held + 2 cooling + 5 new = 10 <= 11.
    let s5 = deploy_at(&s3, web_lab(5, "10.0.1.0/28", &[]), 1001).unwrap();
    assert_eq!(
        s5.allocations.instance_ip(&p, &sub, 0),
        Some(ip("10.0.1.9"))
    );
    // 5 -> 4: 5 old held + 5 cooling + 4 new = 14 > 11.
    let e = deploy_at(&s5, web_lab(4, "10.0.1.0/28", &[]), 1002).unwrap_err();
    assert_eq!(e.code, "SubnetIsFull");
    for want in [
        "from 5 to 4 instance(s)",
        "5 cooling down",
        "1 free",
        "4 are needed",
    ] {
        assert!(e.message.contains(want), "{want}: {}", e.message);
    }
    // At 1300 .4 .5 have cooled down but .6-.8 (released at 1001) have not:
    // 5 + 3 + 4 = 12 > 11. At 1301 all have: 5 + 4 = 9 fits.
    assert!(deploy_at(&s5, web_lab(4, "10.0.1.0/28", &[]), 1300).is_err());
    assert!(deploy_at(&s5, web_lab(4, "10.0.1.0/28", &[]), 1301).is_ok());
}

#[test]
fn platform_upgrade_moves_every_instance_and_container() {
    let s = deploy_at(&LabState::default(), web_lab(2, "10.0.1.0/27", &["c1"]), 0).unwrap();
    let plan_id = rid("Microsoft.Web/serverfarms/p");
    let (p, sub) = (
        plan_id.key(),
        rid("Microsoft.Network/virtualNetworks/v/subnets/int").key(),
    );
    // Before: instances .4 .5, container c1 on them .6 .7.
    let before: Vec<Ipv4Addr> = (0..2)
        .filter_map(|i| s.allocations.instance_ip(&p, &sub, i))
        .collect();
    assert_eq!(before, vec![ip("10.0.1.4"), ip("10.0.1.5")]);
    let up = platform_upgrade(&s, &plan_id, &lab(), 500).unwrap();
    assert_eq!(up.generation, s.generation + 1);
    let a = &up.allocations;
    assert_eq!(a.instance_ip(&p, &sub, 0), Some(ip("10.0.1.8")));
    assert_eq!(a.instance_ip(&p, &sub, 1), Some(ip("10.0.1.9")));
    let c1 = rid("Microsoft.Web/sites/c1").key();
    assert_eq!(a.container_ip(&p, &sub, 0, &c1), Some(ip("10.0.1.10")));
    assert_eq!(
        releasing(a),
        ["10.0.1.4", "10.0.1.5", "10.0.1.6", "10.0.1.7"]
            .iter()
            .map(|s| (ip(s), 500))
            .collect::<Vec<_>>()
    );
    // The resources and the plan's size did not change.
    assert_eq!(up.resources, s.resources);
    assert_eq!(a.plan_sizes, s.allocations.plan_sizes);
    // Deterministic.
    assert_eq!(platform_upgrade(&s, &plan_id, &lab(), 500).unwrap(), up);
    // A redeploy of the same thing after the upgrade keeps the new addresses.
    let again = deploy_at(&up, web_lab(2, "10.0.1.0/27", &["c1"]), 501).unwrap();
    assert_eq!(again.allocations, up.allocations);
}

#[test]
fn platform_upgrade_fails_when_the_subnet_cannot_hold_old_and_new() {
    // 6 instances in a /28: 6 old + 6 new = 12 > 11.
    let s = deploy_at(&LabState::default(), web_lab(6, "10.0.1.0/28", &[]), 0).unwrap();
    let plan_id = rid("Microsoft.Web/serverfarms/p");
    let e = platform_upgrade(&s, &plan_id, &lab(), 10).unwrap_err();
    assert_eq!(e.code, "SubnetIsFull");
    for want in [
        "platform upgrade",
        "'p' (6 instance(s))",
        "12 at once",
        "5 free",
        "6 are needed",
        "/26",
    ] {
        assert!(e.message.contains(want), "{want}: {}", e.message);
    }
    // 5 instances fit (5 + 5 = 10).
    let s = deploy_at(&LabState::default(), web_lab(5, "10.0.1.0/28", &[]), 0).unwrap();
    assert!(platform_upgrade(&s, &plan_id, &lab(), 10).is_ok());
    // An unknown plan.
    let e = platform_upgrade(&s, &rid("Microsoft.Web/serverfarms/nope"), &lab(), 10).unwrap_err();
    assert_eq!(e.code, "ResourceNotFound");
}

#[test]
fn static_addresses_are_checked() {
    for (addr, code) in [
        ("10.0.2.4", "PrivateIPAddressNotInSubnet"),
        ("10.0.1.1", "PrivateIPAddressIsReserved"),
        ("10.0.1.3", "PrivateIPAddressIsReserved"),
        ("10.0.1.255", "PrivateIPAddressIsReserved"),
    ] {
        let d = demand(vec![subnet("10.0.1.0/24", &[], &[("n", Some(addr))])]);
        assert_eq!(
            allocate(&d, &Allocations::default(), &lab(), 0)
                .unwrap_err()
                .code,
            code,
            "{addr}"
        );
    }
    let d = demand(vec![subnet(
        "10.0.1.0/24",
        &[],
        &[("a", Some("10.0.1.9")), ("b", Some("10.0.1.9"))],
    )]);
    let e = allocate(&d, &Allocations::default(), &lab(), 0).unwrap_err();
    assert_eq!(e.code, "PrivateIPAddressInUse");
    assert!(e.message.contains("nic a"), "{}", e.message);
}

/// Issue 10, item 1: a host takes any public unicast address, inside the
/// pool or not; non-public ones, the pool's network address and an address
/// another host holds are refused, naming the host and the address.
#[test]
fn hosts_take_public_addresses_outside_the_pool_too() {
    let hosts = |list: &[(&str, &str)]| Demand {
        hosts: list
            .iter()
            .map(|(h, a)| (h.to_string(), format!("host {h}"), Some(ip(a))))
            .collect(),
        plans: vec!["p".into()],
        ..Default::default()
    };
    let a = allocate(
        &hosts(&[("partner", "203.0.113.77"), ("api", "20.50.1.1")]),
        &Allocations::default(),
        &lab(),
        0,
    )
    .unwrap();
    assert_eq!(a.host_addresses["partner"], ip("203.0.113.77"));
    assert_eq!(a.host_addresses["api"], ip("20.50.1.1"));
    for bad in [
        "10.0.0.7",
        "100.64.1.1",
        "127.0.0.2",
        "169.254.9.9",
        "224.1.1.1",
        "0.0.0.9",
        "168.63.129.16",
        "192.0.2.53",
        "198.18.0.0",
    ] {
        let e = allocate(&hosts(&[("h", bad)]), &Allocations::default(), &lab(), 0).unwrap_err();
        assert_eq!(e.code, "InvalidInternetHostAddress", "{bad}");
        assert!(
            e.message.contains(bad) && e.message.contains("host h"),
            "{}",
            e.message
        );
    }
    let e = allocate(
        &hosts(&[("a", "203.0.113.77"), ("b", "203.0.113.77")]),
        &Allocations::default(),
        &lab(),
        0,
    )
    .unwrap_err();
    assert_eq!(e.code, "PublicIPAddressInUse");
    assert!(
        e.message.contains("host a") && e.message.contains("host b"),
        "{}",
        e.message
    );
}

#[test]
fn explicit_host_addresses_are_skipped_by_the_pool() {
    let d = Demand {
        plans: vec!["p".into()],
        hosts: vec![("h".into(), "host h".into(), Some(ip("198.18.0.4")))],
        ..Default::default()
    };
    let a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap();
    assert_eq!(
        a.plan_outbound["p"],
        vec![ip("198.18.0.5"), ip("198.18.0.6")]
    );
}

#[test]
fn a_new_dynamic_nic_takes_the_lowest_address_not_cooling_down() {
    let d = demand(vec![subnet("10.0.1.0/24", &[("p", 3)], &[("n1", None)])]);
    let a = allocate(&d, &Allocations::default(), &lab(), 0).unwrap(); // p .4-.6, n1 .7
    let mut d1 = scaled(&d, "p", 1);
    let b = allocate(&d1, &a, &lab(), 0).unwrap(); // p .8, .4-.6 cool until 300
    assert_eq!(instance_ips(&b, "p"), vec![ip("10.0.1.8")]);
    d1.subnets[0].nics.push(NicDemand {
        key: "n3".into(),
        label: "n3".into(),
        static_address: None,
    });
    assert_eq!(
        allocate(&d1, &b, &lab(), 299).unwrap().nic_addresses["n3"],
        ip("10.0.1.9")
    );
    assert_eq!(
        allocate(&d1, &b, &lab(), 300).unwrap().nic_addresses["n3"],
        ip("10.0.1.4")
    );
}

#[test]
fn sandbox_and_worker_slots_stay_with_their_owner() {
    let owners = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // A state from before slots were kept: the positions it had.
    let first = super::stable_slots(None, &owners(&["web1", "web2", "web3"]));
    assert_eq!(first["web1"], 0);
    assert_eq!(first["web3"], 2);
    // web1 goes: web2 and web3 keep theirs (their flows live on).
    let after_delete = super::stable_slots(Some(&first), &owners(&["web2", "web3"]));
    assert_eq!(after_delete["web2"], 1);
    assert_eq!(after_delete["web3"], 2);
    // A new site takes the lowest free slot.
    let after_add = super::stable_slots(Some(&after_delete), &owners(&["web2", "web3", "web4"]));
    assert_eq!(after_add["web4"], 0);
    assert_eq!(after_add["web2"], 1);
}
