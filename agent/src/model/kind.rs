//! The resource types the lab understands, with ARM's canonical spelling.

use super::AzureError;

/// A resource type the lab can deploy. ARM compares types case-insensitively;
/// [`ResourceKind::canonical`] is the spelling the lab stores and shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    /// `Microsoft.Network/virtualNetworks` (subnets live in its properties).
    VirtualNetwork,
    /// `Microsoft.Web/serverfarms`: an App Service plan.
    ServerFarm,
    /// `Microsoft.Web/sites`: a web app or function app.
    Site,
    /// `Microsoft.Network/networkInterfaces`.
    NetworkInterface,
    /// `Microsoft.Compute/virtualMachines`.
    VirtualMachine,
    /// `Lab.Emulator/internetHosts`: a public test host of the lab (no Azure twin).
    InternetHost,
    /// `Microsoft.Network/networkSecurityGroups`.
    NetworkSecurityGroup,
    /// `Microsoft.Network/applicationSecurityGroups`.
    ApplicationSecurityGroup,
    /// `Microsoft.Network/routeTables`: user-defined routes for subnets.
    RouteTable,
    /// `Microsoft.Network/natGateways`.
    NatGateway,
    /// `Microsoft.Network/publicIPAddresses`.
    PublicIpAddress,
    /// `Microsoft.Network/publicIPPrefixes`.
    PublicIpPrefix,
    /// `Microsoft.Network/privateDnsZones` (record sets and virtual network
    /// links live in its properties).
    PrivateDnsZone,
    /// `Microsoft.Network/privateEndpoints` (zone groups live in its properties).
    PrivateEndpoint,
    /// `Microsoft.Storage/storageAccounts` (emulated: blob and file endpoints).
    StorageAccount,
    /// `Microsoft.KeyVault/vaults` (emulated: secrets).
    KeyVault,
    /// `Microsoft.ContainerRegistry/registries` (emulated: manifests).
    ContainerRegistry,
    /// `Microsoft.Network/virtualNetworkGateways`: VPN and ExpressRoute gateways.
    VirtualNetworkGateway,
    /// `Microsoft.Network/localNetworkGateways`: an on-premises VPN device.
    LocalNetworkGateway,
    /// `Microsoft.Network/connections`: IPsec, Vnet2Vnet and ExpressRoute.
    Connection,
    /// `Microsoft.Network/expressRouteCircuits` (private peering inline).
    ExpressRouteCircuit,
    /// `Lab.Emulator/onPremisesHosts`: a host in an on-premises site (no Azure twin).
    OnPremisesHost,
}

impl ResourceKind {
    /// Every kind, in the order validation reports them.
    pub const ALL: [ResourceKind; 22] = [
        ResourceKind::VirtualNetwork,
        ResourceKind::ServerFarm,
        ResourceKind::Site,
        ResourceKind::NetworkInterface,
        ResourceKind::VirtualMachine,
        ResourceKind::InternetHost,
        ResourceKind::NetworkSecurityGroup,
        ResourceKind::ApplicationSecurityGroup,
        ResourceKind::RouteTable,
        ResourceKind::NatGateway,
        ResourceKind::PublicIpAddress,
        ResourceKind::PublicIpPrefix,
        ResourceKind::PrivateDnsZone,
        ResourceKind::PrivateEndpoint,
        ResourceKind::StorageAccount,
        ResourceKind::KeyVault,
        ResourceKind::ContainerRegistry,
        ResourceKind::VirtualNetworkGateway,
        ResourceKind::LocalNetworkGateway,
        ResourceKind::Connection,
        ResourceKind::ExpressRouteCircuit,
        ResourceKind::OnPremisesHost,
    ];

