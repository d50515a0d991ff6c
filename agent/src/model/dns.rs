//! Typed view of `Microsoft.Network/privateDnsZones` (AZURE-FACTS §6; seed,
//! "Azure DNS private zones"). The ARM child types
//! `privateDnsZones/{A,AAAA,CNAME,TXT}` and `privateDnsZones/virtualNetworkLinks`
//! are stored inside the zone, in `properties.recordSets[]` and
//! `properties.virtualNetworkLinks[]`, the way subnets live in their VNet.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::props::{self, invalid, Props};
use super::{AzureError, GenericResource, ResourceId};

/// The only location of a private DNS zone (and of its links).
pub const GLOBAL_LOCATION: &str = "global";

/// TTL of a record set that names none: Azure's default of one hour.
pub const DEFAULT_RECORD_TTL: u32 = 3600;

/// The record types a private zone record set can hold in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Txt,
}

impl RecordType {
    /// Every type, in the order messages list them.
    pub const ALL: [RecordType; 4] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Txt,
    ];

    /// ARM's spelling, also the child type's last segment (`privateDnsZones/AAAA`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
        }
    }

    /// Case-insensitive parse of ARM's spelling.
    pub fn parse(s: &str) -> Option<RecordType> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// The data of one record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The canonical name, lower-cased, without the trailing dot.
    Cname(String),
    /// The character strings of one TXT record.
    Txt(Vec<String>),
}

impl RecordData {
    pub fn rtype(&self) -> RecordType {
        match self {
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::Aaaa,
            RecordData::Cname(_) => RecordType::Cname,
            RecordData::Txt(_) => RecordType::Txt,
        }
    }
}

/// One record set: every record of one type at one relative name.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSet {
    /// Relative name, lower-cased; `@` is the zone apex.
    pub name: String,
    pub rtype: RecordType,
    /// `properties.ttl` (seconds).
    pub ttl: u32,
    pub records: Vec<RecordData>,
}

/// `Microsoft.Network/privateDnsZones/virtualNetworkLinks`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualNetworkLink {
    pub id: ResourceId,
    pub name: String,
    /// `properties.virtualNetwork.id`.
    pub vnet_id: Option<ResourceId>,
    /// `properties.registrationEnabled`: VMs of the VNet get A records here.
    pub registration_enabled: bool,
}

/// `Microsoft.Network/privateDnsZones`: the zone name is the resource name.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateDnsZone {
    pub id: ResourceId,
    /// The zone name, lower-cased, without a trailing dot.
    pub zone: String,
    pub location: String,
    pub record_sets: Vec<RecordSet>,
    pub links: Vec<VirtualNetworkLink>,
}

/// A DNS name in the lab's canonical form: lower-cased, no trailing dot.
pub fn canonical_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Is `name` a valid absolute host name (labels of 1-63 letters, digits and
/// hyphens, not starting or ending with a hyphen; 253 characters at most)?
/// `min_labels` is 2 for zone names.
pub fn valid_dns_name(name: &str, min_labels: usize) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253 && labels.len() >= min_labels && labels.iter().all(|l| valid_label(l))
}

/// One label of a host name (`_` allowed, as in `_acme-challenge`).
pub fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

impl PrivateDnsZone {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let mut record_sets = Vec::new();
        for (i, v) in p.array("properties.recordSets")?.iter().enumerate() {
            record_sets.push(record_set(res, v, &format!("properties.recordSets[{i}]"))?);
        }
        let mut links = Vec::new();
        for (i, v) in p
            .array("properties.virtualNetworkLinks")?
            .iter()
            .enumerate()
        {
            let base = format!("properties.virtualNetworkLinks[{i}]");
            let name = props::str_in(res, props::at(v, "name"), &format!("{base}.name"))?
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid(res, &format!("{base}.name"), "is required"))?;
            let vnet_id = props::id_in(
                res,
                props::at(v, "properties.virtualNetwork.id"),
                &format!("{base}.properties.virtualNetwork.id"),
            )?;
            let registration_enabled = props::bool_in(
                res,
                props::at(v, "properties.registrationEnabled"),
                &format!("{base}.properties.registrationEnabled"),
            )?
            .unwrap_or(false);
            links.push(VirtualNetworkLink {
                id: res.id.child("virtualNetworkLinks", &name),
                name,
                vnet_id,
                registration_enabled,
            });
        }
        Ok(PrivateDnsZone {
            id: res.id.clone(),
            zone: canonical_name(&res.name),
            location: res.location.clone().unwrap_or_default(),
            record_sets,
            links,
        })
    }

    /// Is this zone linked to `vnet`?
    pub fn linked_to(&self, vnet: &ResourceId) -> bool {
        self.links.iter().any(|l| l.vnet_id.as_ref() == Some(vnet))
    }

    /// The absolute name of a relative record set name (`@` is the apex).
    pub fn absolute(&self, relative: &str) -> String {
        if relative == "@" {
            self.zone.clone()
        } else {
            format!("{relative}.{}", self.zone)
        }
    }
}

