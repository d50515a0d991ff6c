//! Typed views of the emulated Azure services (PaaS): storage accounts, key
//! vaults and container registries, with their network controls
//! (`publicNetworkAccess`, `networkAcls` / `networkRuleSet`). Seed, "Service
//! endpoints" and "Private endpoints"; AZURE-FACTS §7; the contract in
//! notes/service-api.md.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use super::props::{self, invalid, Props};
use super::{AzureError, GenericResource, ResourceId};

/// Which emulated service a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKind {
    /// `Microsoft.Storage/storageAccounts`: blob (HTTP 80, HTTPS 443) and file (SMB 445).
    Storage,
    /// `Microsoft.KeyVault/vaults`: secrets over HTTPS 443.
    KeyVault,
    /// `Microsoft.ContainerRegistry/registries`: manifests over HTTPS 443.
    ContainerRegistry,
}

/// One public endpoint of a service: `NAME.<zone>` CNAMEs to
/// `NAME.<privatelink zone>` (AZURE-FACTS §6), which holds the public A record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// `blob`, `file`, `vault`, `registry`: the `endpoint` field of the wire answers.
    pub name: &'static str,
    /// e.g. `blob.core.windows.net`.
    pub zone: &'static str,
    /// e.g. `privatelink.blob.core.windows.net`.
    pub privatelink_zone: &'static str,
}

impl Endpoint {
    /// `NAME.<zone>`, lower-cased.
    pub fn host(&self, name: &str) -> String {
        format!("{}.{}", name.to_ascii_lowercase(), self.zone)
    }
    /// `NAME.<privatelink zone>`, lower-cased.
    pub fn privatelink_host(&self, name: &str) -> String {
        format!("{}.{}", name.to_ascii_lowercase(), self.privatelink_zone)
    }
}

const BLOB: Endpoint = Endpoint {
    name: "blob",
    zone: "blob.core.windows.net",
    privatelink_zone: "privatelink.blob.core.windows.net",
};
const FILE: Endpoint = Endpoint {
    name: "file",
    zone: "file.core.windows.net",
    privatelink_zone: "privatelink.file.core.windows.net",
};
const VAULT: Endpoint = Endpoint {
    name: "vault",
    zone: "vault.azure.net",
    privatelink_zone: "privatelink.vaultcore.azure.net",
};
const REGISTRY: Endpoint = Endpoint {
    name: "registry",
    zone: "azurecr.io",
    privatelink_zone: "privatelink.azurecr.io",
};

impl ServiceKind {
    pub const ALL: [ServiceKind; 3] = [
        ServiceKind::Storage,
        ServiceKind::KeyVault,
        ServiceKind::ContainerRegistry,
    ];

    /// ARM's type.
    pub fn resource_type(self) -> &'static str {
        match self {
            ServiceKind::Storage => "Microsoft.Storage/storageAccounts",
            ServiceKind::KeyVault => "Microsoft.KeyVault/vaults",
            ServiceKind::ContainerRegistry => "Microsoft.ContainerRegistry/registries",
        }
    }

    /// The `service` of a subnet's `serviceEndpoints[]` entry that reaches it.
    pub fn endpoint_service(self) -> &'static str {
        match self {
            ServiceKind::Storage => "Microsoft.Storage",
            ServiceKind::KeyVault => "Microsoft.KeyVault",
            ServiceKind::ContainerRegistry => "Microsoft.ContainerRegistry",
        }
    }

    /// The service tag of its public addresses (AZURE-FACTS §3).
    pub fn service_tag(self) -> &'static str {
        match self {
            ServiceKind::Storage => "Storage",
            ServiceKind::KeyVault => "AzureKeyVault",
            ServiceKind::ContainerRegistry => "AzureContainerRegistry",
        }
    }

    /// Its public endpoints (DNS names), in the order views list them.
    pub fn endpoints(self) -> &'static [Endpoint] {
        match self {
            ServiceKind::Storage => &[BLOB, FILE],
            ServiceKind::KeyVault => &[VAULT],
            ServiceKind::ContainerRegistry => &[REGISTRY],
        }
    }

    /// The kind whose service-endpoint name is `service` (case-insensitive).
    pub fn from_endpoint_service(service: &str) -> Option<ServiceKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.endpoint_service().eq_ignore_ascii_case(service))
    }

    /// The kind of ARM type `type_` (case-insensitive).
    pub fn from_type(type_: &str) -> Option<ServiceKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.resource_type().eq_ignore_ascii_case(type_))
    }
}

/// `properties.publicNetworkAccess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicNetworkAccess {
    Enabled,
    /// Refuses public and service-endpoint traffic; only private endpoints get in.
    Disabled,
}

/// `defaultAction` of the network rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Allow,
    Deny,
}

/// The firewall of a service: storage and key vault `networkAcls`, a
/// registry's `networkRuleSet` (which has no virtual network rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub default_action: DefaultAction,
    /// `bypass` as written (`AzureServices`, `Logging, Metrics`, `None`): the
    /// lab has no trusted Azure services, so it decides nothing here.
    pub bypass: Option<String>,
    /// `ipRules[].value`: public addresses or ranges that are admitted.
    pub ip_rules: Vec<Ipv4Net>,
    /// `virtualNetworkRules[].id`: subnets whose service-endpoint traffic is admitted.
    pub virtual_network_rules: Vec<VirtualNetworkRule>,
}

