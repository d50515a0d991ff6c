//! `GET /metrics`: the daemon in Prometheus' text format (on the API socket,
//! and on an opt-in loopback TCP port, `serve --metrics-port`). Computed per
//! scrape from what the daemon already keeps and a read of the kernel's
//! counters; nothing is collected while nobody scrapes.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::daemon::Daemon;
use crate::plan::NamespaceRole;

/// `name{labels} value` lines under one `# TYPE`.
struct Family {
    out: String,
}

impl Family {
    fn new() -> Self {
        Family { out: String::new() }
    }
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn line(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}=\"{}\"",
                    v.replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n")
                )
            })
            .collect();
        if l.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", l.join(","));
        }
    }
}

fn role_kind(r: &NamespaceRole) -> &'static str {
    match r {
        NamespaceRole::Internet => "internet",
        NamespaceRole::InternetHost { .. } => "internet_host",
        NamespaceRole::Stamp { .. } => "stamp",
        NamespaceRole::Fabric { .. } => "fabric",
        NamespaceRole::Worker { .. } => "worker",
        NamespaceRole::AppSandbox { .. } => "app_sandbox",
        NamespaceRole::VirtualMachine { .. } => "vm",
        NamespaceRole::Service { .. } => "service",
        NamespaceRole::Gateway { .. } => "gateway",
        NamespaceRole::OnPremisesSite { .. } => "onprem_site",
        NamespaceRole::OnPremisesHost { .. } => "onprem_host",
    }
}

