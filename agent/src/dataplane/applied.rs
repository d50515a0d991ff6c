//! What the last applies left in the kernel, as one digest per namespace:
//! its part of the plan (addresses, routes, rules, sysctls, nft batch) and
//! the veth ends it holds with their peers. A proportional apply opens only
//! the namespaces whose digest changed (or that are gone), so a change to one
//! site costs that site's namespaces, not the lab's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;

use crate::plan::NetworkPlan;

/// Digest of each namespace of a plan.
pub(crate) struct Digests(HashMap<String, u64>);

#[derive(Debug, Default)]
pub(crate) struct Applied {
    namespaces: HashMap<String, u64>,
}

/// `serde_json` writes into the hasher: no buffer of the whole plan.
struct HashWriter(std::collections::hash_map::DefaultHasher);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Each namespace's veth ends: (its ifname, peer namespace, peer ifname).
fn ends(plan: &NetworkPlan) -> BTreeMap<&str, BTreeSet<(&str, &str, &str)>> {
    let mut ends: BTreeMap<&str, BTreeSet<(&str, &str, &str)>> = BTreeMap::new();
    for v in &plan.veths {
        ends.entry(&v.a.netns)
            .or_default()
            .insert((&v.a.ifname, &v.b.netns, &v.b.ifname));
        ends.entry(&v.b.netns)
            .or_default()
            .insert((&v.b.ifname, &v.a.netns, &v.a.ifname));
    }
    ends
}

impl Applied {
    /// The digests of `plan`'s namespaces.
    pub fn of(plan: &NetworkPlan) -> Digests {
        let ends = ends(plan);
        let none = BTreeSet::new();
        Digests(
            plan.namespaces
                .iter()
                .map(|(name, ns)| {
                    let mut w = HashWriter(Default::default());
                    // Serialising plan types cannot fail (no maps with
                    // non-string keys, no custom serialisers that refuse).
                    let _ = serde_json::to_writer(&mut w, ns);
                    let _ = serde_json::to_writer(&mut w, ends.get(name.as_str()).unwrap_or(&none));
                    (name.clone(), w.0.finish())
                })
                .collect(),
        )
    }

    /// The namespaces an apply of `plan` must open: those whose digest is
    /// not the applied one, those no longer in the kernel, and the veth
    /// peers of the latter (their pairs died with them).
    pub fn changed(&self, digests: &Digests, plan: &NetworkPlan) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = digests
            .0
            .iter()
            .filter(|(name, d)| self.namespaces.get(*name) != Some(d))
            .map(|(name, _)| name.clone())
            .collect();
        let gone: Vec<&String> = plan
            .namespaces
            .keys()
            .filter(|n| !out.contains(*n) && !super::netns::is_live(n))
            .collect();
        if !gone.is_empty() {
            let ends = ends(plan);
            for n in gone {
                out.insert(n.clone());
                for (_, peer, _) in ends.get(n.as_str()).into_iter().flatten() {
                    out.insert(peer.to_string());
                }
            }
        }
        out
    }

    /// Whether a namespace this lab applied is gone from `/run/netns` (one
    /// directory read: cheap enough to ask every second).
    pub fn lost_namespace(&self, prefix: &str) -> bool {
        if self.namespaces.is_empty() {
            return false;
        }
        match super::netns::list_with_prefix(prefix) {
            Ok(live) => {
                let live: std::collections::HashSet<String> = live.into_iter().collect();
                self.namespaces.keys().any(|n| !live.contains(n))
            }
            Err(_) => false,
        }
    }

    /// `done` (namespaces applied without error) now hold their part of
    /// `plan`; namespaces that left the plan are forgotten.
    pub fn record(&mut self, digests: Digests, done: &[String], plan: &NetworkPlan) {
        self.namespaces
            .retain(|n, _| plan.namespaces.contains_key(n));
        let mut digests = digests.0;
        for n in done {
            if let Some(d) = digests.remove(n) {
                self.namespaces.insert(n.clone(), d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{NamespacePlan, NamespaceRole, VethEnd, VethPlan};

    fn ns(name: &str) -> NamespacePlan {
        NamespacePlan {
            name: name.into(),
            role: NamespaceRole::Internet,
            sysctls: Default::default(),
            addresses: vec![],
            routes: vec![],
            rules: vec![],
            nft: None,
        }
    }

    fn plan(names: &[&str], veths: &[(&str, &str)]) -> NetworkPlan {
        NetworkPlan {
            lab: "t".into(),
            namespaces: names.iter().map(|n| (n.to_string(), ns(n))).collect(),
            veths: veths
                .iter()
                .map(|(a, b)| VethPlan {
                    a: VethEnd {
                        netns: a.to_string(),
                        ifname: format!("to-{b}"),
                    },
                    b: VethEnd {
                        netns: b.to_string(),
                        ifname: format!("to-{a}"),
                    },
                })
                .collect(),
            ..Default::default()
        }
    }

    fn digests_differ(a: &NetworkPlan, b: &NetworkPlan, name: &str) -> bool {
        Applied::of(a).0[name] != Applied::of(b).0[name]
    }

    #[test]
    fn a_namespace_digest_changes_with_its_plan_and_its_links_only() {
        let before = plan(&["t-a", "t-b", "t-c"], &[("t-a", "t-b")]);
        let mut sysctl = before.clone();
        sysctl
            .namespaces
            .get_mut("t-a")
            .unwrap()
            .sysctls
            .insert("net/ipv4/ip_forward".into(), "1".into());
        assert!(digests_differ(&before, &sysctl, "t-a"));
        assert!(!digests_differ(&before, &sysctl, "t-b"));
        // A new link changes both of its ends, nothing else.
        let linked = plan(&["t-a", "t-b", "t-c"], &[("t-a", "t-b"), ("t-b", "t-c")]);
        assert!(digests_differ(&before, &linked, "t-b"));
        assert!(digests_differ(&before, &linked, "t-c"));
        assert!(!digests_differ(&before, &linked, "t-a"));
    }

    #[test]
    fn only_what_was_not_applied_is_changed() {
        let p = plan(&["t-a", "t-b"], &[("t-a", "t-b")]);
        let mut applied = Applied::default();
        // Nothing applied yet: every namespace (is_live is false here too).
        assert_eq!(applied.changed(&Applied::of(&p), &p).len(), 2);
        applied.record(Applied::of(&p), &["t-a".to_string()], &p);
        let d = Applied::of(&p);
        assert!(d.0.contains_key("t-b"));
        // t-a recorded; it is not live in this test, so it and its peer come back as gone.
        let changed = applied.changed(&d, &p);
        assert!(changed.contains("t-b"));
        // Namespaces that left the plan are forgotten.
        let smaller = plan(&["t-b"], &[]);
        applied.record(Applied::of(&smaller), &[], &smaller);
        assert!(applied.namespaces.is_empty());
    }
}
