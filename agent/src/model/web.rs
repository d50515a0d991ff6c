//! Typed views of `Microsoft.Web`: App Service plans (server farms) and sites.

use std::net::Ipv4Addr;

use super::props::{invalid, label, Props};
use super::{AzureError, GenericResource, ResourceId};

/// `Microsoft.Web/serverfarms`: an App Service plan, i.e. `capacity` workers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFarm {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// `sku.name`, e.g. `P1v3`.
    pub sku_name: String,
    /// `sku.tier`, or derived from the SKU name, e.g. `PremiumV3`.
    pub tier: String,
    /// `sku.capacity`: the instance (worker) count; default 1.
    pub capacity: u32,
    /// `kind` contains `linux`, or `properties.reserved` is true.
    pub is_linux: bool,
    /// `properties.deploymentGeneration`: the App Service deployment (stamp)
    /// the plan landed on; settled by validation when the plan is created.
    pub deployment_generation: DeploymentGeneration,
    /// A Windows container (Hyper-V) plan: `properties.hyperV` or the older
    /// `properties.isXenon` is true.
    pub hyper_v: bool,
}

/// Which App Service deployment a plan runs on (seed, "Limitations": Basic and
/// Standard support integration "only from newer App Service deployments").
/// Stored as `properties.deploymentGeneration`: `Legacy` or `Current`
/// (default). A Premium v3 plan always lands on `Current` and keeps it when
/// scaled down; the value never changes after the plan is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum DeploymentGeneration {
    /// An older deployment: integration only from Premium v2 up.
    Legacy,
    /// A newer deployment: integration from Basic up.
    #[default]
    Current,
}

impl DeploymentGeneration {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentGeneration::Legacy => "Legacy",
            DeploymentGeneration::Current => "Current",
        }
    }

    /// Case-insensitive parse of the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [DeploymentGeneration::Legacy, DeploymentGeneration::Current]
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s))
    }
}

/// The property that holds a plan's [`DeploymentGeneration`].
pub const DEPLOYMENT_GENERATION_PROPERTY: &str = "deploymentGeneration";

/// The pricing tier of an App Service SKU name (`B1` -> `Basic`, `P1v3` -> `PremiumV3`).
pub fn tier_of_sku(sku: &str) -> String {
    let s = sku.to_ascii_uppercase();
    let tier = if s.starts_with("EP") {
        "ElasticPremium"
    } else if s.starts_with('F') {
        "Free"
    } else if s.starts_with('D') {
        "Shared"
    } else if s.starts_with('B') {
        "Basic"
    } else if s.starts_with('S') {
        "Standard"
    } else if s.starts_with('Y') {
        "Dynamic"
    } else if s.starts_with('I') {
        if s.ends_with("V2") {
            "IsolatedV2"
        } else {
            "Isolated"
        }
    } else if s.starts_with('P') {
        if s.ends_with("MV4") {
            "PremiumMV4"
        } else if s.ends_with("V4") {
            "PremiumV4"
        } else if s.ends_with("MV3") {
            "PremiumMV3"
        } else if s.ends_with("V3") {
            "PremiumV3"
        } else if s.ends_with("V2") {
            "PremiumV2"
        } else {
            "Premium"
        }
    } else {
        "Unknown"
    };
    tier.to_string()
}

