//! Typed view of `Microsoft.Network/privateEndpoints` (AZURE-FACTS §2.5, §6,
//! §7; seed, "Private endpoints"): the subnet, the one connection to a private
//! link resource (`privateLinkServiceConnections`, or
//! `manualPrivateLinkServiceConnections` awaiting approval), an optional
//! static address (`ipConfigurations`), `customNetworkInterfaceName`, and the
//! child `privateEndpoints/privateDnsZoneGroups`, stored in the endpoint's
//! `properties.privateDnsZoneGroups[]` the way subnets live in their VNet.
//!
//! Azure gives every private endpoint a network interface of its own
//! (`<pe>.nic.<guid>`, `properties.privateEndpoint.id`); the lab stores that
//! NIC as a real `Microsoft.Network/networkInterfaces` resource, kept in step
//! by validation, so addresses, subnet usage and views treat it like any NIC.

use std::net::Ipv4Addr;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::props::{self, invalid, Props};
use super::{AzureError, GenericResource, LabState, ResourceId};
use crate::ipam::Allocations;

/// A private link resource type the lab emulates, with one of its group ids
/// (target sub-resources) and the names Azure's DNS gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivateLinkGroup {
    /// The target's resource type, e.g. `Microsoft.Storage/storageAccounts`.
    pub resource_type: &'static str,
    /// `groupIds[0]`, e.g. `blob`.
    pub group_id: &'static str,
    /// `ipConfigurations[].properties.memberName` of the group's one member.
    pub member_name: &'static str,
    /// The zone Azure recommends (AZURE-FACTS §6), e.g. `privatelink.blob.core.windows.net`.
    pub zone: &'static str,
    /// The public names the endpoint serves, `{name}` = the target's name and
    /// `{location}` its region, each with its record name in `zone`:
    /// `(fqdn, record)`.
    pub names: &'static [(&'static str, &'static str)],
    /// The TCP ports an endpoint for this group passes to its target (the
    /// lab's emulated listeners of that sub-resource).
    pub ports: &'static [u16],
}

/// Every (type, group id) a private endpoint can target in the lab. The
/// services behind storage, key vault and registry are emulated by
/// `Microsoft.Storage`, `Microsoft.KeyVault` and `Microsoft.ContainerRegistry`
/// resources; `sites` is an App Service app (slots are not emulated).
pub const PRIVATE_LINK_GROUPS: [PrivateLinkGroup; 5] = [
    PrivateLinkGroup {
        resource_type: "Microsoft.Storage/storageAccounts",
        group_id: "blob",
        member_name: "blob",
        zone: "privatelink.blob.core.windows.net",
        names: &[("{name}.blob.core.windows.net", "{name}")],
        ports: &[80, 443],
    },
    PrivateLinkGroup {
        resource_type: "Microsoft.Storage/storageAccounts",
        group_id: "file",
        member_name: "file",
        zone: "privatelink.file.core.windows.net",
        names: &[("{name}.file.core.windows.net", "{name}")],
        ports: &[445],
    },
    PrivateLinkGroup {
        resource_type: "Microsoft.KeyVault/vaults",
        group_id: "vault",
        member_name: "default",
        zone: "privatelink.vaultcore.azure.net",
        names: &[("{name}.vault.azure.net", "{name}")],
        ports: &[443],
    },
    PrivateLinkGroup {
        resource_type: "Microsoft.ContainerRegistry/registries",
        group_id: "registry",
        member_name: "registry",
        zone: "privatelink.azurecr.io",
        // Azure gives the data endpoint a second address; the lab serves
        // both names from the endpoint's one address.
        names: &[
            ("{name}.azurecr.io", "{name}"),
            (
                "{name}.{location}.data.azurecr.io",
                "{name}.{location}.data",
            ),
        ],
        ports: &[443],
    },
    PrivateLinkGroup {
        resource_type: "Microsoft.Web/sites",
        group_id: "sites",
        member_name: "sites",
        zone: "privatelink.azurewebsites.net",
        names: &[
            ("{name}.azurewebsites.net", "{name}"),
            ("{name}.scm.azurewebsites.net", "{name}.scm"),
        ],
        // The front end's HTTP and HTTPS (lab CA).
        ports: &[80, 443],
    },
];

