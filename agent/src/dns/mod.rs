//! Name resolution as Azure-provided DNS (168.63.129.16) answers it, pure:
//! from a VNet (private zones linked to it, then public names) and from the
//! lab's internet (public names only). AZURE-FACTS §6; seed, "Private
//! endpoints" and "Azure DNS private zones". The DNS server that puts this on
//! the wire lives elsewhere.

pub mod client;
pub mod view;
pub mod wire;
pub mod zone_groups;

#[cfg(test)]
mod settings_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::model::{
    canonical_name, connection_status, ConnectionStatus, Inventory, LabConfig, LabState,
    PrivateDnsZone, ResourceId,
};

pub use crate::model::{RecordData, RecordType};

/// How many CNAMEs a lookup follows before answering SERVFAIL.
pub const MAX_CNAME_DEPTH: usize = 8;

/// TTL of the lab's public records (internet hosts, emulated services).
pub const PUBLIC_TTL: u32 = 300;

/// Response code of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// The name exists (records may still be empty: no data of that type).
    NoError,
    /// The name does not exist.
    NxDomain,
    /// Resolution failed (CNAME loop or chain longer than [`MAX_CNAME_DEPTH`]).
    ServFail,
}

/// One resource record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, lower-cased, no trailing dot.
    pub name: String,
    pub rtype: RecordType,
    pub ttl: u32,
    pub data: RecordData,
}

/// What the resolver answers: the rcode and the answer section (CNAMEs
/// followed first, in order, then the records of the asked type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: Rcode,
    pub records: Vec<Record>,
}

/// The public names Azure aliases into a `privatelink.*` zone: those served
/// by a private endpoint whose connection is Approved (from any VNet),
/// lower-cased. AZURE-FACTS §11 (private-endpoint-dns.md): "When you create
/// a private endpoint, the DNS CNAME resource record for the storage account
/// is updated to an alias in a subdomain with the prefix privatelink"; a
/// resource without one keeps its plain public record. Per name, so a blob
/// endpoint does not alias the same account's file name.
pub fn privatelink_aliased(inv: &Inventory, state: &LabState) -> BTreeSet<String> {
    inv.private_endpoints
        .iter()
        .filter(|pe| connection_status(state, pe) == ConnectionStatus::Approved)
        .flat_map(|pe| pe.names(state))
        .map(|(fqdn, _)| fqdn)
        .collect()
}

/// The public record(s) of one public name with address `ip`: with an
/// aliasing private endpoint, `public` CNAME `privatelink` A `ip` (a private
/// zone `privatelink.<zone>` linked to a VNet then answers the second name
/// inside that VNet, without changing the name clients use); without,
/// `public` A `ip`, which a linked privatelink zone cannot shadow.
pub fn public_name_records(
    public: String,
    privatelink: String,
    ip: Ipv4Addr,
    aliased: &BTreeSet<String>,
) -> Vec<Record> {
    let a = |name| Record {
        name,
        rtype: RecordType::A,
        ttl: PUBLIC_TTL,
        data: RecordData::A(ip),
    };
    if !aliased.contains(&public) {
        return vec![a(public)];
    }
    vec![
        Record {
            name: public,
            rtype: RecordType::Cname,
            ttl: PUBLIC_TTL,
            data: RecordData::Cname(privatelink.clone()),
        },
        a(privatelink),
    ]
}

/// The emulated services' public names, as the public internet's DNS holds
/// them (notes/service-api.md, "Public names"; AZURE-FACTS §6): every
/// endpoint of every storage account, vault and registry that has its public
/// address, by [`public_name_records`].
pub fn public_service_records(inv: &Inventory, state: &LabState) -> Vec<Record> {
    let aliased = privatelink_aliased(inv, state);
    let mut records = Vec::new();
    for s in &inv.services {
        let Some(ip) = state.allocations.service_ips.get(&s.id.key()) else {
            continue;
        };
        for e in s.kind.endpoints() {
            records.extend(public_name_records(
                e.host(&s.name),
                e.privatelink_host(&s.name),
                *ip,
                &aliased,
            ));
        }
    }
    records
}

