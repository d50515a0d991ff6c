//! Name resolution as Azure-provided DNS (168.63.129.16) answers it, pure:
//! from a VNet (private zones linked to it, then public names) and from the
//! lab's internet (public names only). AZURE-FACTS §6; seed, "Private
//! endpoints" and "Azure DNS private zones". The DNS server that puts this on
//! the wire lives elsewhere.

pub mod view;
pub mod zone_groups;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::model::{canonical_name, Inventory, LabConfig, LabState, PrivateDnsZone, ResourceId};

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

/// The emulated services' public names, as the public internet's DNS holds
/// them (notes/service-api.md, "Public names"; AZURE-FACTS §6): for every
/// endpoint of every storage account, vault and registry that has its public
/// address, `NAME.<zone>` CNAME `NAME.<privatelink zone>`, and that name's A
/// record is the service's public IP. A private zone `privatelink.<zone>`
/// linked to a VNet then answers the second name inside that VNet (private
/// endpoints), without changing the name clients use.
pub fn public_service_records(inv: &Inventory, state: &LabState) -> Vec<Record> {
    let mut records = Vec::new();
    for s in &inv.services {
        let Some(ip) = state.allocations.service_ips.get(&s.id.key()) else {
            continue;
        };
        for e in s.kind.endpoints() {
            let (public, privatelink) = (e.host(&s.name), e.privatelink_host(&s.name));
            records.push(Record {
                name: public,
                rtype: RecordType::Cname,
                ttl: PUBLIC_TTL,
                data: RecordData::Cname(privatelink.clone()),
            });
            records.push(Record {
                name: privatelink,
                rtype: RecordType::A,
                ttl: PUBLIC_TTL,
                data: RecordData::A(*ip),
            });
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

/// Is `name` inside `zone` (the apex or below it)?
fn in_zone(name: &str, zone: &str) -> bool {
    name == zone
        || name
            .strip_suffix(zone)
            .is_some_and(|head| head.ends_with('.'))
}

/// Where one name is looked up: a linked private zone (authoritative: a
/// miss is NXDOMAIN, never a fallback) or the public namespace.
struct Namespaces<'a> {
    private: Vec<(&'a PrivateDnsZone, Vec<Record>)>,
    public: Vec<Record>,
}

impl<'a> Namespaces<'a> {
    /// The records that answer for `name`: the linked zone with the longest
    /// matching suffix, else the public namespace.
    fn for_name(&self, name: &str) -> &[Record] {
        self.private
            .iter()
            .filter(|(z, _)| in_zone(name, &z.zone))
            .max_by_key(|(z, _)| z.zone.len())
            .map(|(_, r)| r.as_slice())
            .unwrap_or(&self.public)
    }
}

/// Look `name` up in `records`: exact owner-name matches, with a `*.` wildcard
/// owner matching when nothing exact exists. `None` = the name does not exist
/// (neither exact, wildcard, nor an empty non-terminal above a record).
fn lookup(records: &[Record], name: &str) -> Option<Vec<Record>> {
    let exact: Vec<&Record> = records.iter().filter(|r| r.name == name).collect();
    if !exact.is_empty() {
        return Some(exact.into_iter().cloned().collect());
    }
    let suffix = format!(".{name}");
    if records.iter().any(|r| r.name.ends_with(&suffix)) {
        return Some(Vec::new()); // empty non-terminal: NOERROR, no data
    }
    let parent = name.split_once('.')?.1;
    let wildcard = format!("*.{parent}");
    let hits: Vec<Record> = records
        .iter()
        .filter(|r| r.name == wildcard)
        .map(|r| Record {
            name: name.to_string(),
            ..r.clone()
        })
        .collect();
    (!hits.is_empty()).then_some(hits)
}

fn follow(spaces: &Namespaces, name: &str, rtype: RecordType) -> Answer {
    let mut records = Vec::new();
    let mut seen = BTreeSet::new();
    let mut current = canonical_name(name);
    loop {
        if !seen.insert(current.clone()) || seen.len() > MAX_CNAME_DEPTH + 1 {
            return Answer {
                rcode: Rcode::ServFail,
                records: Vec::new(),
            };
        }
        let Some(found) = lookup(spaces.for_name(&current), &current) else {
            return Answer {
                rcode: Rcode::NxDomain,
                records,
            };
        };
        let cname = found.iter().find(|r| r.rtype == RecordType::Cname);
        match cname {
            Some(c) if rtype != RecordType::Cname => {
                let RecordData::Cname(target) = &c.data else {
                    unreachable!("CNAME records hold a name")
                };
                current = target.clone();
                records.push(c.clone());
            }
            _ => {
                records.extend(found.into_iter().filter(|r| r.rtype == rtype));
                return Answer {
                    rcode: Rcode::NoError,
                    records,
                };
            }
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
    let spaces = Namespaces {
        private: inv
            .zones_linked_to(vnet)
            .map(|z| {
                let mut records = zone_records(z);
                zone_groups::overlay_records(&mut records, &inv, state, z);
                let manual: BTreeSet<String> = records.iter().map(|r| r.name.clone()).collect();
                // A record set written by hand wins over the registration.
                records.extend(
                    registered_records(&inv, state, z)
                        .into_iter()
                        .filter(|r| !manual.contains(&r.name)),
                );
                (z, records)
            })
            .collect(),
        public: public_records(&inv, state),
    };
    follow(&spaces, name, rtype)
}

/// What the lab internet's public DNS answers (no private zones): internet
/// hosts' names and the emulated public service names.
pub fn public_resolve(state: &LabState, _lab: &LabConfig, name: &str, rtype: RecordType) -> Answer {
    let inv = Inventory::parse_lenient(&state.resources);
    let spaces = Namespaces {
        private: Vec::new(),
        public: public_records(&inv, state),
    };
    follow(&spaces, name, rtype)
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