impl ServerFarm {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let sku_name = p.opt_str("sku.name")?.unwrap_or_else(|| "P1v3".to_string());
        let tier = p
            .opt_str("sku.tier")?
            .unwrap_or_else(|| tier_of_sku(&sku_name));
        let capacity = p.opt_u32("sku.capacity")?.unwrap_or(1);
        let kind_linux = res
            .kind
            .as_deref()
            .is_some_and(|k| k.to_ascii_lowercase().contains("linux"));
        let reserved = p.opt_bool("properties.reserved")?.unwrap_or(false);
        let gen_path = "properties.deploymentGeneration";
        let deployment_generation = match p.opt_str(gen_path)? {
            None => DeploymentGeneration::default(),
            Some(g) => DeploymentGeneration::parse(&g).ok_or_else(|| {
                invalid(res, gen_path, &format!("is '{g}'; use Legacy or Current"))
            })?,
        };
        let hyper_v = p.opt_bool("properties.hyperV")?.unwrap_or(false)
            || p.opt_bool("properties.isXenon")?.unwrap_or(false);
        Ok(ServerFarm {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            sku_name,
            tier,
            capacity,
            is_linux: kind_linux || reserved,
            deployment_generation,
            hyper_v,
        })
    }

    /// What the plan's tier means for regional virtual network integration
    /// (seed, "Limitations").
    pub fn tier_class(&self) -> TierClass {
        match self.tier.to_ascii_lowercase().as_str() {
            "premiumv2" | "premiumv3" | "premiummv3" | "premiumv4" | "premiummv4"
            | "elasticpremium" => TierClass::Everywhere,
            "basic" | "standard" | "premium" => TierClass::NewerDeploymentsOnly,
            "isolated" | "isolatedv2" => TierClass::AppServiceEnvironment,
            _ => TierClass::Unsupported,
        }
    }

    /// Regional virtual network integration is available to this plan (its
    /// tier, and for Basic/Standard its deployment).
    pub fn supports_vnet_integration(&self) -> bool {
        match self.tier_class() {
            TierClass::Everywhere => true,
            TierClass::NewerDeploymentsOnly => {
                self.deployment_generation == DeploymentGeneration::Current
            }
            TierClass::AppServiceEnvironment | TierClass::Unsupported => false,
        }
    }

    /// Tiers that only exist on the newest deployments, so a plan created in
    /// them lands on [`DeploymentGeneration::Current`] (seed, "Limitations":
    /// Premium v3 plans "are only supported on our newest deployments").
    pub fn requires_current_deployment(&self) -> bool {
        let t = self.tier.to_ascii_lowercase();
        t.starts_with("premiumv3")
            || t.starts_with("premiummv3")
            || t.starts_with("premiumv4")
            || t.starts_with("premiummv4")
    }

    /// How many integrations (subnets) one plan may use (seed, "How virtual
    /// network integration works"): Linux 1, Windows 2.
    pub fn max_integrations(&self) -> usize {
        if self.is_linux {
            1
        } else {
            2
        }
    }
}

/// How a pricing tier stands with regional virtual network integration
/// (seed, "Limitations").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierClass {
    /// Premium v2, Premium v3 (and later), Elastic Premium: on all deployments.
    Everywhere,
    /// Basic, Standard, Premium (v1): only on newer deployments.
    NewerDeploymentsOnly,
    /// Isolated, Isolated v2: an App Service Environment, already in a VNet.
    AppServiceEnvironment,
    /// Free, Shared, Dynamic (Consumption), unknown.
    Unsupported,
}

/// `Microsoft.Web/sites`: a web app, function app or logic app.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    pub kind: String,
    pub server_farm_id: ResourceId,
    /// `properties.virtualNetworkSubnetId`: regional integration when set.
    pub subnet_id: Option<ResourceId>,
    /// Route All (seed, "Application routing"): `properties.vnetRouteAllEnabled`,
    /// `properties.siteConfig.vnetRouteAllEnabled`,
    /// `properties.outboundVnetRouting.{allTraffic,applicationTraffic}` or the
    /// legacy app setting `WEBSITE_VNET_ROUTE_ALL=1`; any of them turns it on.
    pub route_all: bool,
    /// Configuration routing (seed, "Configuration routing"): which kinds of
    /// the platform's own traffic go through the integration.
    pub config_routing: ConfigRouting,
    /// `identity.type` names a system- or user-assigned managed identity:
    /// what Key Vault references authenticate with.
    pub managed_identity: bool,
    /// `properties.siteConfig.appCommandLine`.
    pub app_command_line: Option<String>,
    /// `properties.siteConfig.appSettings[] {name, value}`, in order.
    pub app_settings: Vec<(String, String)>,
    /// `properties.siteConfig.linuxFxVersion`, e.g. `DOCKER|nginx` or
    /// `COMPOSE|<base64>` (a Docker Compose app).
    pub linux_fx_version: Option<String>,
    /// `properties.siteConfig.windowsFxVersion`, e.g. `DOCKER|mcr.microsoft.com/...`
    /// for a Windows container.
    pub windows_fx_version: Option<String>,
    /// The app's own DNS servers: app settings `WEBSITE_DNS_SERVER`
    /// (comma-separated, no spaces) then `WEBSITE_DNS_ALT_SERVER` (one
    /// fallback appended). They override the VNet's and Azure's
    /// (AZURE-FACTS §5.1, §6). Empty = none set.
    pub dns_servers: Vec<Ipv4Addr>,
    /// `properties.siteConfig.azureStorageAccounts` (also written by the
    /// `sites/config` resource `azurestorageaccounts`): the app's own storage
    /// mounts, by name.
    pub storage_mounts: Vec<StorageMount>,
}

