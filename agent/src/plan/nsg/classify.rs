//! One direction of an NSG as a few lookups instead of one nft rule per NSG
//! rule (docs/datapath.md, "NSGs in the fabric"), so a new flow costs about
//! the same with 1,000 rules as with 10.
//!
//! Azure's semantics are first match by priority. The kernel computes it as
//! a minimum: every rule has a rank (its place in priority order, the default
//! rules last), a register (`meta mark`) holds the best rank found so far, and
//! a rule that matches lowers it to its own rank when that is lower. The
//! order in which rules are tried then no longer matters, so they can be
//! tried through lookups: a verdict map on one packet field (destination
//! port, destination address, source address or source port) jumps to the
//! bucket of the rules whose values of that field cover the packet's, and a
//! bucket is again a node of lookups on the other fields and rules. Rules a
//! lookup cannot narrow (any value of every field left) are tried one by
//! one, by rank, until one matches. The rank left decides: its rule's
//! counter counts the packet and its access is the verdict, so counters stay
//! per rule. Only rules that share values of every field cost a new flow
//! more than a few lookups.

use std::collections::{BTreeMap, BTreeSet};

use super::compile::{Addr, CompiledRule};
use crate::model::{PortMatch, RuleProtocol};

/// The packet field a lookup is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KeyField {
    Dport,
    Daddr,
    Saddr,
    Sport,
}

impl KeyField {
    /// The order in which a node tries the fields: destination port first
    /// (the field rules most often name), then the addresses.
    const PREFERENCE: [KeyField; 4] = [
        KeyField::Dport,
        KeyField::Daddr,
        KeyField::Saddr,
        KeyField::Sport,
    ];

    /// Ports exist on TCP and UDP only: a port lookup needs that first.
    pub fn is_port(self) -> bool {
        matches!(self, KeyField::Dport | KeyField::Sport)
    }
}

/// Inclusive ranges of a field's values (ports or IPv4 addresses as u32),
/// sorted and disjoint.
pub(crate) type Ranges = Vec<(u32, u32)>;

/// Sorted, merged port ranges (adjacent ones joined).
pub(crate) fn merged_ports(ranges: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut r = ranges.to_vec();
    r.sort();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (a, b) in r {
        match merged.last_mut() {
            Some(l) if u32::from(a) <= u32::from(l.1) + 1 => l.1 = l.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// The values of `field` rule `r` matches; `None` when it matches every
/// value (or, for ports, when the rule is ICMP, which ignores them).
pub(crate) fn key_ranges(r: &CompiledRule, field: KeyField) -> Option<Ranges> {
    let ports = |p: &PortMatch| match p {
        PortMatch::Ranges(v) if r.rule.protocol != RuleProtocol::Icmp => Some(
            merged_ports(v)
                .into_iter()
                .map(|(a, b)| (u32::from(a), u32::from(b)))
                .collect(),
        ),
        _ => None,
    };
    let addr = |a: &Addr| match a {
        Addr::Any => None,
        Addr::Literal(s) | Addr::Named { content: s, .. } => Some(s.ranges().to_vec()),
    };
    match field {
        KeyField::Dport => ports(&r.rule.destination_ports),
        KeyField::Sport => ports(&r.rule.source_ports),
        KeyField::Daddr => addr(&r.dst),
        KeyField::Saddr => addr(&r.src),
    }
}

/// Rules in a bucket (or a whole direction) with at most this many rules
/// are tried one by one: a lookup would not save anything.
const LEAF: usize = 4;
/// A rule joins a field's lookup only if its values span at most this many
/// of the lookup's elementary intervals (it is copied into each).
const MAX_SPAN: usize = 8;

/// One lookup of a node: the packet's `field` picks the child node (a
/// bucket: the rules whose values of `field` cover the packet's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub field: KeyField,
    /// (disjoint range of the field, child node), by range.
    pub elements: Vec<((u32, u32), usize)>,
}

/// A chain of the tree: its lookups, then its rules one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Node {
    pub groups: Vec<Group>,
    /// Tried in rank order after the groups; the first that matches (and
    /// beats the best rank so far) ends the node.
    pub singles: Vec<usize>,
    /// Fields every rule of this node is known to match (decided by the
    /// lookups that lead here): its rules need not check them again.
    pub decided: Vec<KeyField>,
}

/// How one direction's rules are tried: node 0 is the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
    /// Rules that can match nothing (an empty tag or ASG): tried nowhere.
    pub never: Vec<usize>,
}