/// The lab's public DNS zone: every internet host's `dnsName` (default
/// `<name>.internet.lab`) -> its public address, plus the emulated public
/// service names.
pub fn public_records(inv: &Inventory, state: &LabState) -> Vec<Record> {
    let mut records: Vec<Record> = inv
        .hosts
        .iter()
        .filter_map(|h| {
            let ip: Ipv4Addr = state
                .allocations
                .host_addresses
                .get(&h.id.key())
                .copied()
                .or(h.ip_address)?;
            Some(Record {
                name: h.dns_name(),
                rtype: RecordType::A,
                ttl: PUBLIC_TTL,
                data: RecordData::A(ip),
            })
        })
        .collect();
    records.extend(public_service_records(inv, state));
    records.extend(public_site_records(inv, state));
    records
}

/// The apps' public names (docs/datapath.md "Front end"):
/// `NAME.azurewebsites.net` and `NAME.scm.azurewebsites.net` -> the inbound
/// address of the site's stamp, by [`public_name_records`] (aliased into
/// `privatelink.azurewebsites.net` while an Approved private endpoint
/// serves the site).
pub fn public_site_records(inv: &Inventory, state: &LabState) -> Vec<Record> {
    let aliased = privatelink_aliased(inv, state);
    let mut records = Vec::new();
    for site in &inv.sites {
        let Some(ip) = state.allocations.site_inbound(inv, site) else {
            continue;
        };
        let name = site.name.to_ascii_lowercase();
        for label in [name.clone(), format!("{name}.scm")] {
            records.extend(public_name_records(
                format!("{label}.azurewebsites.net"),
                format!("{label}.privatelink.azurewebsites.net"),
                ip,
                &aliased,
            ));
        }
    }
    records
}

/// Every record of a private zone, with absolute owner names.
pub fn zone_records(zone: &PrivateDnsZone) -> Vec<Record> {
    zone.record_sets
        .iter()
        .flat_map(|rs| {
            let name = zone.absolute(&rs.name);
            rs.records.iter().map(move |d| Record {
                name: name.clone(),
                rtype: rs.rtype,
                ttl: rs.ttl,
                data: d.clone(),
            })
        })
        .collect()
}

/// TTL of the A records Azure registers for VMs (auto-registration).
pub const AUTO_REGISTERED_TTL: u32 = 10;

/// The A records Azure auto-registers in `zone`: for every link with
/// `registrationEnabled`, each VM whose primary NIC's primary IP
/// configuration is in that VNet gets `<vm name>.<zone>` -> that address
/// (AZURE-FACTS §6; the QS sonarqube template links with registration).
pub fn registered_records(inv: &Inventory, state: &LabState, zone: &PrivateDnsZone) -> Vec<Record> {
    let vnets: Vec<&ResourceId> = zone
        .links
        .iter()
        .filter(|l| l.registration_enabled)
        .filter_map(|l| l.vnet_id.as_ref())
        .collect();
    if vnets.is_empty() {
        return Vec::new();
    }
    let mut records: Vec<Record> = inv
        .vms
        .iter()
        .filter_map(|vm| {
            let nic = inv.nic(vm.nic_ids.get(vm.primary_nic)?)?;
            let cfg = nic
                .ip_configurations
                .iter()
                .find(|c| c.primary)
                .or(nic.ip_configurations.first())?;
            let vnet = cfg.subnet_id.parent()?;
            if !vnets.contains(&&vnet) {
                return None;
            }
            let ip = state
                .allocations
                .nic_addresses
                .get(&cfg.key(&nic.id))
                .copied()
                .or(cfg.static_address)?;
            Some(Record {
                name: format!("{}.{}", vm.name.to_ascii_lowercase(), zone.zone),
                rtype: RecordType::A,
                ttl: AUTO_REGISTERED_TTL,
                data: RecordData::A(ip),
            })
        })
        .collect();
    records.sort_by(|a, b| a.name.cmp(&b.name));
    records
}

/// One namespace of names (a private zone, or the public names), indexed so
/// that a lookup costs a few hash probes whatever its size: the DNS servers
/// answer every query from it.
#[derive(Debug, Clone, Default)]
struct NameTable {
    /// Owner name -> its records.
    records: HashMap<String, Vec<Record>>,
    /// Names that own no record but have records below them (empty
    /// non-terminals: NOERROR with no data, not NXDOMAIN).
    above: HashSet<String>,
}