impl Daemon {
    pub async fn metrics(&self) -> String {
        let mut f = Family::new();
        let totals = self.totals.lock().unwrap().clone();
        f.head(
            "vnet_agent_reconciles_total",
            "counter",
            "Reconciles of the kernel against the plan.",
        );
        f.line("vnet_agent_reconciles_total", &[], totals.reconciles);
        f.head(
            "vnet_agent_reconcile_seconds_total",
            "counter",
            "Seconds spent reconciling.",
        );
        f.line(
            "vnet_agent_reconcile_seconds_total",
            &[],
            format!("{:.6}", totals.reconcile_seconds),
        );
        f.head(
            "vnet_agent_last_reconcile_seconds",
            "gauge",
            "Duration of the last reconcile.",
        );
        f.line(
            "vnet_agent_last_reconcile_seconds",
            &[],
            format!("{:.6}", totals.last_reconcile_seconds),
        );
        f.head(
            "vnet_agent_kernel_writes_total",
            "counter",
            "State-changing kernel operations of all reconciles.",
        );
        f.line("vnet_agent_kernel_writes_total", &[], totals.kernel_writes);
        let (plan, nsg_counters, uplinks, generation) = {
            let state = self.snapshot();
            let lab = &self.config.lab;
            let inv = crate::model::Inventory::parse_lenient(&state.resources);
            let counters: Vec<(String, String, String, String)> = inv
                .nsgs
                .iter()
                .flat_map(|n| {
                    crate::plan::nsg::nsg_counter_names(&state, lab, &n.id)
                        .into_iter()
                        .map(|(rule, ns, counter)| (n.id.name().to_string(), rule, ns, counter))
                        .collect::<Vec<_>>()
                })
                .collect();
            (
                crate::plan::build(&state, lab),
                counters,
                crate::plan::worker_uplinks(&state, lab),
                state.generation,
            )
        };
        f.head(
            "vnet_agent_generation",
            "gauge",
            "Generation of the committed desired state.",
        );
        f.line("vnet_agent_generation", &[], generation);
        let mut ns_by_kind: BTreeMap<&str, u64> = BTreeMap::new();
        for ns in plan.namespaces.values() {
            *ns_by_kind.entry(role_kind(&ns.role)).or_default() += 1;
        }
        f.head(
            "vnet_agent_namespaces",
            "gauge",
            "Namespaces of the lab, by kind.",
        );
        for (k, n) in &ns_by_kind {
            f.line("vnet_agent_namespaces", &[("kind", k)], n);
        }
        let kind_of = |ns: &str| {
            plan.namespaces
                .get(ns)
                .map(|n| role_kind(&n.role))
                .unwrap_or("unknown")
        };
        let mut links: BTreeMap<(String, String), u64> = BTreeMap::new();
        for v in &plan.veths {
            let mut k = [kind_of(&v.a.netns), kind_of(&v.b.netns)];
            k.sort();
            *links
                .entry((k[0].to_string(), k[1].to_string()))
                .or_default() += 1;
        }
        f.head(
            "vnet_agent_links",
            "gauge",
            "Veth pairs of the lab, by the kinds of namespaces they join.",
        );
        for ((a, b), n) in &links {
            f.line("vnet_agent_links", &[("a", a), ("b", b)], n);
        }
        // NSG rule hits: one read of each fabric's counters.
        let mut by_ns: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
        let mut hits: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for (nsg, rule, ns, counter) in &nsg_counters {
            if !by_ns.contains_key(ns) {
                let c = crate::dataplane::read_counters(ns)
                    .await
                    .unwrap_or_default();
                by_ns.insert(ns.clone(), c);
            }
            let (p, b) = by_ns[ns].get(counter).copied().unwrap_or((0, 0));
            let e = hits.entry((nsg.clone(), rule.clone())).or_default();
            e.0 += p;
            e.1 += b;
        }
        f.head(
            "vnet_agent_nsg_rule_hits_total",
            "counter",
            "Packets that an NSG rule decided (first packets of flows).",
        );
        for ((nsg, rule), (p, _)) in &hits {
            f.line(
                "vnet_agent_nsg_rule_hits_total",
                &[("nsg", nsg), ("rule", rule)],
                p,
            );
        }
        f.head(
            "vnet_agent_nsg_rule_hit_bytes_total",
            "counter",
            "Bytes of the packets an NSG rule decided.",
        );
        for ((nsg, rule), (_, b)) in &hits {
            f.line(
                "vnet_agent_nsg_rule_hit_bytes_total",
                &[("nsg", nsg), ("rule", rule)],
                b,
            );
        }
        // SNAT ports: the stamp's conntrack entries from each instance.
        let limit = self.config.lab.snat_ports_per_instance;
        let mut stamps: BTreeMap<&str, Vec<crate::diag::flow_log::CtFlow>> = BTreeMap::new();
        for (_, _, stamp, _) in &uplinks {
            if !stamps.contains_key(stamp.as_str()) {
                let ns = stamp.clone();
                let dump =
                    tokio::task::spawn_blocking(move || crate::dataplane::conntrack::dump(&ns))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                stamps.insert(stamp.as_str(), dump);
            }
        }
        f.head(
            "vnet_agent_snat_ports_in_use",
            "gauge",
            "SNAT ports an App Service instance holds on the stamp's direct path.",
        );
        for (plan_id, instance, stamp, pub0) in &uplinks {
            let used = stamps[stamp.as_str()]
                .iter()
                .filter(|c| c.src == *pub0)
                .count();
            let i = instance.to_string();
            f.line(
                "vnet_agent_snat_ports_in_use",
                &[("plan", plan_id.name()), ("instance", &i)],
                used,
            );
        }
        f.head(
            "vnet_agent_snat_ports_limit",
            "gauge",
            "SNAT ports each instance may hold (Azure preallocates 128).",
        );
        f.line("vnet_agent_snat_ports_limit", &[], limit);
        f.head(
            "vnet_agent_dns_answers_total",
            "counter",
            "Answers of the lab's DNS servers, by response code.",
        );
        let names = [
            "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
        ];
        for (i, c) in crate::dnsd::ANSWERS_BY_RCODE.iter().enumerate() {
            let n = c.load(std::sync::atomic::Ordering::Relaxed);
            if n > 0 || i < names.len() {
                let code = names
                    .get(i)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| format!("RCODE{i}"));
                f.line("vnet_agent_dns_answers_total", &[("rcode", &code)], n);
            }
        }
        f.head(
            "vnet_agent_process_restarts_total",
            "counter",
            "Restarts of supervised processes (apps, services, speakers).",
        );
        for p in self.supervisor.status() {
            f.line(
                "vnet_agent_process_restarts_total",
                &[("process", &p.key)],
                p.restarts,
            );
        }
        f.out
    }
}