/// The group ids the lab knows for a target type (case-insensitive), in table order.
pub fn groups_of(resource_type: &str) -> impl Iterator<Item = &'static PrivateLinkGroup> + '_ {
    PRIVATE_LINK_GROUPS
        .iter()
        .filter(move |g| g.resource_type.eq_ignore_ascii_case(resource_type))
}

/// The group of `(type, group id)`, case-insensitively.
pub fn private_link_group(
    resource_type: &str,
    group_id: &str,
) -> Option<&'static PrivateLinkGroup> {
    groups_of(resource_type).find(|g| g.group_id.eq_ignore_ascii_case(group_id))
}

impl PrivateLinkGroup {
    /// `(fqdn, record name in the privatelink zone)` for a target named
    /// `name` in `location`, lower-cased.
    pub fn names_for(&self, name: &str, location: &str) -> Vec<(String, String)> {
        let fill = |p: &str| {
            p.replace("{name}", &name.to_ascii_lowercase())
                .replace("{location}", &location.to_ascii_lowercase())
        };
        self.names.iter().map(|(f, r)| (fill(f), fill(r))).collect()
    }
}

/// `subnets[].properties.privateEndpointNetworkPolicies` (AZURE-FACTS §2.5):
/// whether NSGs and UDRs apply to the private endpoints of a subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrivateEndpointNetworkPolicies {
    /// Azure's default: neither.
    #[default]
    Disabled,
    Enabled,
    NetworkSecurityGroupEnabled,
    RouteTableEnabled,
}

impl PrivateEndpointNetworkPolicies {
    pub const ALL: [PrivateEndpointNetworkPolicies; 4] = [
        PrivateEndpointNetworkPolicies::Disabled,
        PrivateEndpointNetworkPolicies::Enabled,
        PrivateEndpointNetworkPolicies::NetworkSecurityGroupEnabled,
        PrivateEndpointNetworkPolicies::RouteTableEnabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PrivateEndpointNetworkPolicies::Disabled => "Disabled",
            PrivateEndpointNetworkPolicies::Enabled => "Enabled",
            PrivateEndpointNetworkPolicies::NetworkSecurityGroupEnabled => {
                "NetworkSecurityGroupEnabled"
            }
            PrivateEndpointNetworkPolicies::RouteTableEnabled => "RouteTableEnabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// May a user-defined route invalidate the endpoints' /32 routes?
    pub fn route_tables(self) -> bool {
        matches!(
            self,
            PrivateEndpointNetworkPolicies::Enabled
                | PrivateEndpointNetworkPolicies::RouteTableEnabled
        )
    }

    /// Does the subnet's NSG apply to traffic to its endpoints?
    pub fn network_security_groups(self) -> bool {
        matches!(
            self,
            PrivateEndpointNetworkPolicies::Enabled
                | PrivateEndpointNetworkPolicies::NetworkSecurityGroupEnabled
        )
    }

    /// Read a subnet's `properties.privateEndpointNetworkPolicies` (absent = Disabled).
    pub(crate) fn read(
        res: &GenericResource,
        v: Option<&Value>,
        path: &str,
    ) -> Result<Self, AzureError> {
        match props::str_in(res, v, path)? {
            None => Ok(Self::Disabled),
            Some(s) => Self::parse(&s).ok_or_else(|| {
                invalid(
                    res,
                    path,
                    &format!(
                        "is '{s}'; use Disabled, Enabled, NetworkSecurityGroupEnabled or RouteTableEnabled"
                    ),
                )
            }),
        }
    }
}

/// One entry of `privateLinkServiceConnections` or `manualPrivateLinkServiceConnections`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateLinkServiceConnection {
    pub name: String,
    /// `properties.privateLinkServiceId`: the target resource.
    pub target: Option<ResourceId>,
    /// `properties.groupIds`.
    pub group_ids: Vec<String>,
    /// From `manualPrivateLinkServiceConnections`: Pending until the owner approves.
    pub manual: bool,
    /// `properties.requestMessage`.
    pub request_message: Option<String>,
}