/// The kind of a storage mount (`AzureStorageInfoValue.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StorageMountKind {
    /// An Azure Files share, mounted over SMB (TCP 445).
    AzureFiles,
    /// A blob container, mounted over HTTPS (TCP 443).
    AzureBlob,
}

/// One `azureStorageAccounts` entry: "bring your own storage" mounted into
/// the app. Seed: virtual network integration "doesn't support ... Mounting
/// a drive": the platform mounts it over the public route, never through
/// the integration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageMount {
    pub name: String,
    pub kind: StorageMountKind,
    /// Lower-cased.
    pub account_name: String,
    pub share_name: String,
    pub mount_path: String,
}

/// The storage mounts of `p`'s `siteConfig.azureStorageAccounts`, checked:
/// `type` AzureFiles or AzureBlob, `accountName` and `shareName` set.
fn storage_mounts(res: &GenericResource) -> Result<Vec<StorageMount>, AzureError> {
    let path = "properties.siteConfig.azureStorageAccounts";
    let Some(map) = res
        .properties
        .pointer("/siteConfig/azureStorageAccounts")
        .filter(|v| !v.is_null())
    else {
        return Ok(Vec::new());
    };
    let map = map
        .as_object()
        .ok_or_else(|| invalid(res, path, "must be an object of mounts by name"))?;
    let mut out = Vec::new();
    for (name, v) in map {
        let field = |f: &str| v.get(f).and_then(serde_json::Value::as_str).unwrap_or("");
        let kind = match field("type") {
            t if t.eq_ignore_ascii_case("AzureFiles") => StorageMountKind::AzureFiles,
            t if t.eq_ignore_ascii_case("AzureBlob") => StorageMountKind::AzureBlob,
            t => {
                return Err(invalid(
                    res,
                    &format!("{path}.{name}.type"),
                    &format!("is '{t}'; use AzureFiles or AzureBlob"),
                ))
            }
        };
        for f in ["accountName", "shareName"] {
            if field(f).is_empty() {
                return Err(invalid(res, &format!("{path}.{name}.{f}"), "is required"));
            }
        }
        out.push(StorageMount {
            name: name.clone(),
            kind,
            account_name: field("accountName").to_ascii_lowercase(),
            share_name: field("shareName").to_string(),
            mount_path: field("mountPath").to_string(),
        });
    }
    Ok(out)
}

/// App setting with the app's DNS servers (AZURE-FACTS §5.1).
pub const WEBSITE_DNS_SERVER: &str = "WEBSITE_DNS_SERVER";
/// App setting with one fallback DNS server, appended to the list.
pub const WEBSITE_DNS_ALT_SERVER: &str = "WEBSITE_DNS_ALT_SERVER";
/// Most DNS servers of one app (AZURE-FACTS §0, "App DNS").
pub const MAX_APP_DNS_SERVERS: usize = 5;

