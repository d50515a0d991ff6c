//! Desired state: ARM-shaped resources, ids, and the lab's configuration.

pub mod access_restriction;
mod authz;
mod compute;
mod dns;
mod error;
mod gateway;
mod host;
mod id;
mod inventory;
mod kind;
mod network;
mod nsg;
mod private_endpoint;
mod props;
pub mod record;
mod routing;
mod services;
mod web;

pub use authz::{Authorization, RoleAssignment, RoleDefinition};
pub use compute::{VirtualMachine, VmExtension, CUSTOM_SCRIPT_PUBLISHER, CUSTOM_SCRIPT_TYPE};
pub use dns::{
    canonical_name, valid_dns_name, valid_label, PrivateDnsZone, RecordData, RecordSet, RecordType,
    VirtualNetworkLink, DEFAULT_RECORD_TTL, GLOBAL_LOCATION,
};
pub use error::AzureError;
pub use gateway::{
    BgpPeer, Connection, ConnectionPeer, ConnectionType, ExpressRouteCircuit, GatewayType,
    LearnedRoute, LocalNetworkGateway, OnPremisesHost, PrivatePeering, VirtualNetworkGateway,
    AZURE_GATEWAY_ASN, MIN_GATEWAY_SUBNET_PREFIX, MIN_VPN_GATEWAY_SUBNET_PREFIX, MSEE_ASN,
    RESERVED_ASNS,
};
pub use host::{internet_host_address_problem, InternetHost, INTERNET_HOST_DOMAIN, LAB_PUBLIC_DNS};
pub use id::ResourceId;
pub use inventory::Inventory;
pub(crate) use kind::unsupported_type as kind_unsupported;
pub use kind::ResourceKind;
pub use network::{
    Delegation, IpAllocationMethod, IpConfiguration, NetworkInterface, Peering,
    ServiceAssociationLink, Subnet, VirtualNetwork, APP_SERVICE_LINK, CLASSIC_VNET_TYPE,
    GATEWAY_SUBNET, MAX_VNET_DNS_SERVERS, SERVER_FARMS_DELEGATION,
};
pub use nsg::{
    default_rules, Access, AddressMatch, ApplicationSecurityGroup, Direction, NetworkSecurityGroup,
    PortMatch, RuleProtocol, SecurityRule, ServiceTag, TypedRule, AZURE_PLATFORM_IP,
    MAX_RULE_NAME_LEN, MAX_RULE_PRIORITY, MIN_RULE_PRIORITY, SERVICE_TAGS,
};
pub use private_endpoint::{
    connection_status, groups_of, private_link_group, stable_guid, ConnectionStatus,
    PrivateDnsZoneConfig, PrivateDnsZoneGroup, PrivateEndpoint, PrivateEndpointIpConfiguration,
    PrivateEndpointNetworkPolicies, PrivateLinkGroup, PrivateLinkServiceConnection,
    PRIVATE_LINK_GROUPS,
};
pub use routing::{
    NatGateway, NextHopType, PublicIpAddress, PublicIpPrefix, PublicSku, Route, RouteTable,
    SubscriptionSettings, DEFAULT_IDLE_TIMEOUT_MINUTES,
};
pub use services::{
    DefaultAction, Endpoint, Image, NetworkRules, PaasService, PublicNetworkAccess, Secret,
    ServiceEndpoint, ServiceKind, VirtualNetworkRule, SERVICE_ENDPOINT_SERVICES,
};
pub use web::{
    DeploymentGeneration, ServerFarm, Site, StorageMount, StorageMountKind, TierClass,
    DEPLOYMENT_GENERATION_PROPERTY, MAX_APP_DNS_SERVERS, WEBSITE_DNS_ALT_SERVER,
    WEBSITE_DNS_SERVER,
};

/// Region of a resource that names none. ARM templates usually write
/// `[resourceGroup().location]`; the lab has no resource-group objects, so a
/// missing `location` means this region.
pub const DEFAULT_LOCATION: &str = "westeurope";
/// The lab's one Entra tenant (what `tenant()` and identities answer).
pub const LAB_TENANT_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The lab's owner principal: implicitly Owner at the root scope `/` (seed,
/// "Permissions"), and the principal of requests that name none.
pub const LAB_OWNER: &str = "owner";

/// Azure's canonical form of a region name: `West Europe` -> `westeurope`.
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::ipam::Allocations;