/// One entry of `properties.ipConfigurations`: a static address for a member.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateEndpointIpConfiguration {
    pub name: String,
    /// `properties.groupId`.
    pub group_id: Option<String>,
    /// `properties.memberName`.
    pub member_name: Option<String>,
    /// `properties.privateIPAddress`.
    pub address: Ipv4Addr,
}

/// `privateDnsZoneConfigs[]` of a zone group.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateDnsZoneConfig {
    pub name: String,
    /// `properties.privateDnsZoneId`.
    pub zone_id: Option<ResourceId>,
}

/// `Microsoft.Network/privateEndpoints/privateDnsZoneGroups`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateDnsZoneGroup {
    pub id: ResourceId,
    pub name: String,
    pub configs: Vec<PrivateDnsZoneConfig>,
}

/// `Microsoft.Network/privateEndpoints`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateEndpoint {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// `properties.subnet.id`.
    pub subnet_id: ResourceId,
    /// Both connection lists, automatic ones first.
    pub connections: Vec<PrivateLinkServiceConnection>,
    /// `properties.customNetworkInterfaceName` (empty = Azure's `<pe>.nic.<guid>`).
    pub custom_nic_name: Option<String>,
    pub ip_configurations: Vec<PrivateEndpointIpConfiguration>,
    pub zone_groups: Vec<PrivateDnsZoneGroup>,
}