/// `WEBSITE_DNS_SERVER` / `WEBSITE_DNS_ALT_SERVER` of `settings`, checked:
/// IPv4 addresses, comma-separated without spaces, at most
/// [`MAX_APP_DNS_SERVERS`] in all; otherwise `InvalidDnsServerAddress`.
fn app_dns_servers(
    res: &GenericResource,
    settings: &[(String, String)],
) -> Result<Vec<Ipv4Addr>, AzureError> {
    let setting = |name: &str| {
        settings
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let bad = |name: &str, value: &str, why: &str| {
        AzureError::bad_request(
            "InvalidDnsServerAddress",
            format!(
                "{}: app setting {name}='{value}' {why}. Give IPv4 addresses, e.g. \
                 {name}=10.0.3.4{}.",
                label(res),
                if name == WEBSITE_DNS_SERVER {
                    ",10.0.3.5 (comma-separated, no spaces)"
                } else {
                    ""
                }
            ),
        )
        .with_target(format!("properties.siteConfig.appSettings.{name}"))
    };
    let mut servers = Vec::new();
    if let Some(list) = setting(WEBSITE_DNS_SERVER) {
        for part in list.split(',') {
            let ip = part.parse::<Ipv4Addr>().map_err(|_| {
                bad(
                    WEBSITE_DNS_SERVER,
                    list,
                    &format!("has '{part}', which is not an IPv4 address"),
                )
            })?;
            servers.push(ip);
        }
    }
    if let Some(alt) = setting(WEBSITE_DNS_ALT_SERVER) {
        let ip = alt
            .parse::<Ipv4Addr>()
            .map_err(|_| bad(WEBSITE_DNS_ALT_SERVER, alt, "is not one IPv4 address"))?;
        servers.push(ip);
    }
    if servers.len() > MAX_APP_DNS_SERVERS {
        let all = servers.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        return Err(AzureError::bad_request(
            "InvalidDnsServerAddress",
            format!(
                "{}: {} DNS servers ({}) in {WEBSITE_DNS_SERVER} and {WEBSITE_DNS_ALT_SERVER}; an app can use at \
                 most {MAX_APP_DNS_SERVERS}.",
                label(res),
                servers.len(),
                all.join(",")
            ),
        ));
    }
    Ok(servers)
}

impl Site {
    /// A Docker Compose app: `linuxFxVersion` starts with `COMPOSE|` (any case).
    /// The seed ("Troubleshooting"): "Virtual network integration isn't
    /// supported for Docker Compose scenarios in App Service."
    pub fn is_docker_compose(&self) -> bool {
        self.linux_fx_version
            .as_deref()
            .and_then(|v| v.get(..8))
            .is_some_and(|p| p.eq_ignore_ascii_case("COMPOSE|"))
    }
}

impl Site {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let server_farm_id = p.opt_id("properties.serverFarmId")?.ok_or_else(|| {
            invalid(
                res,
                "properties.serverFarmId",
                "is required (the id of the App Service plan)",
            )
        })?;
        let subnet_id = p.opt_id("properties.virtualNetworkSubnetId")?;
        let mut app_settings = Vec::new();
        let path = "properties.siteConfig.appSettings";
        for (i, v) in p.array(path)?.iter().enumerate() {
            let name = v.get("name").and_then(|n| n.as_str()).ok_or_else(|| {
                invalid(
                    res,
                    &format!("{path}[{i}].name"),
                    "is required and must be a string",
                )
            })?;
            let value = match v.get("value") {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            app_settings.push((name.to_string(), value));
        }
        let legacy_route_all = app_settings.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("WEBSITE_VNET_ROUTE_ALL")
                && (v == "1" || v.eq_ignore_ascii_case("true"))
        });
        let route_all = p
            .opt_bool("properties.vnetRouteAllEnabled")?
            .unwrap_or(false)
            || p.opt_bool("properties.siteConfig.vnetRouteAllEnabled")?
                .unwrap_or(false)
            || p.opt_bool("properties.outboundVnetRouting.allTraffic")?
                .unwrap_or(false)
            || p.opt_bool("properties.outboundVnetRouting.applicationTraffic")?
                .unwrap_or(false)
            || legacy_route_all;
        let dns_servers = app_dns_servers(res, &app_settings)?;
        let config_routing = ConfigRouting::from_site(&p, &app_settings)?;
        let storage_mounts = storage_mounts(res)?;
        Ok(Site {
            dns_servers,
            storage_mounts,
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            kind: res.kind.clone().unwrap_or_else(|| "app".to_string()),
            server_farm_id,
            subnet_id,
            route_all,
            config_routing,
            managed_identity: res
                .identity
                .as_ref()
                .and_then(|i| i.get("type"))
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.to_ascii_lowercase().contains("assigned")),
            app_command_line: p
                .opt_str("properties.siteConfig.appCommandLine")?
                .filter(|c| !c.trim().is_empty()),
            app_settings,
            linux_fx_version: p
                .opt_str("properties.siteConfig.linuxFxVersion")?
                .filter(|v| !v.trim().is_empty()),
            windows_fx_version: p.opt_str("properties.siteConfig.windowsFxVersion")?,
        })
    }
}

/// Configuration routing of a site: whether the platform's traffic for
/// each purpose goes through the virtual network integration (true) or
/// directly over the public route (false, Azure's default). AZURE-FACTS §5.1:
/// the legacy booleans `vnetContentShareEnabled`, `vnetImagePullEnabled`,
/// `vnetBackupRestoreEnabled` (on `properties` or `siteConfig`), the newer
/// `outboundVnetRouting{allTraffic, contentShareTraffic, imagePullTraffic,
/// backupRestoreTraffic}` (`allTraffic` turns on every kind), and the legacy
/// app settings `WEBSITE_CONTENTOVERVNET=1` / `WEBSITE_PULL_IMAGE_OVER_VNET=true`.
/// Any of them turns a kind on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfigRouting {
    pub content_share: bool,
    pub image_pull: bool,
    pub backup_restore: bool,
}