/// One resource as ARM stores it: `type`, `name`, `location`, `kind`, `sku`,
/// `properties` (kept as JSON so `show` returns what the user wrote plus what
/// the platform computed). Typed views over `properties` live in `model::*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenericResource {
    pub id: ResourceId,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<serde_json::Value>,
    #[serde(default)]
    pub properties: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<serde_json::Value>,
    /// `identity` (managed identity, e.g. `{"type": "SystemAssigned"}`): a
    /// site needs one to resolve Key Vault references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<serde_json::Value>,
}

/// Everything the lab holds: resources by lower-cased id, plus the addresses
/// handed out for them. This is what the store persists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LabState {
    pub resources: BTreeMap<String, GenericResource>,
    pub allocations: Allocations,
    /// Bumped on every committed change.
    pub generation: u64,
    /// Principals, custom roles and role assignments (seed, "Permissions").
    #[serde(default)]
    pub authorization: Authorization,
    /// Resource providers registered per subscription:
    /// subscription -> namespaces (e.g. `Microsoft.Web`), lower-cased keys.
    #[serde(default)]
    pub registered_providers: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Per-subscription settings (lower-cased subscription id), e.g. whether
    /// outbound SMTP may leave its virtual networks. Absent = the default
    /// (pay-as-you-go: SMTP blocked).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subscription_settings: BTreeMap<String, SubscriptionSettings>,
    /// What each BGP-speaking gateway's daemon learned, by lower-cased
    /// gateway id: observed from the running speakers, never stored. The
    /// plan routes it like desired state, so a prefix announced on-premises
    /// reaches the subnets without a request (docs/datapath.md, "Gateways").
    #[serde(skip)]
    pub learned_routes: BTreeMap<String, Vec<LearnedRoute>>,
}

impl LabState {
    /// The stored resource with this id, if any.
    pub fn get(&self, id: &ResourceId) -> Option<&GenericResource> {
        self.resources.get(&id.key())
    }

    /// The settings of `subscription` (case-insensitive), default if none were set.
    pub fn subscription(&self, subscription: &str) -> SubscriptionSettings {
        self.subscription_settings
            .get(&subscription.to_ascii_lowercase())
            .copied()
            .unwrap_or_default()
    }
}

/// Settings of one lab (one daemon).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabConfig {
    /// Prefix of every namespace name (`<lab>-<kind>-...`). Short: namespace and
    /// link names are derived from it.
    pub name: String,
    /// The lab's public address space: outbound IPs, default outbound IPs and
    /// internet hosts come from here.
    pub public_pool: Ipv4Net,
    /// Outbound IPs given to each App Service plan (shown in `outboundIpAddresses`).
    pub outbound_ips_per_plan: u32,
    /// Seconds an App Service address released by a scale, a platform upgrade
    /// or a disconnect waits before it is handed out again (seed, "Subnet
    /// requirements": "there might be a short period of time before IP
    /// addresses are released").
    #[serde(default = "default_address_cooldown_secs")]
    pub address_cooldown_secs: u64,
    /// SNAT ports the stamp gives each plan instance on its outbound IP (a
    /// distinct range per instance sharing an IP). Azure preallocates 128
    /// SNAT ports per App Service instance: more than that many concurrent
    /// connections from one instance to one destination IP and port fail on
    /// the stamp path (not through a NAT gateway, 64,512 ports per IP).
    #[serde(default = "default_snat_ports_per_instance")]
    pub snat_ports_per_instance: u32,
}

/// Default of [`LabConfig::snat_ports_per_instance`]: Azure's preallocation
/// of 128 SNAT ports per App Service instance.
pub const DEFAULT_SNAT_PORTS_PER_INSTANCE: u32 = 128;

fn default_snat_ports_per_instance() -> u32 {
    DEFAULT_SNAT_PORTS_PER_INSTANCE
}

/// Default of [`LabConfig::address_cooldown_secs`]: five minutes.
pub const DEFAULT_ADDRESS_COOLDOWN_SECS: u64 = 300;

fn default_address_cooldown_secs() -> u64 {
    DEFAULT_ADDRESS_COOLDOWN_SECS
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            name: "vl".into(),
            public_pool: "198.18.0.0/15".parse().expect("valid constant"),
            outbound_ips_per_plan: 2,
            address_cooldown_secs: DEFAULT_ADDRESS_COOLDOWN_SECS,
            snat_ports_per_instance: DEFAULT_SNAT_PORTS_PER_INSTANCE,
        }
    }
}