/// A stable GUID derived from `seed` (sha256, in the 8-4-4-4-12 form), so a
/// redeploy names the same NIC.
pub fn stable_guid(seed: &str) -> String {
    let h: String = Sha256::digest(seed.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn required_name(res: &GenericResource, v: &Value, path: &str) -> Result<String, AzureError> {
    props::str_in(res, props::at(v, "name"), &format!("{path}.name"))?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(res, &format!("{path}.name"), "is required"))
}

impl PrivateEndpoint {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let subnet_id = p.opt_id("properties.subnet.id")?.ok_or_else(|| {
            invalid(
                res,
                "properties.subnet.id",
                "is required (the id of the endpoint's subnet)",
            )
        })?;
        let mut connections = Vec::new();
        for (list, manual) in [
            ("properties.privateLinkServiceConnections", false),
            ("properties.manualPrivateLinkServiceConnections", true),
        ] {
            for (i, v) in p.array(list)?.iter().enumerate() {
                let base = format!("{list}[{i}]");
                let at = |k: &str| props::at(v, k);
                let path = |k: &str| format!("{base}.{k}");
                let group_ids =
                    props::array_in(res, at("properties.groupIds"), &path("properties.groupIds"))?
                        .iter()
                        .map(|g| {
                            g.as_str().map(str::to_string).ok_or_else(|| {
                                invalid(
                                    res,
                                    &path("properties.groupIds"),
                                    "must be an array of strings",
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                connections.push(PrivateLinkServiceConnection {
                    name: required_name(res, v, &base)?,
                    target: props::id_in(
                        res,
                        at("properties.privateLinkServiceId"),
                        &path("properties.privateLinkServiceId"),
                    )?,
                    group_ids,
                    manual,
                    request_message: props::str_in(
                        res,
                        at("properties.requestMessage"),
                        &path("properties.requestMessage"),
                    )?,
                });
            }
        }
        let mut ip_configurations = Vec::new();
        for (i, v) in p.array("properties.ipConfigurations")?.iter().enumerate() {
            let base = format!("properties.ipConfigurations[{i}]");
            let at = |k: &str| props::at(v, k);
            let path = |k: &str| format!("{base}.{k}");
            let addr_path = path("properties.privateIPAddress");
            let text = props::str_in(res, at("properties.privateIPAddress"), &addr_path)?
                .ok_or_else(|| {
                    invalid(
                        res,
                        &addr_path,
                        "is required (the static address of the endpoint)",
                    )
                })?;
            let address = text.parse().map_err(|_| {
                invalid(res, &addr_path, &format!("'{text}' is not an IPv4 address"))
            })?;
            ip_configurations.push(PrivateEndpointIpConfiguration {
                name: required_name(res, v, &base)?,
                group_id: props::str_in(
                    res,
                    at("properties.groupId"),
                    &path("properties.groupId"),
                )?,
                member_name: props::str_in(
                    res,
                    at("properties.memberName"),
                    &path("properties.memberName"),
                )?,
                address,
            });
        }
        let mut zone_groups = Vec::new();
        for (i, v) in p
            .array("properties.privateDnsZoneGroups")?
            .iter()
            .enumerate()
        {
            let base = format!("properties.privateDnsZoneGroups[{i}]");
            let name = required_name(res, v, &base)?;
            let list = format!("{base}.properties.privateDnsZoneConfigs");
            let mut configs = Vec::new();
            for (j, c) in
                props::array_in(res, props::at(v, "properties.privateDnsZoneConfigs"), &list)?
                    .iter()
                    .enumerate()
            {
                let cbase = format!("{list}[{j}]");
                let zone_id = props::id_in(
                    res,
                    props::at(c, "properties.privateDnsZoneId"),
                    &format!("{cbase}.properties.privateDnsZoneId"),
                )?;
                // az names a config after the zone when none is given.
                let name = props::str_in(res, props::at(c, "name"), &format!("{cbase}.name"))?
                    .filter(|n| !n.is_empty())
                    .or_else(|| zone_id.as_ref().map(|z| z.name().replace('.', "-")))
                    .ok_or_else(|| invalid(res, &format!("{cbase}.name"), "is required"))?;
                configs.push(PrivateDnsZoneConfig { name, zone_id });
            }
            zone_groups.push(PrivateDnsZoneGroup {
                id: res.id.child("privateDnsZoneGroups", &name),
                name,
                configs,
            });
        }
        Ok(PrivateEndpoint {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            subnet_id,
            connections,
            custom_nic_name: p
                .opt_str("properties.customNetworkInterfaceName")?
                .filter(|n| !n.is_empty()),
            ip_configurations,
            zone_groups,
        })
    }

    /// `properties.resourceGuid`: stable for the endpoint's id.
    pub fn resource_guid(&self) -> String {
        stable_guid(&self.id.key())
    }

    /// The endpoint's NIC: `customNetworkInterfaceName`, else Azure's
    /// `<pe>.nic.<guid>`, in the endpoint's resource group.
    pub fn nic_id(&self) -> ResourceId {
        let name = self.custom_nic_name.clone().unwrap_or_else(|| {
            format!(
                "{}.nic.{}",
                self.name,
                stable_guid(&format!("{}/nic", self.id.key()))
            )
        });
        ResourceId::new(
            &self.id.subscription,
            &self.id.resource_group,
            "Microsoft.Network",
            "networkInterfaces",
            &name,
        )
    }

    /// The name of the NIC's one IP configuration: the static one's, else
    /// Azure's `privateEndpointIpConfig.<guid>`.
    pub fn nic_ip_configuration(&self) -> String {
        self.ip_configurations.first().map_or_else(
            || {
                format!(
                    "privateEndpointIpConfig.{}",
                    stable_guid(&format!("{}/ipconfig", self.id.key()))
                )
            },
            |c| c.name.clone(),
        )
    }

    /// The ipam key of the endpoint's address.
    pub fn address_key(&self) -> String {
        self.nic_id()
            .child("ipConfigurations", &self.nic_ip_configuration())
            .key()
    }

    /// The endpoint's private address, once allocated.
    pub fn address(&self, a: &Allocations) -> Option<Ipv4Addr> {
        a.nic_addresses.get(&self.address_key()).copied()
    }

    /// The one connection (validation refuses more or fewer).
    pub fn connection(&self) -> Option<&PrivateLinkServiceConnection> {
        self.connections.first()
    }

    /// The target's group, when the connection names a known (type, group id).
    pub fn group(&self) -> Option<&'static PrivateLinkGroup> {
        let c = self.connection()?;
        private_link_group(&c.target.as_ref()?.full_type(), c.group_ids.first()?)
    }

    /// The region of the target (a registry's data endpoint is named after
    /// it); the endpoint's own when the target is gone.
    pub fn target_location(&self, state: &LabState) -> String {
        self.connection()
            .and_then(|c| state.get(c.target.as_ref()?))
            .and_then(|t| t.location.clone())
            .unwrap_or_else(|| self.location.clone())
    }

    /// `(public fqdn, record name in the privatelink zone)` of every name the
    /// endpoint serves (`customDnsConfigs`, the NIC's fqdns, the records of
    /// its zone groups); none when its connection names no known group.
    pub fn names(&self, state: &LabState) -> Vec<(String, String)> {
        match (
            self.group(),
            self.connection().and_then(|c| c.target.as_ref()),
        ) {
            (Some(g), Some(t)) => g.names_for(t.name(), &self.target_location(state)),
            _ => Vec::new(),
        }
    }

    /// The NIC resource Azure creates with the endpoint, as the lab stores it.
    pub fn nic_resource(&self, state: &LabState) -> GenericResource {
        let mut cfg = json!({
            "subnet": { "id": self.subnet_id.to_string() },
            "primary": true,
            "privateIPAddressVersion": "IPv4",
        });
        match self.ip_configurations.first() {
            Some(c) => {
                cfg["privateIPAllocationMethod"] = json!("Static");
                cfg["privateIPAddress"] = json!(c.address.to_string());
            }
            None => cfg["privateIPAllocationMethod"] = json!("Dynamic"),
        }
        if let Some(g) = self.group() {
            cfg["privateLinkConnectionProperties"] = json!({
                "groupId": g.group_id,
                "requiredMemberName": g.member_name,
                "fqdns": self.names(state).into_iter().map(|(f, _)| f).collect::<Vec<_>>(),
            });
        }
        let nic = self.nic_id();
        GenericResource {
            type_: "Microsoft.Network/networkInterfaces".into(),
            name: nic.name().to_string(),
            id: nic,
            location: Some(self.location.clone()),
            kind: None,
            sku: None,
            properties: json!({
                "ipConfigurations": [{ "name": self.nic_ip_configuration(), "properties": cfg }],
                "privateEndpoint": { "id": self.id.to_string() },
                "nicType": "Standard",
                "enableIPForwarding": false,
            }),
            tags: None,
            identity: None,
        }
    }
}

/// `privateLinkServiceConnectionState.status` (seed and Azure's private
/// endpoint overview: only an Approved endpoint sends traffic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// An automatic connection to a target of the lab (the lab owner may
    /// approve anything, so every automatic request is auto-approved).
    Approved,
    /// A manual connection, waiting for the target's owner.
    Pending,
    /// The target was deleted after the endpoint was created.
    Disconnected,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Approved => "Approved",
            ConnectionStatus::Pending => "Pending",
            ConnectionStatus::Disconnected => "Disconnected",
        }
    }
}

/// The state of `pe`'s connection in `state`.
pub fn connection_status(state: &LabState, pe: &PrivateEndpoint) -> ConnectionStatus {
    match pe.connection() {
        Some(c) if c.target.as_ref().and_then(|t| state.get(t)).is_none() => {
            ConnectionStatus::Disconnected
        }
        Some(c) if c.manual => ConnectionStatus::Pending,
        Some(_) => ConnectionStatus::Approved,
        None => ConnectionStatus::Disconnected,
    }
}