fn record_set(res: &GenericResource, v: &Value, base: &str) -> Result<RecordSet, AzureError> {
    let at = |key: &str| props::at(v, key);
    let path = |key: &str| format!("{base}.{key}");
    let name = props::str_in(res, at("name"), &path("name"))?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(res, &path("name"), "is required"))?;
    let type_ = props::str_in(res, at("type"), &path("type"))?
        .ok_or_else(|| invalid(res, &path("type"), "is required"))?;
    let rtype = RecordType::parse(&type_).ok_or_else(|| {
        invalid(
            res,
            &path("type"),
            &format!("'{type_}' is not a record type the lab supports (A, AAAA, CNAME, TXT)"),
        )
    })?;
    let ttl = match at("properties.ttl") {
        None => DEFAULT_RECORD_TTL,
        Some(t) => t
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= i32::MAX as u32)
            .ok_or_else(|| {
                invalid(
                    res,
                    &path("properties.ttl"),
                    "must be an integer from 0 to 2147483647",
                )
            })?,
    };
    let mut records = Vec::new();
    match rtype {
        RecordType::A => {
            for (i, r) in
                props::array_in(res, at("properties.aRecords"), &path("properties.aRecords"))?
                    .iter()
                    .enumerate()
            {
                let p = path(&format!("properties.aRecords[{i}].ipv4Address"));
                let s = props::str_in(res, props::at(r, "ipv4Address"), &p)?.unwrap_or_default();
                let ip = s
                    .parse()
                    .map_err(|_| invalid(res, &p, &format!("'{s}' is not an IPv4 address")))?;
                records.push(RecordData::A(ip));
            }
        }
        RecordType::Aaaa => {
            for (i, r) in props::array_in(
                res,
                at("properties.aaaaRecords"),
                &path("properties.aaaaRecords"),
            )?
            .iter()
            .enumerate()
            {
                let p = path(&format!("properties.aaaaRecords[{i}].ipv6Address"));
                let s = props::str_in(res, props::at(r, "ipv6Address"), &p)?.unwrap_or_default();
                let ip = s
                    .parse()
                    .map_err(|_| invalid(res, &p, &format!("'{s}' is not an IPv6 address")))?;
                records.push(RecordData::Aaaa(ip));
            }
        }
        RecordType::Cname => {
            let p = path("properties.cnameRecord.cname");
            let target = props::str_in(res, at("properties.cnameRecord.cname"), &p)?
                .map(|s| canonical_name(&s))
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(res, &p, "is required for a CNAME record set"))?;
            if !valid_dns_name(&target, 1) {
                return Err(invalid(
                    res,
                    &p,
                    &format!("'{target}' is not a valid host name"),
                ));
            }
            records.push(RecordData::Cname(target));
        }
        RecordType::Txt => {
            for (i, r) in props::array_in(
                res,
                at("properties.txtRecords"),
                &path("properties.txtRecords"),
            )?
            .iter()
            .enumerate()
            {
                let p = path(&format!("properties.txtRecords[{i}].value"));
                let mut strings = Vec::new();
                for s in props::array_in(res, props::at(r, "value"), &p)? {
                    let s = s
                        .as_str()
                        .ok_or_else(|| invalid(res, &p, "must be an array of strings"))?;
                    if s.len() > 255 {
                        return Err(invalid(
                            res,
                            &p,
                            "holds a string longer than 255 characters (split it into several strings)",
                        ));
                    }
                    strings.push(s.to_string());
                }
                records.push(RecordData::Txt(strings));
            }
        }
    }
    Ok(RecordSet {
        name: name.to_ascii_lowercase(),
        rtype,
        ttl,
        records,
    })
}
