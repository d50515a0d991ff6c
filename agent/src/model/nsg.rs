//! Typed views of `Microsoft.Network/networkSecurityGroups` and
//! `Microsoft.Network/applicationSecurityGroups` (AZURE-FACTS §3; seed,
//! "Network routing": *You can also use a network security group (NSG) to
//! block outbound traffic*).
//!
//! Parsing keeps the written values (strings, lists) so validation can answer
//! Azure's codes; [`SecurityRule::typed`] is the one interpretation both
//! validation and the plan use.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use super::props::{self, invalid, Props};
use super::{AzureError, GenericResource, ResourceId, ServiceKind};

/// Lowest priority number a user rule may have (AZURE-FACTS §3).
pub const MIN_RULE_PRIORITY: u32 = 100;
/// Highest priority number a user rule may have.
pub const MAX_RULE_PRIORITY: u32 = 4096;
/// Longest rule name Azure accepts.
pub const MAX_RULE_NAME_LEN: usize = 80;
/// The Azure platform address (DNS, health probes): `AzureLoadBalancer`, and
/// part of `VirtualNetwork`.
pub const AZURE_PLATFORM_IP: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

/// Service tags a rule may name besides the VNet-relative ones (AZURE-FACTS
/// §3, "Outbound-style tags"), and the kind of emulated service whose public
/// addresses each one holds. `Storage`, `AzureKeyVault` and
/// `AzureContainerRegistry` hold the public IPs of the lab's storage accounts,
/// vaults and registries (a regional form such as `Storage.WestEurope` those
/// in that region: [`ServiceTag::covers`]); the others have no emulated service
/// and stay empty.
pub const SERVICE_TAGS: &[(&str, Option<ServiceKind>)] = &[
    ("ApiManagement", None),
    ("AppService", None),
    ("AzureActiveDirectory", None),
    ("AzureCloud", None),
    // What access restrictions name most: Front Door's back ends.
    ("AzureFrontDoor.Backend", None),
    ("AzureFrontDoor.Frontend", None),
    ("AzureTrafficManager", None),
    (
        "AzureContainerRegistry",
        Some(ServiceKind::ContainerRegistry),
    ),
    ("AzureKeyVault", Some(ServiceKind::KeyVault)),
    ("AzureMonitor", None),
    ("EventHub", None),
    ("GatewayManager", None),
    ("Sql", None),
    ("Storage", Some(ServiceKind::Storage)),
];

/// A service tag a rule may name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceTag {
    /// The VNet's address space, peered and on-premises spaces, 168.63.129.16.
    VirtualNetwork,
    /// Public space outside the VNet (the lab: the complement of `VirtualNetwork`).
    Internet,
    /// 168.63.129.16.
    AzureLoadBalancer,
    /// An emulated service tag, canonical spelling (`Storage`, `Storage.WestEurope`).
    Service(String),
}