impl NameTable {
    fn new(records: impl IntoIterator<Item = Record>) -> NameTable {
        let mut t = NameTable::default();
        for r in records {
            t.records.entry(r.name.clone()).or_default().push(r);
        }
        let names: Vec<String> = t.records.keys().cloned().collect();
        for name in names {
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                if !t.records.contains_key(parent) {
                    t.above.insert(parent.to_string());
                }
                rest = parent;
            }
        }
        t
    }

    /// Look `name` up: exact owner-name matches, with a `*.` wildcard owner
    /// matching when nothing exact exists (`true`: the records' owner is the
    /// wildcard, to be renamed to `name`). `None` = the name does not exist
    /// (neither exact, wildcard, nor an empty non-terminal above a record).
    /// Borrowed: a query copies only the records it answers with.
    fn lookup(&self, name: &str) -> Option<(&[Record], bool)> {
        if let Some(exact) = self.records.get(name) {
            return Some((exact, false));
        }
        if self.above.contains(name) {
            return Some((&[], false)); // empty non-terminal: NOERROR, no data
        }
        let parent = name.split_once('.')?.1;
        let hits = self.records.get(&format!("*.{parent}"))?;
        Some((hits, true))
    }
}

/// What one DNS server answers from: the private zones linked to one VNet
/// (authoritative: a miss is NXDOMAIN, never a fallback) and the public
/// names, built once from the state and then read by every query until the
/// next apply replaces it.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    /// Linked zone name -> its records.
    private: HashMap<String, NameTable>,
    /// Shared by every resolver built from one state ([`Tables`]).
    public: Arc<NameTable>,
}

/// What every resolver built from one state shares, computed once: the
/// public names (one table for all the lab's servers, not one per VNet) and
/// the zone groups' record sets (one pass over the private endpoints, not
/// one per linked zone).
pub struct Tables {
    public: Arc<NameTable>,
    groups: Vec<zone_groups::GroupRecordSet>,
}

impl Tables {
    pub fn new(state: &LabState, inv: &Inventory) -> Tables {
        Tables {
            public: Arc::new(NameTable::new(public_records(inv, state))),
            groups: zone_groups::group_record_sets(inv, state),
        }
    }

    /// The lab's public DNS (no private zones).
    pub fn public(&self) -> Resolver {
        Resolver {
            private: HashMap::new(),
            public: self.public.clone(),
        }
    }

    /// Azure-provided DNS (168.63.129.16) inside `vnet`: its linked zones
    /// (with zone groups' and auto-registered records), then the public names.
    pub fn for_vnet(&self, state: &LabState, inv: &Inventory, vnet: &ResourceId) -> Resolver {
        let private = inv
            .zones_linked_to(vnet)
            .map(|z| {
                let mut records = zone_records(z);
                zone_groups::overlay_records(&mut records, &self.groups, z);
                let manual: BTreeSet<String> = records.iter().map(|r| r.name.clone()).collect();
                // A record set written by hand wins over the registration.
                records.extend(
                    registered_records(inv, state, z)
                        .into_iter()
                        .filter(|r| !manual.contains(&r.name)),
                );
                (z.zone.clone(), NameTable::new(records))
            })
            .collect();
        Resolver {
            private,
            public: self.public.clone(),
        }
    }
}

/// The type a query asks for: one the lab holds, or any other (`MX`, `SOA`,
/// ...), which exists for no name (NOERROR without data when the name
/// exists, NXDOMAIN when it does not; CNAMEs are still followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    Known(RecordType),
    Other,
}

impl Resolver {
    /// Azure-provided DNS (168.63.129.16) inside `vnet` (one resolver: for
    /// several, build their [`Tables`] once).
    pub fn for_vnet(state: &LabState, inv: &Inventory, vnet: &ResourceId) -> Resolver {
        Tables::new(state, inv).for_vnet(state, inv, vnet)
    }

    /// The lab's public DNS (no private zones).
    pub fn public(state: &LabState, inv: &Inventory) -> Resolver {
        Resolver {
            private: HashMap::new(),
            public: Arc::new(NameTable::new(public_records(inv, state))),
        }
    }

    /// A resolver over these public records only (tests, benchmarks).
    pub fn from_public_records(records: Vec<Record>) -> Resolver {
        Resolver {
            private: HashMap::new(),
            public: Arc::new(NameTable::new(records)),
        }
    }

