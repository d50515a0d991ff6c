//! The benchmark's baseline: a bash script that builds a `NetworkPlan` the way
//! a person would script it with `ip` and `nft`, one command per object.
//!
//! Pure: renders text, touches nothing. The nft batches go to files next to
//! the script (`nft/<namespace>.json`), never inline, so no JSON is ever quoted
//! by the shell.

use std::fmt::Write as _;

use vnet_agent::plan::{NetworkPlan, RouteKind, RulePlan};

/// The main routing table: `ip` commands leave `table` out for it.
const MAIN_TABLE: u32 = 254;

/// A rendered baseline: the script, and the files it reads (relative path, content).
pub struct Rendered {
    pub script: String,
    pub files: Vec<(String, String)>,
}

/// The build script for `plan`. Order, as one would write it by hand:
/// namespaces (with `lo` up and namespace-wide sysctls), then veth pairs born in
/// their namespaces and set up, then per namespace the interface sysctls,
/// addresses, routes, rules and the nft batch.
pub fn render_build(plan: &NetworkPlan) -> Rendered {
    let mut s = String::from(
        "#!/usr/bin/env bash\n# Baseline: the same lab built with ip and nft.\nset -euo pipefail\n",
    );
    let mut files = Vec::new();

    s.push_str("\n# Namespaces\n");
    for ns in plan.namespaces.values() {
        let n = q(&ns.name);
        let _ = writeln!(s, "ip netns add {n}");
        let _ = writeln!(s, "ip -n {n} link set lo up");
        for (key, value) in ns.sysctls.iter().filter(|(k, _)| !is_link_sysctl(k)) {
            let _ = writeln!(s, "{}", sysctl(&ns.name, key, value));
        }
    }

    s.push_str("\n# Links\n");
    for v in &plan.veths {
        let _ = writeln!(
            s,
            "ip link add {} netns {} type veth peer name {} netns {}",
            q(&v.a.ifname),
            q(&v.a.netns),
            q(&v.b.ifname),
            q(&v.b.netns)
        );
        for end in [&v.a, &v.b] {
            let _ = writeln!(s, "ip -n {} link set {} up", q(&end.netns), q(&end.ifname));
        }
    }

    for ns in plan.namespaces.values() {
        let n = q(&ns.name);
        let _ = writeln!(s, "\n# {}", ns.name);
        for (key, value) in ns.sysctls.iter().filter(|(k, _)| is_link_sysctl(k)) {
            let _ = writeln!(s, "{}", sysctl(&ns.name, key, value));
        }
        for a in &ns.addresses {
            let _ = writeln!(s, "ip -n {n} addr add {} dev {}", a.address, q(&a.ifname));
        }
        for r in &ns.routes {
            let dest = if r.destination.prefix_len() == 0 {
                "default".to_string()
            } else {
                r.destination.to_string()
            };
            let route = match &r.kind {
                RouteKind::Dev { ifname } => format!("{dest} dev {}", q(ifname)),
                RouteKind::Via {
                    gateway,
                    ifname,
                    onlink,
                } => format!(
                    "{dest} via {gateway} dev {}{}",
                    q(ifname),
                    if *onlink { " onlink" } else { "" }
                ),
                RouteKind::Blackhole => format!("blackhole {dest}"),
                RouteKind::Throw => format!("throw {dest}"),
                RouteKind::Unreachable => format!("unreachable {dest}"),
            };
            let _ = writeln!(s, "ip -n {n} route add {route}{}", table(r.table));
        }
        for r in &ns.rules {
            let _ = writeln!(s, "ip -n {n} rule add {}", rule(r));
        }
        if let Some(batch) = &ns.nft {
            let file = format!("nft/{}.json", ns.name);
            let _ = writeln!(s, "ip netns exec {n} nft -j -f {}", q(&file));
            files.push((file, batch.to_string()));
        }
    }
    Rendered { script: s, files }
}

/// The teardown script: every namespace deleted (links, routes, rules and
/// tables go with it).
pub fn render_teardown(plan: &NetworkPlan) -> String {
    let mut s = String::from("#!/usr/bin/env bash\nset -uo pipefail\nrc=0\n");
    for name in plan.namespaces.keys() {
        let _ = writeln!(s, "ip netns del {} || rc=1", q(name));
    }
    s.push_str("exit $rc\n");
    s
}

/// Number of commands the build script runs (its non-comment lines but `set`).
pub fn command_count(script: &str) -> usize {
    script
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("set "))
        .count()
}

/// `net/ipv4/conf/<link>/...` (not `all` or `default`): needs the link to exist.
fn is_link_sysctl(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    matches!(parts.as_slice(), ["net", "ipv4" | "ipv6", "conf" | "neigh", dev, _, ..] if *dev != "all" && *dev != "default")
}