impl ServiceTag {
    /// The tag named `s` (case-insensitive), if the lab knows it.
    pub fn parse(s: &str) -> Option<ServiceTag> {
        let known = |t: &str| {
            SERVICE_TAGS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(t))
                .map(|(n, _)| *n)
        };
        if s.eq_ignore_ascii_case("VirtualNetwork") {
            return Some(ServiceTag::VirtualNetwork);
        }
        if s.eq_ignore_ascii_case("Internet") {
            return Some(ServiceTag::Internet);
        }
        if s.eq_ignore_ascii_case("AzureLoadBalancer") {
            return Some(ServiceTag::AzureLoadBalancer);
        }
        if let Some(n) = known(s) {
            return Some(ServiceTag::Service(n.to_string()));
        }
        let (base, region) = s.split_once('.')?;
        let region_ok = !region.is_empty() && region.chars().all(|c| c.is_ascii_alphanumeric());
        let base = known(base).filter(|_| region_ok)?;
        Some(ServiceTag::Service(format!("{base}.{region}")))
    }

    /// The name as written in rules and effective rules.
    pub fn name(&self) -> String {
        match self {
            ServiceTag::VirtualNetwork => "VirtualNetwork".into(),
            ServiceTag::Internet => "Internet".into(),
            ServiceTag::AzureLoadBalancer => "AzureLoadBalancer".into(),
            ServiceTag::Service(s) => s.clone(),
        }
    }

    /// Does this tag hold the public addresses of a `kind` service in
    /// `location`? `Storage` holds every storage account, `Storage.WestEurope`
    /// those in westeurope; the VNet-relative tags hold none (the plan
    /// expands them).
    pub fn covers(&self, kind: ServiceKind, location: &str) -> bool {
        let ServiceTag::Service(name) = self else {
            return false;
        };
        let (base, region) = match name.split_once('.') {
            Some((b, r)) => (b, Some(r)),
            None => (name.as_str(), None),
        };
        SERVICE_TAGS
            .iter()
            .any(|(n, k)| n.eq_ignore_ascii_case(base) && *k == Some(kind))
            && region
                .is_none_or(|r| super::normalize_location(r) == super::normalize_location(location))
    }
}

/// `Inbound` / `Outbound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "Inbound",
            Direction::Outbound => "Outbound",
        }
    }
    /// `in` / `out`: the suffix of the NSG's nft chain.
    pub fn short(self) -> &'static str {
        match self {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        }
    }
}

/// `Allow` / `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Allow,
    Deny,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Allow => "Allow",
            Access::Deny => "Deny",
        }
    }
}

/// `Tcp | Udp | Icmp | *` (`*` = Any: every protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleProtocol {
    Tcp,
    Udp,
    Icmp,
    Any,
}

impl RuleProtocol {
    /// As in a rule: `Tcp`, `Udp`, `Icmp`, `*`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleProtocol::Tcp => "Tcp",
            RuleProtocol::Udp => "Udp",
            RuleProtocol::Icmp => "Icmp",
            RuleProtocol::Any => "*",
        }
    }
}

/// One side's addresses of a typed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressMatch {
    /// `*` (or `0.0.0.0/0`, `Any`).
    Any,
    /// IPs and CIDRs (a single IP is a /32), as written.
    Prefixes(Vec<Ipv4Net>),
    /// One service tag.
    Tag(ServiceTag),
    /// One application security group.
    Asg(ResourceId),
}

/// One side's ports: `*` or inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMatch {
    Any,
    Ranges(Vec<(u16, u16)>),
}

/// A rule as the plan and validation understand it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedRule {
    pub name: String,
    pub priority: u32,
    pub direction: Direction,
    pub access: Access,
    pub protocol: RuleProtocol,
    pub source: AddressMatch,
    pub destination: AddressMatch,
    pub source_ports: PortMatch,
    pub destination_ports: PortMatch,
}

/// `properties.securityRules[]`, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityRule {
    pub name: String,
    pub priority: Option<i64>,
    pub direction: Option<String>,
    pub access: Option<String>,
    pub protocol: Option<String>,
    pub source_address_prefix: Option<String>,
    pub source_address_prefixes: Vec<String>,
    pub destination_address_prefix: Option<String>,
    pub destination_address_prefixes: Vec<String>,
    pub source_port_range: Option<String>,
    pub source_port_ranges: Vec<String>,
    pub destination_port_range: Option<String>,
    pub destination_port_ranges: Vec<String>,
    pub source_asgs: Vec<ResourceId>,
    pub destination_asgs: Vec<ResourceId>,
}

/// `Microsoft.Network/networkSecurityGroups`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSecurityGroup {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// In the order written.
    pub rules: Vec<SecurityRule>,
}

/// `Microsoft.Network/applicationSecurityGroups`: a name NIC ipConfigurations
/// join; rules that name it match the members' private IPs.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationSecurityGroup {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
}

impl ApplicationSecurityGroup {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        Ok(ApplicationSecurityGroup {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
        })
    }
}