impl Tree {
    /// Rule copies over all nodes (a rule sits in every bucket it covers).
    fn copies(&self) -> usize {
        self.nodes.iter().map(|n| n.singles.len()).sum()
    }
}

/// The sorted boundaries of `ranges`: where an elementary interval may start.
fn cuts<'a>(ranges: impl IntoIterator<Item = &'a Ranges>) -> Vec<u64> {
    let mut c: Vec<u64> = ranges
        .into_iter()
        .flatten()
        .flat_map(|&(a, b)| [u64::from(a), u64::from(b) + 1])
        .collect();
    c.sort();
    c.dedup();
    c
}

/// How many elementary intervals (between the sorted `cuts`) the ranges `r`
/// cover: the cuts inside them.
fn span(r: &[(u32, u32)], cuts: &[u64]) -> usize {
    r.iter()
        .map(|&(a, b)| {
            cuts.partition_point(|&c| c <= u64::from(b))
                - cuts.partition_point(|&c| c < u64::from(a))
        })
        .sum()
}

/// The elementary intervals of the members' ranges, each with the members
/// (rule indices, ascending) that cover it; gaps left out.
fn buckets(members: &[&(usize, Ranges)]) -> Vec<((u32, u32), Vec<usize>)> {
    let mut events: Vec<(u64, bool, usize)> = members
        .iter()
        .flat_map(|(i, r)| {
            r.iter()
                .flat_map(move |&(a, b)| [(u64::from(a), true, *i), (u64::from(b) + 1, false, *i)])
        })
        .collect();
    // At one position, ends before starts.
    events.sort();
    let mut active: BTreeSet<usize> = BTreeSet::new();
    let mut out = Vec::new();
    let mut k = 0;
    while k < events.len() {
        let at = events[k].0;
        while k < events.len() && events[k].0 == at {
            let (_, start, i) = events[k];
            if start {
                active.insert(i);
            } else {
                active.remove(&i);
            }
            k += 1;
        }
        if let (Some(&(next, _, _)), false) = (events.get(k), active.is_empty()) {
            out.push((
                (at as u32, (next - 1) as u32),
                active.iter().copied().collect(),
            ));
        }
    }
    out
}

struct Builder<'a> {
    rules: &'a [&'a CompiledRule],
    max_span: usize,
    tree: Tree,
    /// Bucket (rules, decided fields) -> its node.
    made: BTreeMap<(Vec<usize>, Vec<KeyField>), usize>,
}

impl Builder<'_> {
    /// The node of `rules` (in rank order) whose `decided` fields are known
    /// to match; one node per distinct bucket.
    fn node(&mut self, rules: Vec<usize>, decided: Vec<KeyField>) -> usize {
        let key = (rules, decided);
        if let Some(&n) = self.made.get(&key) {
            return n;
        }
        let (rules, decided) = key.clone();
        let id = self.tree.nodes.len();
        self.tree.nodes.push(Node {
            decided: decided.clone(),
            ..Node::default()
        });
        self.made.insert(key, id);
        let mut rest = rules;
        let mut groups = Vec::new();
        if rest.len() > LEAF {
            for f in KeyField::PREFERENCE {
                if decided.contains(&f) {
                    continue;
                }
                let keyed: Vec<(usize, Ranges)> = rest
                    .iter()
                    .filter_map(|&i| Some((i, key_ranges(self.rules[i], f)?)))
                    .collect();
                let c = cuts(keyed.iter().map(|(_, r)| r));
                let fit: Vec<&(usize, Ranges)> = keyed
                    .iter()
                    .filter(|(_, r)| span(r, &c) <= self.max_span)
                    .collect();
                if fit.len() <= LEAF {
                    continue;
                }
                let mut sub = decided.clone();
                sub.push(f);
                let mut elements: Vec<((u32, u32), usize)> = Vec::new();
                for ((a, b), bucket) in buckets(&fit) {
                    let child = self.node(bucket, sub.clone());
                    match elements.last_mut() {
                        // Adjacent ranges leading to the same node: one element.
                        Some(((_, hi), c)) if *c == child && u64::from(*hi) + 1 == u64::from(a) => {
                            *hi = b
                        }
                        _ => elements.push(((a, b), child)),
                    }
                }
                let taken: BTreeSet<usize> = fit.iter().map(|(i, _)| *i).collect();
                rest.retain(|i| !taken.contains(i));
                groups.push(Group { field: f, elements });
            }
        }
        let n = &mut self.tree.nodes[id];
        n.groups = groups;
        n.singles = rest;
        id
    }
}