/// `virtualNetworkRules[]` of a storage account or key vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualNetworkRule {
    pub subnet: ResourceId,
    /// `ignoreMissingVnetServiceEndpoint`: accept the rule although the subnet
    /// has no service endpoint for the service (yet).
    pub ignore_missing_endpoint: bool,
}

impl Default for NetworkRules {
    fn default() -> Self {
        NetworkRules {
            default_action: DefaultAction::Allow,
            bypass: None,
            ip_rules: Vec::new(),
            virtual_network_rules: Vec::new(),
        }
    }
}

/// A key vault secret (`Microsoft.KeyVault/vaults/secrets`, kept by the lab in
/// the vault's `properties.secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub value: String,
}

impl Secret {
    /// The secret's version: 32 hex characters, stable for its value (Azure
    /// makes a new version for every write; the lab for every new value).
    pub fn version(&self) -> String {
        crate::plan::names::sha256_hex(&format!("{}\n{}", self.name, self.value))[..32].to_string()
    }
}

/// An image of a registry, declared by the lab: `properties.lab.images`
/// (`"repo:tag"`), an emulator-only extension (no Azure twin: real registries
/// get images pushed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub repository: String,
    pub tag: String,
}

/// One emulated service resource.
#[derive(Debug, Clone, PartialEq)]
pub struct PaasService {
    pub id: ResourceId,
    pub name: String,
    pub kind: ServiceKind,
    pub location: String,
    pub public_network_access: PublicNetworkAccess,
    pub rules: NetworkRules,
    /// Key vault secrets.
    pub secrets: Vec<Secret>,
    /// Registry images.
    pub images: Vec<Image>,
}

fn parse_enum<T: Copy>(
    res: &GenericResource,
    p: &Props,
    path: &str,
    options: &[(&str, T)],
    default: T,
) -> Result<T, AzureError> {
    match p.opt_str(path)? {
        None => Ok(default),
        Some(s) => options
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&s))
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                invalid(
                    res,
                    path,
                    &format!("is '{s}'; use one of {}", names.join(", ")),
                )
            }),
    }
}

/// An `ipRules[].value`: an IPv4 address or CIDR range.
fn parse_ip_rule(res: &GenericResource, path: &str, s: &str) -> Result<Ipv4Net, AzureError> {
    s.parse::<Ipv4Addr>()
        .map(|a| Ipv4Net::new(a, 32).expect("/32"))
        .or_else(|_| s.parse::<Ipv4Net>())
        .map_err(|_| {
            AzureError::bad_request(
                "NetworkAclsValidationFailure",
                format!(
                    "Validation of network acls failure: {}: '{s}' at '{path}' is not an IPv4 address or CIDR range \
                     (e.g. 198.51.100.7 or 198.51.100.0/24).",
                    props::label(res)
                ),
            )
            .with_target(path.to_string())
        })
}