fn strings_in(
    res: &GenericResource,
    v: Option<&Value>,
    path: &str,
) -> Result<Vec<String>, AzureError> {
    props::array_in(res, v, path)?
        .iter()
        .enumerate()
        .map(|(i, s)| Ok(props::str_in(res, Some(s), &format!("{path}[{i}]"))?.unwrap_or_default()))
        .collect()
}

/// `[{id}]` lists (application security groups).
pub(crate) fn ids_in(
    res: &GenericResource,
    v: Option<&Value>,
    path: &str,
) -> Result<Vec<ResourceId>, AzureError> {
    let mut out = Vec::new();
    for (i, e) in props::array_in(res, v, path)?.iter().enumerate() {
        let at = format!("{path}[{i}].id");
        match props::id_in(res, props::at(e, "id"), &at)? {
            Some(id) => out.push(id),
            None => return Err(invalid(res, &at, "is required")),
        }
    }
    Ok(out)
}

impl NetworkSecurityGroup {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let mut rules = Vec::new();
        for (i, v) in p.array("properties.securityRules")?.iter().enumerate() {
            let base = format!("properties.securityRules[{i}]");
            let s = |key: &str| {
                props::str_in(res, props::at(v, key), &format!("{base}.{key}"))
                    .map(|o| o.filter(|s| !s.trim().is_empty()))
            };
            let l = |key: &str| strings_in(res, props::at(v, key), &format!("{base}.{key}"));
            let name =
                s("name")?.ok_or_else(|| invalid(res, &format!("{base}.name"), "is required"))?;
            let prio_path = format!("{base}.properties.priority");
            let priority = match props::at(v, "properties.priority") {
                None => None,
                Some(Value::Number(n)) => Some(
                    n.as_i64()
                        .ok_or_else(|| invalid(res, &prio_path, "must be an integer"))?,
                ),
                Some(Value::String(t)) => Some(
                    t.trim()
                        .parse()
                        .map_err(|_| invalid(res, &prio_path, "must be an integer"))?,
                ),
                Some(_) => return Err(invalid(res, &prio_path, "must be an integer")),
            };
            rules.push(SecurityRule {
                name,
                priority,
                direction: s("properties.direction")?,
                access: s("properties.access")?,
                protocol: s("properties.protocol")?,
                source_address_prefix: s("properties.sourceAddressPrefix")?,
                source_address_prefixes: l("properties.sourceAddressPrefixes")?,
                destination_address_prefix: s("properties.destinationAddressPrefix")?,
                destination_address_prefixes: l("properties.destinationAddressPrefixes")?,
                source_port_range: s("properties.sourcePortRange")?,
                source_port_ranges: l("properties.sourcePortRanges")?,
                destination_port_range: s("properties.destinationPortRange")?,
                destination_port_ranges: l("properties.destinationPortRanges")?,
                source_asgs: ids_in(
                    res,
                    props::at(v, "properties.sourceApplicationSecurityGroups"),
                    &format!("{base}.properties.sourceApplicationSecurityGroups"),
                )?,
                destination_asgs: ids_in(
                    res,
                    props::at(v, "properties.destinationApplicationSecurityGroups"),
                    &format!("{base}.properties.destinationApplicationSecurityGroups"),
                )?,
            });
        }
        Ok(NetworkSecurityGroup {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            rules,
        })
    }

    /// The id of rule `name`: `<nsg>/securityRules/<name>`.
    pub fn rule_id(&self, name: &str) -> ResourceId {
        self.id.child("securityRules", name)
    }
}

fn rule_err(code: &str, nsg: &str, rule: &str, what: String) -> AzureError {
    AzureError::bad_request(
        code,
        format!("Security rule '{rule}' of network security group '{nsg}': {what}"),
    )
    .with_target(format!("properties.securityRules[{rule}]"))
}