    /// The table that answers for `name`: the linked zone with the longest
    /// matching suffix, else the public names.
    fn table_for(&self, name: &str) -> &NameTable {
        if !self.private.is_empty() {
            let mut rest = name;
            loop {
                if let Some(t) = self.private.get(rest) {
                    return t;
                }
                match rest.split_once('.') {
                    Some((_, parent)) => rest = parent,
                    None => break,
                }
            }
        }
        &self.public
    }

    /// The answer to `name` (any case, trailing dot or not) of type `qtype`:
    /// CNAMEs followed across zones (a query for CNAME itself stops at the
    /// first), up to [`MAX_CNAME_DEPTH`]; a loop or a longer chain is SERVFAIL.
    ///
    /// A loop needs no check of its own: it runs past the depth limit.
    pub fn answer(&self, name: &str, qtype: QueryType) -> Answer {
        let mut records = Vec::new();
        let mut current = canonical_name(name);
        for _ in 0..=MAX_CNAME_DEPTH {
            let Some((found, wildcard)) = self.table_for(&current).lookup(&current) else {
                return Answer {
                    rcode: Rcode::NxDomain,
                    records,
                };
            };
            let owned = |r: &Record| Record {
                name: if wildcard {
                    current.clone()
                } else {
                    r.name.clone()
                },
                ..r.clone()
            };
            let cname = found.iter().find(|r| r.rtype == RecordType::Cname);
            match cname {
                Some(c) if qtype != QueryType::Known(RecordType::Cname) => {
                    let RecordData::Cname(target) = &c.data else {
                        unreachable!("CNAME records hold a name")
                    };
                    records.push(owned(c));
                    current = target.clone();
                }
                _ => {
                    records.extend(
                        found
                            .iter()
                            .filter(|r| qtype == QueryType::Known(r.rtype))
                            .map(owned),
                    );
                    return Answer {
                        rcode: Rcode::NoError,
                        records,
                    };
                }
            }
        }
        Answer {
            rcode: Rcode::ServFail,
            records: Vec::new(),
        }
    }
}

/// What Azure-provided DNS (168.63.129.16) answers a query from `vnet`: the
/// private zones linked to the VNet first (the longest matching zone; a name
/// inside a linked zone without records is NXDOMAIN, with no fallback to
/// public DNS, as Azure does), then the lab's public names. CNAMEs are
/// followed across zones (so `NAME.blob.core.windows.net` ->
/// `NAME.privatelink.blob.core.windows.net` is answered by a linked
/// privatelink zone when there is one), up to [`MAX_CNAME_DEPTH`]; a loop or
/// a longer chain is SERVFAIL. Zones not linked to `vnet` are invisible
/// (AZURE-FACTS §6: "Only linked VNets resolve them").
pub fn resolve(
    state: &LabState,
    _lab: &LabConfig,
    vnet: &ResourceId,
    name: &str,
    rtype: RecordType,
) -> Answer {
    let inv = Inventory::parse_lenient(&state.resources);
    Resolver::for_vnet(state, &inv, vnet).answer(name, QueryType::Known(rtype))
}

/// What the lab internet's public DNS answers (no private zones): internet
/// hosts' names and the emulated public service names.
pub fn public_resolve(state: &LabState, _lab: &LabConfig, name: &str, rtype: RecordType) -> Answer {
    let inv = Inventory::parse_lenient(&state.resources);
    Resolver::public(state, &inv).answer(name, QueryType::Known(rtype))
}

impl Answer {
    /// The answer as `dig` would summarise it: status and answer section.
    pub fn to_json(&self) -> serde_json::Value {
        let status = match self.rcode {
            Rcode::NoError => "NOERROR",
            Rcode::NxDomain => "NXDOMAIN",
            Rcode::ServFail => "SERVFAIL",
        };
        let answers: Vec<serde_json::Value> = self
            .records
            .iter()
            .map(|r| {
                let data = match &r.data {
                    RecordData::A(a) => serde_json::json!(a.to_string()),
                    RecordData::Aaaa(a) => serde_json::json!(a.to_string()),
                    RecordData::Cname(c) => serde_json::json!(c),
                    RecordData::Txt(t) => serde_json::json!(t),
                };
                serde_json::json!({ "name": r.name, "type": r.rtype.as_str(), "ttl": r.ttl, "data": data })
            })
            .collect();
        serde_json::json!({ "status": status, "answers": answers })
    }
}