impl PaasService {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let kind = ServiceKind::from_type(&res.type_)
            .ok_or_else(|| crate::model::kind_unsupported(&res.type_, &res.name))?;
        let p = Props::new(res);
        let public_network_access = parse_enum(
            res,
            &p,
            "properties.publicNetworkAccess",
            &[
                ("Enabled", PublicNetworkAccess::Enabled),
                ("Disabled", PublicNetworkAccess::Disabled),
            ],
            PublicNetworkAccess::Enabled,
        )?;
        let base = match kind {
            ServiceKind::ContainerRegistry => "properties.networkRuleSet",
            _ => "properties.networkAcls",
        };
        let mut rules = NetworkRules {
            default_action: parse_enum(
                res,
                &p,
                &format!("{base}.defaultAction"),
                &[
                    ("Allow", DefaultAction::Allow),
                    ("Deny", DefaultAction::Deny),
                ],
                DefaultAction::Allow,
            )?,
            bypass: p.opt_str(&format!("{base}.bypass"))?,
            ..Default::default()
        };
        let ip_path = format!("{base}.ipRules");
        for (i, r) in p.array(&ip_path)?.iter().enumerate() {
            let at = format!("{ip_path}[{i}].value");
            let v = props::str_in(res, props::at(r, "value"), &at)?
                .ok_or_else(|| invalid(res, &at, "is required (an IPv4 address or range)"))?;
            // Only `Allow` exists (ACR writes it, storage may).
            if let Some(a) = props::str_in(
                res,
                props::at(r, "action"),
                &format!("{ip_path}[{i}].action"),
            )? {
                if !a.eq_ignore_ascii_case("Allow") {
                    return Err(invalid(
                        res,
                        &format!("{ip_path}[{i}].action"),
                        &format!("is '{a}'; the only action is Allow"),
                    ));
                }
            }
            rules.ip_rules.push(parse_ip_rule(res, &at, v.trim())?);
        }
        if kind != ServiceKind::ContainerRegistry {
            let vnet_path = format!("{base}.virtualNetworkRules");
            for (i, r) in p.array(&vnet_path)?.iter().enumerate() {
                let at = format!("{vnet_path}[{i}].id");
                let subnet = props::id_in(res, props::at(r, "id"), &at)?
                    .ok_or_else(|| invalid(res, &at, "is required (the id of a subnet)"))?;
                let ignore_missing_endpoint = props::bool_in(
                    res,
                    props::at(r, "ignoreMissingVnetServiceEndpoint"),
                    &format!("{vnet_path}[{i}].ignoreMissingVnetServiceEndpoint"),
                )?
                .unwrap_or(false);
                rules.virtual_network_rules.push(VirtualNetworkRule {
                    subnet,
                    ignore_missing_endpoint,
                });
            }
        }
        let mut secrets = Vec::new();
        for (i, s) in p.array("properties.secrets")?.iter().enumerate() {
            let at = format!("properties.secrets[{i}]");
            let name = props::str_in(res, props::at(s, "name"), &format!("{at}.name"))?
                .ok_or_else(|| invalid(res, &format!("{at}.name"), "is required"))?;
            let value = props::str_in(
                res,
                props::at(s, "properties.value"),
                &format!("{at}.properties.value"),
            )?
            .unwrap_or_default();
            secrets.push(Secret { name, value });
        }
        let mut images = Vec::new();
        for (i, v) in p.array("properties.lab.images")?.iter().enumerate() {
            let at = format!("properties.lab.images[{i}]");
            let s = props::str_in(res, Some(v), &at)?.unwrap_or_default();
            let (repository, tag) = match s.rsplit_once(':') {
                Some((r, t)) if !r.is_empty() && !t.is_empty() && !t.contains('/') => (r, t),
                None if !s.is_empty() => (s.as_str(), "latest"),
                _ => {
                    return Err(invalid(
                        res,
                        &at,
                        &format!("is '{s}'; write 'repository:tag'"),
                    ))
                }
            };
            images.push(Image {
                repository: repository.to_string(),
                tag: tag.to_string(),
            });
        }
        Ok(PaasService {
            id: res.id.clone(),
            name: res.name.clone(),
            kind,
            location: res.location.clone().unwrap_or_default(),
            public_network_access,
            rules,
            secrets,
            images,
        })
    }

    /// Every DNS name the service answers to (its certificate's names):
    /// public and privatelink names of each endpoint.
    pub fn host_names(&self) -> Vec<String> {
        self.kind
            .endpoints()
            .iter()
            .flat_map(|e| [e.host(&self.name), e.privatelink_host(&self.name)])
            .collect()
    }
}

/// `properties.serviceEndpoints[]` of a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEndpoint {
    /// As written, e.g. `Microsoft.Storage`.
    pub service: String,
    /// `locations` (normalised); empty or `*` = every region.
    pub locations: Vec<String>,
}

impl ServiceEndpoint {
    /// Does this endpoint reach `kind` in `location`?
    pub fn reaches(&self, kind: ServiceKind, location: &str) -> bool {
        self.service.eq_ignore_ascii_case(kind.endpoint_service())
            && (self.locations.is_empty()
                || self
                    .locations
                    .iter()
                    .any(|l| l == "*" || l.eq_ignore_ascii_case(location)))
    }
}

/// Service names Azure accepts in `serviceEndpoints[].service` (AZURE-FACTS §7).
pub const SERVICE_ENDPOINT_SERVICES: [&str; 10] = [
    "Microsoft.Storage",
    "Microsoft.Storage.Global",
    "Microsoft.Sql",
    "Microsoft.AzureCosmosDB",
    "Microsoft.KeyVault",
    "Microsoft.ServiceBus",
    "Microsoft.EventHub",
    "Microsoft.Web",
    "Microsoft.CognitiveServices",
    "Microsoft.ContainerRegistry",
];

/// Read `serviceEndpoints` of one subnet JSON (`base` names it in errors).
pub(crate) fn parse_service_endpoints(
    res: &GenericResource,
    v: &Value,
    base: &str,
) -> Result<Vec<ServiceEndpoint>, AzureError> {
    let path = format!("{base}.properties.serviceEndpoints");
    let mut out = Vec::new();
    for (i, e) in props::array_in(res, props::at(v, "properties.serviceEndpoints"), &path)?
        .iter()
        .enumerate()
    {
        let at = format!("{path}[{i}]");
        let service = props::str_in(res, props::at(e, "service"), &format!("{at}.service"))?
            .ok_or_else(|| {
                invalid(
                    res,
                    &format!("{at}.service"),
                    "is required (e.g. Microsoft.Storage)",
                )
            })?;
        let mut locations = Vec::new();
        for (j, l) in props::array_in(res, props::at(e, "locations"), &format!("{at}.locations"))?
            .iter()
            .enumerate()
        {
            let l =
                props::str_in(res, Some(l), &format!("{at}.locations[{j}]"))?.unwrap_or_default();
            locations.push(super::normalize_location(&l));
        }
        out.push(ServiceEndpoint { service, locations });
    }
    Ok(out)
}