/// A rule field Azure accepts either singular (`destinationPortRange`) or as a
/// list (`destinationPortRanges`), never both; one of them is required.
fn one_or_list<'a>(
    nsg: &str,
    rule: &str,
    both_code: &str,
    (one, many): (&str, &str),
    single: Option<&'a str>,
    list: &'a [String],
    required: &str,
) -> Result<Vec<&'a str>, AzureError> {
    match (single, list) {
        (Some(_), [_, ..]) => Err(rule_err(
            both_code,
            nsg,
            rule,
            format!("gives both {one} and {many}; give one of them."),
        )),
        (Some(s), []) => Ok(vec![s]),
        (None, []) => Err(rule_err(
            "SecurityRuleParameterNullOrEmpty",
            nsg,
            rule,
            required.to_string(),
        )),
        (None, l) => Ok(l.iter().map(String::as_str).collect()),
    }
}

fn enum_value<T: Copy>(
    nsg: &str,
    rule: &str,
    field: &str,
    written: Option<&str>,
    options: &[(&str, T)],
) -> Result<T, AzureError> {
    let allowed: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    let Some(w) = written else {
        return Err(rule_err(
            "SecurityRuleParameterNullOrEmpty",
            nsg,
            rule,
            format!("'{field}' is required; use one of {}.", allowed.join(", ")),
        ));
    };
    options
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(w))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            rule_err(
                "SecurityRuleParameterContainsUnsupportedValue",
                nsg,
                rule,
                format!("'{field}' is '{w}'; use one of {}.", allowed.join(", ")),
            )
        })
}

/// One written address: `*`, an IP, a CIDR, or a tag.
enum AddrItem {
    Any,
    Net(Ipv4Net),
    Tag(ServiceTag),
}

fn parse_addr_item(nsg: &str, rule: &str, field: &str, s: &str) -> Result<AddrItem, AzureError> {
    let s = s.trim();
    if s == "*" || s.eq_ignore_ascii_case("any") || s == "0.0.0.0/0" {
        return Ok(AddrItem::Any);
    }
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(AddrItem::Net(Ipv4Net::new(ip, 32).expect("/32")));
    }
    if let Ok(net) = s.parse::<Ipv4Net>() {
        if net.trunc() != net {
            return Err(rule_err(
                "SecurityRuleInvalidAddressPrefix",
                nsg,
                rule,
                format!(
                    "{field} '{s}' has host bits set; write the network address {}.",
                    net.trunc()
                ),
            ));
        }
        return Ok(AddrItem::Net(net));
    }
    if let Some(tag) = ServiceTag::parse(s) {
        return Ok(AddrItem::Tag(tag));
    }
    let tags: Vec<&str> = ["VirtualNetwork", "Internet", "AzureLoadBalancer"]
        .into_iter()
        .chain(SERVICE_TAGS.iter().map(|(n, _)| *n))
        .collect();
    Err(rule_err(
        "SecurityRuleInvalidAddressPrefix",
        nsg,
        rule,
        format!(
            "{field} '{s}' is not '*', an IPv4 address, a CIDR prefix or a service tag the lab knows ({}, \
             and regional forms like Storage.WestEurope).",
            tags.join(", ")
        ),
    ))
}