    /// ARM's spelling of the type, e.g. `Microsoft.Web/serverfarms`.
    pub fn canonical(self) -> &'static str {
        match self {
            ResourceKind::VirtualNetwork => "Microsoft.Network/virtualNetworks",
            ResourceKind::ServerFarm => "Microsoft.Web/serverfarms",
            ResourceKind::Site => "Microsoft.Web/sites",
            ResourceKind::NetworkInterface => "Microsoft.Network/networkInterfaces",
            ResourceKind::VirtualMachine => "Microsoft.Compute/virtualMachines",
            ResourceKind::InternetHost => "Lab.Emulator/internetHosts",
            ResourceKind::NetworkSecurityGroup => "Microsoft.Network/networkSecurityGroups",
            ResourceKind::ApplicationSecurityGroup => "Microsoft.Network/applicationSecurityGroups",
            ResourceKind::RouteTable => "Microsoft.Network/routeTables",
            ResourceKind::NatGateway => "Microsoft.Network/natGateways",
            ResourceKind::PublicIpAddress => "Microsoft.Network/publicIPAddresses",
            ResourceKind::PublicIpPrefix => "Microsoft.Network/publicIPPrefixes",
            ResourceKind::PrivateDnsZone => "Microsoft.Network/privateDnsZones",
            ResourceKind::PrivateEndpoint => "Microsoft.Network/privateEndpoints",
            ResourceKind::StorageAccount => "Microsoft.Storage/storageAccounts",
            ResourceKind::KeyVault => "Microsoft.KeyVault/vaults",
            ResourceKind::ContainerRegistry => "Microsoft.ContainerRegistry/registries",
            ResourceKind::VirtualNetworkGateway => "Microsoft.Network/virtualNetworkGateways",
            ResourceKind::LocalNetworkGateway => "Microsoft.Network/localNetworkGateways",
            ResourceKind::Connection => "Microsoft.Network/connections",
            ResourceKind::ExpressRouteCircuit => "Microsoft.Network/expressRouteCircuits",
            ResourceKind::OnPremisesHost => "Lab.Emulator/onPremisesHosts",
        }
    }

    /// The kind of a top-level type, case-insensitively.
    pub fn from_type(type_: &str) -> Option<ResourceKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.canonical().eq_ignore_ascii_case(type_))
    }

    /// Like [`ResourceKind::from_type`], with ARM's error for an unknown type.
    pub fn require(type_: &str, name: &str) -> Result<ResourceKind, AzureError> {
        Self::from_type(type_).ok_or_else(|| unsupported_type(type_, name))
    }
}

/// `NoRegisteredProviderFound`: the lab has no emulation for this type.
pub(crate) fn unsupported_type(type_: &str, name: &str) -> AzureError {
    let mut known: Vec<&str> = ResourceKind::ALL.iter().map(|k| k.canonical()).collect();
    known.push(super::CLASSIC_VNET_TYPE);
    AzureError::bad_request(
        "NoRegisteredProviderFound",
        format!(
            "Resource '{name}' has type '{type_}', which the lab emulator does not support. \
             Supported types: {}, and the child types Microsoft.Network/virtualNetworks/subnets, \
             Microsoft.Web/sites/config (web, appsettings), Microsoft.Web/sites/networkConfig \
             (virtualNetwork), Microsoft.Network/privateDnsZones/{{A,AAAA,CNAME,TXT}}, \
             Microsoft.Network/privateDnsZones/virtualNetworkLinks, \
             Microsoft.Network/privateEndpoints/privateDnsZoneGroups, \
             Microsoft.KeyVault/vaults/secrets and Microsoft.Compute/virtualMachines/extensions \
             (CustomScript). Remove the resource or deploy it to real Azure.",
            known.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_case_insensitive() {
        assert_eq!(
            ResourceKind::from_type("microsoft.web/serverFarms"),
            Some(ResourceKind::ServerFarm)
        );
        let e = ResourceKind::require("Microsoft.Sql/servers", "db1").unwrap_err();
        assert_eq!(e.code, "NoRegisteredProviderFound");
        assert!(e.message.contains("db1") && e.message.contains("Microsoft.Sql/servers"));
    }
}