fn sysctl(ns: &str, key: &str, value: &str) -> String {
    // procps' sysctl takes the /proc/sys path with slashes, which keeps link
    // names with dots unambiguous.
    format!(
        "ip netns exec {} sysctl -qw {}",
        q(ns),
        q(&format!("{key}={value}"))
    )
}

fn table(t: u32) -> String {
    if t == MAIN_TABLE {
        String::new()
    } else {
        format!(" table {t}")
    }
}

fn rule(r: &RulePlan) -> String {
    let mut s = format!("priority {}", r.priority);
    if let Some((mark, mask)) = r.fwmark {
        if mask == u32::MAX {
            let _ = write!(s, " fwmark {mark:#x}");
        } else {
            let _ = write!(s, " fwmark {mark:#x}/{mask:#x}");
        }
    }
    if let Some(iif) = &r.iif {
        let _ = write!(s, " iif {}", q(iif));
    }
    let _ = write!(s, " lookup {}", r.table);
    s
}

/// Shell-quotes a word: unchanged when it is plain, in single quotes otherwise.
pub fn q(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;
    use vnet_agent::plan::{
        AddressPlan, NamespacePlan, NamespaceRole, RoutePlan, VethEnd, VethPlan,
    };

    fn ns(name: &str) -> NamespacePlan {
        NamespacePlan {
            name: name.into(),
            role: NamespaceRole::Internet,
            sysctls: BTreeMap::new(),
            addresses: vec![],
            routes: vec![],
            rules: vec![],
            nft: None,
        }
    }

    /// A stamp and a worker joined by one veth, with the routes and rules of
    /// docs/datapath.md.
    fn plan() -> NetworkPlan {
        let mut stamp = ns("t-stamp-westeurope");
        stamp
            .sysctls
            .insert("net/ipv4/ip_forward".into(), "1".into());
        stamp
            .sysctls
            .insert("net/ipv4/conf/all/rp_filter".into(), "0".into());
        stamp
            .sysctls
            .insert("net/ipv4/conf/w-1a2b3c/proxy_arp".into(), "1".into());
        stamp.addresses.push(AddressPlan {
            ifname: "lo".into(),
            address: "169.254.2.1/32".parse().unwrap(),
        });
        stamp.routes.push(RoutePlan {
            table: 254,
            destination: "0.0.0.0/0".parse().unwrap(),
            kind: RouteKind::Via {
                gateway: Ipv4Addr::new(169, 254, 1, 1),
                ifname: "inet0".into(),
                onlink: true,
            },
        });
        stamp.routes.push(RoutePlan {
            table: 254,
            destination: "169.254.16.0/32".parse().unwrap(),
            kind: RouteKind::Dev {
                ifname: "w-1a2b3c".into(),
            },
        });
        stamp.routes.push(RoutePlan {
            table: 1000,
            destination: "10.0.0.0/8".parse().unwrap(),
            kind: RouteKind::Blackhole,
        });
        stamp.routes.push(RoutePlan {
            table: 1000,
            destination: "10.0.0.0/16".parse().unwrap(),
            kind: RouteKind::Throw,
        });
        stamp.routes.push(RoutePlan {
            table: 254,
            destination: "198.18.0.0/15".parse().unwrap(),
            kind: RouteKind::Unreachable,
        });
        stamp.rules.push(RulePlan {
            priority: 100,
            fwmark: Some((0x100, u32::MAX)),
            iif: None,
            table: 256,
        });
        stamp.rules.push(RulePlan {
            priority: 100,
            fwmark: Some((0x3e8, 0xffff)),
            iif: None,
            table: 1000,
        });
        stamp.rules.push(RulePlan {
            priority: 100,
            fwmark: None,
            iif: Some("a-0d0e0f".into()),
            table: 2000,
        });
        stamp.nft = Some(serde_json::json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": "vnet_agent"}}},
            {"add": {"rule": {"family": "inet", "table": "vnet_agent", "chain": "c",
                "comment": "it's \"quoted\" $HOME `x`", "expr": []}}}
        ]}));
        let wk = ns("t-wk-plan1-0-abcd");
        NetworkPlan {
            lab: "t".into(),
            namespaces: [stamp, wk]
                .into_iter()
                .map(|n| (n.name.clone(), n))
                .collect(),
            veths: vec![VethPlan {
                a: VethEnd {
                    netns: "t-stamp-westeurope".into(),
                    ifname: "w-1a2b3c".into(),
                },
                b: VethEnd {
                    netns: "t-wk-plan1-0-abcd".into(),
                    ifname: "pub0".into(),
                },
            }],
            ..Default::default()
        }
    }

    fn lines(s: &str) -> Vec<&str> {
        s.lines().collect()
    }

    fn pos(script: &str, line: &str) -> usize {
        lines(script)
            .iter()
            .position(|l| *l == line)
            .unwrap_or_else(|| panic!("missing line {line:?} in:\n{script}"))
    }

    #[test]
    fn one_command_per_object() {
        let r = render_build(&plan());
        let s = &r.script;
        let st = "t-stamp-westeurope";
        for line in [
            "set -euo pipefail".to_string(),
            format!("ip netns add {st}"),
            "ip netns add t-wk-plan1-0-abcd".into(),
            format!("ip -n {st} link set lo up"),
            format!(
                "ip link add w-1a2b3c netns {st} type veth peer name pub0 netns t-wk-plan1-0-abcd"
            ),
            format!("ip -n {st} link set w-1a2b3c up"),
            "ip -n t-wk-plan1-0-abcd link set pub0 up".into(),
            format!("ip netns exec {st} sysctl -qw net/ipv4/ip_forward=1"),
            format!("ip -n {st} addr add 169.254.2.1/32 dev lo"),
            format!("ip -n {st} route add default via 169.254.1.1 dev inet0 onlink"),
            format!("ip -n {st} route add 169.254.16.0/32 dev w-1a2b3c"),
            format!("ip -n {st} route add blackhole 10.0.0.0/8 table 1000"),
            format!("ip -n {st} route add throw 10.0.0.0/16 table 1000"),
            format!("ip -n {st} route add unreachable 198.18.0.0/15"),
            format!("ip -n {st} rule add priority 100 fwmark 0x100 lookup 256"),
            format!("ip -n {st} rule add priority 100 fwmark 0x3e8/0xffff lookup 1000"),
            format!("ip -n {st} rule add priority 100 iif a-0d0e0f lookup 2000"),
            format!("ip netns exec {st} nft -j -f nft/{st}.json"),
        ] {
            pos(s, &line);
        }
        // 2 netns + 2 lo + 2 global sysctls + veth + 2 up + 1 link sysctl + 1 addr
        // + 5 routes + 3 rules + 1 nft.
        assert_eq!(command_count(s), 20, "{s}");
    }

    #[test]
    fn link_sysctls_come_after_the_links_and_global_ones_before() {
        let s = render_build(&plan()).script;
        let st = "t-stamp-westeurope";
        let veth = pos(
            &s,
            &format!(
                "ip link add w-1a2b3c netns {st} type veth peer name pub0 netns t-wk-plan1-0-abcd"
            ),
        );
        let global = pos(
            &s,
            &format!("ip netns exec {st} sysctl -qw net/ipv4/conf/all/rp_filter=0"),
        );
        let link = pos(
            &s,
            &format!("ip netns exec {st} sysctl -qw net/ipv4/conf/w-1a2b3c/proxy_arp=1"),
        );
        let up = pos(&s, &format!("ip -n {st} link set w-1a2b3c up"));
        let route = pos(
            &s,
            &format!("ip -n {st} route add 169.254.16.0/32 dev w-1a2b3c"),
        );
        assert!(global < veth && veth < up && up < link && up < route, "{s}");
    }

    #[test]
    fn nft_json_goes_to_a_file_not_into_the_script() {
        let r = render_build(&plan());
        assert!(!r.script.contains("nftables"), "{}", r.script);
        assert!(!r.script.contains("quoted"), "{}", r.script);
        assert_eq!(r.files.len(), 1);
        let (path, body) = &r.files[0];
        assert_eq!(path, "nft/t-stamp-westeurope.json");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v,
            plan().namespaces["t-stamp-westeurope"].nft.clone().unwrap()
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(q("t-wk-plan1-0-abcd"), "t-wk-plan1-0-abcd");
        assert_eq!(
            q("net/ipv4/conf/eth0.5/rp_filter=0"),
            "net/ipv4/conf/eth0.5/rp_filter=0"
        );
        assert_eq!(q("a b"), "'a b'");
        assert_eq!(q("it's"), r"'it'\''s'");
        assert_eq!(q("$(reboot)"), "'$(reboot)'");
        assert_eq!(q(""), "''");
    }

    #[test]
    fn teardown_deletes_every_namespace() {
        let s = render_teardown(&plan());
        pos(&s, "ip netns del t-stamp-westeurope || rc=1");
        pos(&s, "ip netns del t-wk-plan1-0-abcd || rc=1");
    }

    #[test]
    fn link_sysctl_classification() {
        assert!(is_link_sysctl("net/ipv4/conf/n-1a2b3c/proxy_arp"));
        assert!(is_link_sysctl("net/ipv6/conf/eth0/disable_ipv6"));
        assert!(!is_link_sysctl("net/ipv4/conf/all/rp_filter"));
        assert!(!is_link_sysctl("net/ipv4/conf/default/rp_filter"));
        assert!(!is_link_sysctl("net/ipv4/ip_forward"));
    }
}