impl ConfigRouting {
    fn from_site(p: &Props, app_settings: &[(String, String)]) -> Result<Self, AzureError> {
        let any = |paths: &[&str]| -> Result<bool, AzureError> {
            for path in paths {
                if p.opt_bool(path)?.unwrap_or(false) {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        let setting = |name: &str| {
            app_settings.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(name) && (v == "1" || v.eq_ignore_ascii_case("true"))
            })
        };
        let all = any(&["properties.outboundVnetRouting.allTraffic"])?;
        Ok(ConfigRouting {
            content_share: all
                || setting("WEBSITE_CONTENTOVERVNET")
                || any(&[
                    "properties.vnetContentShareEnabled",
                    "properties.siteConfig.vnetContentShareEnabled",
                    "properties.outboundVnetRouting.contentShareTraffic",
                ])?,
            image_pull: all
                || setting("WEBSITE_PULL_IMAGE_OVER_VNET")
                || any(&[
                    "properties.vnetImagePullEnabled",
                    "properties.siteConfig.vnetImagePullEnabled",
                    "properties.outboundVnetRouting.imagePullTraffic",
                ])?,
            backup_restore: all
                || any(&[
                    "properties.vnetBackupRestoreEnabled",
                    "properties.siteConfig.vnetBackupRestoreEnabled",
                    "properties.outboundVnetRouting.backupRestoreTraffic",
                ])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site_with(props: serde_json::Value) -> Site {
        let mut p = serde_json::json!({
            "serverFarmId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/serverfarms/p"
        });
        for (k, v) in props.as_object().unwrap() {
            p[k] = v.clone();
        }
        let res = GenericResource {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/a"
                .parse()
                .unwrap(),
            type_: "Microsoft.Web/sites".into(),
            name: "a".into(),
            location: None,
            kind: None,
            sku: None,
            properties: p,
            tags: None,
            identity: None,
        };
        Site::from_resource(&res).unwrap()
    }

    #[test]
    fn configuration_routing_from_every_spelling() {
        let cr = |props| site_with(props).config_routing;
        assert_eq!(cr(serde_json::json!({})), ConfigRouting::default());
        let all = ConfigRouting {
            content_share: true,
            image_pull: true,
            backup_restore: true,
        };
        let s = site_with(serde_json::json!({"outboundVnetRouting": {"allTraffic": true}}));
        assert_eq!(s.config_routing, all);
        assert!(s.route_all, "allTraffic includes application traffic");
        assert_eq!(
            cr(serde_json::json!({"vnetContentShareEnabled": true})),
            ConfigRouting {
                content_share: true,
                ..Default::default()
            }
        );
        assert_eq!(
            cr(serde_json::json!({"siteConfig": {"vnetImagePullEnabled": true}})),
            ConfigRouting {
                image_pull: true,
                ..Default::default()
            }
        );
        assert_eq!(
            cr(
                serde_json::json!({"outboundVnetRouting": {"backupRestoreTraffic": true, "contentShareTraffic": false}})
            ),
            ConfigRouting {
                backup_restore: true,
                ..Default::default()
            }
        );
        let legacy = cr(serde_json::json!({"siteConfig": {"appSettings": [
            {"name": "WEBSITE_CONTENTOVERVNET", "value": "1"},
            {"name": "WEBSITE_PULL_IMAGE_OVER_VNET", "value": "true"}]}}));
        assert_eq!(
            legacy,
            ConfigRouting {
                content_share: true,
                image_pull: true,
                backup_restore: false
            }
        );
        // applicationTraffic alone is Route All, not configuration routing.
        let s = site_with(serde_json::json!({"outboundVnetRouting": {"applicationTraffic": true}}));
        assert!(s.route_all);
        assert_eq!(s.config_routing, ConfigRouting::default());
    }

    #[test]
    fn tiers() {
        assert_eq!(tier_of_sku("P1v3"), "PremiumV3");
        assert_eq!(tier_of_sku("S1"), "Standard");
        assert_eq!(tier_of_sku("EP1"), "ElasticPremium");
        assert_eq!(tier_of_sku("F1"), "Free");
        assert_eq!(tier_of_sku("I1v2"), "IsolatedV2");
        assert_eq!(tier_of_sku("P1v4"), "PremiumV4");
        assert_eq!(tier_of_sku("P1mv4"), "PremiumMV4");
    }
}