fn address_side(
    nsg: &str,
    rule: &str,
    side: &str,
    single: Option<&str>,
    list: &[String],
    asgs: &[ResourceId],
) -> Result<AddressMatch, AzureError> {
    let field = format!("{side}AddressPrefix");
    if !asgs.is_empty() {
        if single.is_some() || !list.is_empty() {
            return Err(rule_err(
                "SecurityRuleParameterContainsUnsupportedValue",
                nsg,
                rule,
                format!(
                    "gives both {side}ApplicationSecurityGroups and {field}(es); give one of them."
                ),
            ));
        }
        if asgs.len() > 1 {
            return Err(rule_err(
                "SecurityRuleParameterContainsUnsupportedValue",
                nsg,
                rule,
                format!(
                    "names {} application security groups in {side}ApplicationSecurityGroups; a rule may name one.",
                    asgs.len()
                ),
            ));
        }
        return Ok(AddressMatch::Asg(asgs[0].clone()));
    }
    let written = one_or_list(
        nsg,
        rule,
        "SecurityRuleInvalidAddressPrefix",
        (&field, &format!("{field}es")),
        single,
        list,
        &format!(
            "{field} is required ('*', an IP, a CIDR or a service tag), or {field}es, or \
             {side}ApplicationSecurityGroups."
        ),
    )?;
    let items = written
        .iter()
        .map(|s| parse_addr_item(nsg, rule, &field, s))
        .collect::<Result<Vec<_>, _>>()?;
    let tags = items
        .iter()
        .filter(|i| matches!(i, AddrItem::Tag(_)))
        .count();
    if tags > 0 && items.len() > 1 {
        return Err(rule_err(
            "SecurityRuleInvalidAddressPrefix",
            nsg,
            rule,
            format!(
                "{field}es '{}' mix a service tag with other entries; a rule may name one service tag \
                 alone (or several IPs and CIDRs). Split it into several rules.",
                written.join(",")
            ),
        ));
    }
    if items.iter().any(|i| matches!(i, AddrItem::Any)) {
        return Ok(AddressMatch::Any);
    }
    let mut nets = Vec::new();
    for i in items {
        match i {
            AddrItem::Tag(t) => return Ok(AddressMatch::Tag(t)),
            AddrItem::Net(n) => nets.push(n),
            AddrItem::Any => {}
        }
    }
    Ok(AddressMatch::Prefixes(nets))
}

fn port_side(
    nsg: &str,
    rule: &str,
    side: &str,
    single: Option<&str>,
    list: &[String],
) -> Result<PortMatch, AzureError> {
    let field = format!("{side}PortRange");
    let written = one_or_list(
        nsg,
        rule,
        "SecurityRuleInvalidPortRange",
        (&field, &format!("{field}s")),
        single,
        list,
        &format!(
            "{field} is required ('*', a port like 80 or a range like 1000-2000), or {field}s."
        ),
    )?;
    let mut ranges = Vec::new();
    for w in written {
        let w = w.trim();
        if w == "*" {
            return Ok(PortMatch::Any);
        }
        let bad = || {
            rule_err(
                "SecurityRuleInvalidPortRange",
                nsg,
                rule,
                format!("{field} '{w}' is not '*', a port (0-65535) or a range 'low-high' with low <= high."),
            )
        };
        let (a, b) = match w.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (w, w),
        };
        let a: u16 = a.parse().map_err(|_| bad())?;
        let b: u16 = b.parse().map_err(|_| bad())?;
        if a > b {
            return Err(bad());
        }
        if (a, b) == (0, 65535) {
            return Ok(PortMatch::Any);
        }
        ranges.push((a, b));
    }
    Ok(PortMatch::Ranges(ranges))
}

