//! Typed views of `Microsoft.Web`: App Service plans (server farms) and sites.

use super::props::{invalid, Props};
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
    /// A Windows container (Hyper-V) plan: `properties.hyperV` or the older
    /// `properties.isXenon` is true.
    pub hyper_v: bool,
}

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
        if s.ends_with("MV3") {
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
            hyper_v,
        })
    }

    /// Regional virtual network integration is available in this tier (seed,
    /// "Limitations": Basic, Standard, Premium v2/v3, Elastic Premium; not
    /// Free, Shared, Consumption or an App Service Environment).
    pub fn supports_vnet_integration(&self) -> bool {
        !matches!(
            self.tier.to_ascii_lowercase().as_str(),
            "free" | "shared" | "dynamic" | "isolated" | "isolatedv2"
        )
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
    /// `properties.siteConfig.appCommandLine`.
    pub app_command_line: Option<String>,
    /// `properties.siteConfig.appSettings[] {name, value}`, in order.
    pub app_settings: Vec<(String, String)>,
    /// `properties.siteConfig.windowsFxVersion`, e.g. `DOCKER|mcr.microsoft.com/...`
    /// for a Windows container.
    pub windows_fx_version: Option<String>,
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
        Ok(Site {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            kind: res.kind.clone().unwrap_or_else(|| "app".to_string()),
            server_farm_id,
            subnet_id,
            route_all,
            app_command_line: p
                .opt_str("properties.siteConfig.appCommandLine")?
                .filter(|c| !c.trim().is_empty()),
            app_settings,
            windows_fx_version: p.opt_str("properties.siteConfig.windowsFxVersion")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers() {
        assert_eq!(tier_of_sku("P1v3"), "PremiumV3");
        assert_eq!(tier_of_sku("S1"), "Standard");
        assert_eq!(tier_of_sku("EP1"), "ElasticPremium");
        assert_eq!(tier_of_sku("F1"), "Free");
        assert_eq!(tier_of_sku("I1v2"), "IsolatedV2");
    }
}