/// The tree of one direction's rules (in evaluation order; indices into
/// `rules`). At each node, each field in turn (by preference, once per path)
/// takes the rules specific in it whose values span few of its elementary
/// intervals; the rest are tried one by one. Should copies grow beyond a few
/// per rule, rules are only looked up where they need no copy at all.
pub(crate) fn classify(rules: &[&CompiledRule]) -> Tree {
    let (never, live): (Vec<usize>, Vec<usize>) = (0..rules.len()).partition(|&i| {
        KeyField::PREFERENCE
            .iter()
            .any(|&f| key_ranges(rules[i], f).is_some_and(|r| r.is_empty()))
    });
    let build = |max_span: usize| {
        let mut b = Builder {
            rules,
            max_span,
            tree: Tree::default(),
            made: BTreeMap::new(),
        };
        b.node(live.clone(), Vec::new());
        b.tree.never = never.clone();
        b.tree
    };
    let tree = build(MAX_SPAN);
    if tree.copies() <= 4 * rules.len() + 64 {
        tree
    } else {
        build(1)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::{rule_matches, Flow, FlowOrigin, FlowProtocol};
    use super::*;
    use crate::model::{Access, AddressMatch, Direction, ResourceId, TypedRule};
    use crate::plan::nsg::compile::AddrSet;

    /// A small deterministic generator (xorshift), so the test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Addresses 10.0.0.0/28 and ports 1..=8: small spaces, so rules overlap
    /// often and random flows hit them.
    fn addr(rng: &mut Rng) -> Addr {
        let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
        match rng.below(4) {
            0 => Addr::Any,
            1 => {
                let a = base + rng.below(16) as u32;
                Addr::Literal(AddrSet::of([ipnet::Ipv4Net::new(a.into(), 32).unwrap()]))
            }
            2 => {
                let a = base + 4 * rng.below(4) as u32;
                Addr::Named {
                    set: "tag-x".into(),
                    content: AddrSet::of([ipnet::Ipv4Net::new(a.into(), 30).unwrap()]),
                }
            }
            _ => Addr::Literal(AddrSet::of((0..2).map(|_| {
                ipnet::Ipv4Net::new((base + rng.below(16) as u32).into(), 32).unwrap()
            }))),
        }
    }

    fn ports(rng: &mut Rng) -> PortMatch {
        match rng.below(3) {
            0 => PortMatch::Any,
            1 => {
                let p = 1 + rng.below(8) as u16;
                PortMatch::Ranges(vec![(p, p)])
            }
            _ => {
                let a = 1 + rng.below(8) as u16;
                PortMatch::Ranges(vec![(a, (a + rng.below(3) as u16).min(8)), (8, 8)])
            }
        }
    }

    fn random_rule(rng: &mut Rng, i: usize) -> CompiledRule {
        let protocol = [
            RuleProtocol::Tcp,
            RuleProtocol::Udp,
            RuleProtocol::Icmp,
            RuleProtocol::Any,
        ][rng.below(4) as usize];
        let (src, dst) = (addr(rng), addr(rng));
        CompiledRule {
            path: format!("securityRules/r{i}"),
            rule: TypedRule {
                name: format!("r{i}"),
                priority: 100 + i as u32,
                direction: Direction::Inbound,
                access: if rng.below(2) == 0 {
                    Access::Allow
                } else {
                    Access::Deny
                },
                protocol,
                // Not read by the classifier or by rule_matches.
                source: AddressMatch::Any,
                destination: AddressMatch::Any,
                source_ports: ports(rng),
                destination_ports: ports(rng),
            },
            src,
            dst,
            counter: format!("c{i}"),
        }
    }

    /// `r` with the fields a node has decided matched whatever the packet's.
    fn without(r: &CompiledRule, decided: &[KeyField]) -> CompiledRule {
        let mut r = r.clone();
        for f in decided {
            match f {
                KeyField::Saddr => r.src = Addr::Any,
                KeyField::Daddr => r.dst = Addr::Any,
                KeyField::Sport => r.rule.source_ports = PortMatch::Any,
                KeyField::Dport => r.rule.destination_ports = PortMatch::Any,
            }
        }
        r
    }

    /// What the kernel does with the tree: from the root, each lookup's
    /// bucket node, then the node's singles in rank order, each checking only
    /// the fields not decided yet; the lowest rank found wins.
    fn kernel(t: &Tree, rules: &[&CompiledRule], f: &Flow) -> Option<usize> {
        fn walk(t: &Tree, k: usize, rules: &[&CompiledRule], f: &Flow, best: &mut Option<usize>) {
            let n = &t.nodes[k];
            for g in &n.groups {
                if g.field.is_port() && f.protocol == FlowProtocol::Icmp {
                    continue;
                }
                let v = match g.field {
                    KeyField::Dport => u32::from(f.dst_port),
                    KeyField::Sport => u32::from(f.src_port),
                    KeyField::Daddr => u32::from(f.dst),
                    KeyField::Saddr => u32::from(f.src),
                };
                let hits: Vec<usize> = g
                    .elements
                    .iter()
                    .filter(|((a, b), _)| *a <= v && v <= *b)
                    .map(|(_, c)| *c)
                    .collect();
                assert!(hits.len() <= 1, "elements overlap");
                for c in hits {
                    walk(t, c, rules, f, best);
                }
            }
            for &i in &n.singles {
                if rule_matches(&without(rules[i], &n.decided), f) && best.is_none_or(|b| i < b) {
                    *best = Some(i);
                    return;
                }
            }
        }
        let mut best = None;
        walk(t, 0, rules, f, &mut best);
        best
    }

    fn flow(rng: &mut Rng) -> Flow {
        let ip = |rng: &mut Rng| {
            Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + rng.below(17) as u32)
        };
        Flow {
            origin: FlowOrigin::Internet {
                vnet: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v"
                    .parse::<ResourceId>()
                    .unwrap(),
            },
            src: ip(rng),
            dst: ip(rng),
            protocol: [FlowProtocol::Tcp, FlowProtocol::Udp, FlowProtocol::Icmp][rng.below(3) as usize],
            src_port: rng.below(10) as u16,
            dst_port: rng.below(10) as u16,
        }
    }

    #[test]
    fn the_lowest_matching_rank_is_the_first_match() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut lookups = 0;
        for round in 0..300 {
            let n = 1 + rng.below(80) as usize;
            let owned: Vec<CompiledRule> = (0..n).map(|i| random_rule(&mut rng, i)).collect();
            let rules: Vec<&CompiledRule> = owned.iter().collect();
            let t = classify(&rules);
            lookups += t.nodes.iter().map(|n| n.groups.len()).sum::<usize>();
            // Every live rule is reachable: a single of some node.
            let mut seen: BTreeSet<usize> = t
                .nodes
                .iter()
                .flat_map(|n| n.singles.iter().copied())
                .collect();
            seen.extend(t.never.iter().copied());
            assert_eq!(seen.len(), n, "round {round}");
            for _ in 0..300 {
                let f = flow(&mut rng);
                let linear = rules.iter().position(|r| rule_matches(r, &f));
                assert_eq!(kernel(&t, &rules, &f), linear, "round {round}, {f:?}");
            }
        }
        assert!(
            lookups > 100,
            "the random rules must exercise lookups, not only singles"
        );
    }

    #[test]
    fn the_benchmarks_interleaved_rules_need_two_lookups() {
        // 1,000 rules of four kinds interleaved (as in the datapath
        // benchmark's NSG): they overlap pairwise across kinds.
        let one = |a: Ipv4Addr| Addr::Literal(AddrSet::of([ipnet::Ipv4Net::new(a, 32).unwrap()]));
        let vm = Ipv4Addr::new(10, 0, 2, 4);
        let owned: Vec<CompiledRule> = (0..1000u32)
            .map(|i| {
                let (protocol, src, dst, dport) = match i % 4 {
                    0 => (RuleProtocol::Tcp, Addr::Any, one(vm), Some(10000 + i)),
                    1 => (
                        RuleProtocol::Tcp,
                        one(Ipv4Addr::new(192, 168, (i / 256) as u8, i as u8)),
                        Addr::Any,
                        None,
                    ),
                    2 => (RuleProtocol::Udp, Addr::Any, one(vm), Some(20000 + i)),
                    _ => (
                        RuleProtocol::Any,
                        one(Ipv4Addr::new(172, 16, (i / 256) as u8, i as u8)),
                        Addr::Any,
                        None,
                    ),
                };
                let mut r = random_rule(&mut Rng(1), i as usize);
                r.rule.protocol = protocol;
                r.rule.source_ports = PortMatch::Any;
                r.rule.destination_ports = match dport {
                    Some(p) => PortMatch::Ranges(vec![(p as u16, p as u16)]),
                    None => PortMatch::Any,
                };
                (r.src, r.dst) = (src, dst);
                r
            })
            .collect();
        let rules: Vec<&CompiledRule> = owned.iter().collect();
        let t = classify(&rules);
        let root = &t.nodes[0];
        let fields: Vec<KeyField> = root.groups.iter().map(|g| g.field).collect();
        assert_eq!(fields, [KeyField::Dport, KeyField::Saddr]);
        assert!(root.singles.is_empty());
        // Each bucket holds its one rule: no copies.
        assert_eq!(t.nodes.len(), 1 + 1000);
        assert!(t.nodes[1..].iter().all(|n| n.singles.len() == 1));
    }

    #[test]
    fn shared_values_make_buckets_and_copies_stay_bounded() {
        // Every rule names its own port and a shared range (the nsg tests'
        // 1,000-rule NSG): each rule sits in its own bucket and in the shared one.
        let owned: Vec<CompiledRule> = (0..500u16)
            .map(|i| {
                let mut r = random_rule(&mut Rng(7), i as usize);
                r.rule.protocol = RuleProtocol::Tcp;
                (r.src, r.dst) = (Addr::Any, Addr::Any);
                r.rule.source_ports = PortMatch::Any;
                r.rule.destination_ports =
                    PortMatch::Ranges(vec![(1000 + i, 1000 + i), (2000, 2100)]);
                r
            })
            .collect();
        let rules: Vec<&CompiledRule> = owned.iter().collect();
        let t = classify(&rules);
        assert!(t.copies() <= 2 * 500);
        let shared = t.nodes.iter().map(|n| n.singles.len()).max().unwrap();
        assert_eq!(
            shared, 500,
            "the 2000-2100 bucket: all of them, in rank order"
        );
        // A rule spanning every elementary interval is not copied 500 times.
        let mut wide = owned.clone();
        wide[0].rule.destination_ports = PortMatch::Ranges(vec![(1, 65535)]);
        let rules: Vec<&CompiledRule> = wide.iter().collect();
        let t = classify(&rules);
        assert!(t.copies() < 3 * 500, "{}", t.copies());
        assert_eq!(t.nodes[0].singles, [0]);
    }
}