impl SecurityRule {
    /// The rule as the emulator evaluates it, or the Azure error for the
    /// first thing wrong with it (`nsg` names the group in messages).
    pub fn typed(&self, nsg: &str) -> Result<TypedRule, AzureError> {
        let rule = self.name.as_str();
        if rule.len() > MAX_RULE_NAME_LEN {
            return Err(rule_err(
                "InvalidResourceName",
                nsg,
                rule,
                format!(
                    "the name is {} characters long; at most {MAX_RULE_NAME_LEN} are allowed.",
                    rule.len()
                ),
            ));
        }
        let priority = match self.priority {
            None => {
                return Err(rule_err(
                    "SecurityRuleParameterNullOrEmpty",
                    nsg,
                    rule,
                    format!("'priority' is required ({MIN_RULE_PRIORITY} to {MAX_RULE_PRIORITY})."),
                ))
            }
            Some(p) if !(i64::from(MIN_RULE_PRIORITY)..=i64::from(MAX_RULE_PRIORITY)).contains(&p) => {
                return Err(rule_err(
                    "SecurityRuleInvalidPriority",
                    nsg,
                    rule,
                    format!(
                        "priority {p} is out of range; use {MIN_RULE_PRIORITY} to {MAX_RULE_PRIORITY} \
                         (65000 and above belong to the default rules)."
                    ),
                ))
            }
            Some(p) => p as u32,
        };
        let direction = enum_value(
            nsg,
            rule,
            "direction",
            self.direction.as_deref(),
            &[
                ("Inbound", Direction::Inbound),
                ("Outbound", Direction::Outbound),
            ],
        )?;
        let access = enum_value(
            nsg,
            rule,
            "access",
            self.access.as_deref(),
            &[("Allow", Access::Allow), ("Deny", Access::Deny)],
        )?;
        if let Some(p) = self.protocol.as_deref() {
            if p.eq_ignore_ascii_case("esp") || p.eq_ignore_ascii_case("ah") {
                return Err(rule_err(
                    "SecurityRuleParameterContainsUnsupportedValue",
                    nsg,
                    rule,
                    format!("protocol '{p}' is valid in Azure, but the lab does not emulate ESP/AH; use Tcp, Udp, Icmp or *."),
                ));
            }
        }
        let protocol = enum_value(
            nsg,
            rule,
            "protocol",
            self.protocol.as_deref(),
            &[
                ("Tcp", RuleProtocol::Tcp),
                ("Udp", RuleProtocol::Udp),
                ("Icmp", RuleProtocol::Icmp),
                ("*", RuleProtocol::Any),
                ("Any", RuleProtocol::Any),
            ],
        )?;
        Ok(TypedRule {
            name: self.name.clone(),
            priority,
            direction,
            access,
            protocol,
            source: address_side(
                nsg,
                rule,
                "source",
                self.source_address_prefix.as_deref(),
                &self.source_address_prefixes,
                &self.source_asgs,
            )?,
            destination: address_side(
                nsg,
                rule,
                "destination",
                self.destination_address_prefix.as_deref(),
                &self.destination_address_prefixes,
                &self.destination_asgs,
            )?,
            source_ports: port_side(
                nsg,
                rule,
                "source",
                self.source_port_range.as_deref(),
                &self.source_port_ranges,
            )?,
            destination_ports: port_side(
                nsg,
                rule,
                "destination",
                self.destination_port_range.as_deref(),
                &self.destination_port_ranges,
            )?,
        })
    }
}

/// Azure's default rules (AZURE-FACTS §3), appended after the user's rules;
/// they cover every protocol and port.
pub fn default_rules() -> Vec<TypedRule> {
    let r = |name: &str, priority, direction, src, dst, access| TypedRule {
        name: name.to_string(),
        priority,
        direction,
        access,
        protocol: RuleProtocol::Any,
        source: src,
        destination: dst,
        source_ports: PortMatch::Any,
        destination_ports: PortMatch::Any,
    };
    use AddressMatch::{Any, Tag};
    use Direction::{Inbound, Outbound};
    vec![
        r(
            "AllowVnetInBound",
            65000,
            Inbound,
            Tag(ServiceTag::VirtualNetwork),
            Tag(ServiceTag::VirtualNetwork),
            Access::Allow,
        ),
        r(
            "AllowAzureLoadBalancerInBound",
            65001,
            Inbound,
            Tag(ServiceTag::AzureLoadBalancer),
            Any,
            Access::Allow,
        ),
        r("DenyAllInBound", 65500, Inbound, Any, Any, Access::Deny),
        r(
            "AllowVnetOutBound",
            65000,
            Outbound,
            Tag(ServiceTag::VirtualNetwork),
            Tag(ServiceTag::VirtualNetwork),
            Access::Allow,
        ),
        r(
            "AllowInternetOutBound",
            65001,
            Outbound,
            Any,
            Tag(ServiceTag::Internet),
            Access::Allow,
        ),
        r("DenyAllOutBound", 65500, Outbound, Any, Any, Access::Deny),
    ]
}
