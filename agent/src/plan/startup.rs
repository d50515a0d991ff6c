//! What the platform does for an app instance before and while it starts
//! (seed, "Configuration routing"): mount the content share, pull the
//! container image, resolve Key Vault references — and by which route each
//! goes: directly over the public route (the worker's `pub0`) or through the
//! virtual network integration (the worker's vNIC, socket mark
//! [`PLATFORM_MARK_BASE`] + vNIC index). Pure; `platform/` carries it out.

use serde::{Deserialize, Serialize};

use super::layout::{Layout, PLATFORM_MARK_BASE};
use super::names;
use crate::model::{LabConfig, LabState, ResourceId, Site, StorageMount};
use crate::platform::kv_ref::{self, KeyVaultReference};

/// The route a piece of platform traffic takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlatformRoute {
    /// Straight from the worker to the stamp: leaves with the app's outbound IPs.
    Public,
    /// Through the integration: enters the VNet from the instance address and
    /// is subject to the subnet's NSG, route table, NAT gateway, service and
    /// private endpoints.
    VirtualNetwork,
}

/// The integration a worker's platform traffic can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// `SO_MARK` that routes a worker socket through the vNIC.
    pub mark: u32,
    pub vnet: ResourceId,
    /// The instance address (WEBSITE_PRIVATE_IP).
    pub address: std::net::Ipv4Addr,
}

/// Functions' content share (`WEBSITE_CONTENTAZUREFILECONNECTIONSTRING` +
/// `WEBSITE_CONTENTSHARE`): an Azure Files share reached on TCP 445 (SMB)
/// and 443 (REST), which is why the seed asks NSGs to allow both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentShare {
    pub account: String,
    pub share: String,
    pub route: PlatformRoute,
}

impl ContentShare {
    pub fn host(&self) -> String {
        format!("{}.file.core.windows.net", self.account)
    }
}

/// A custom container's image (`linuxFxVersion`/`windowsFxVersion`
/// `DOCKER|registry/repository:tag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePull {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub route: PlatformRoute,
}

/// One app setting holding a Key Vault reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultSetting {
    pub setting: String,
    pub raw: String,
    /// The parsed reference, or why it is `InvalidSyntax`.
    pub reference: Result<KeyVaultReference, String>,
}

/// Everything the platform does when one instance of a site starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupSpec {
    /// The app process key (`names::instance_key`): results attach there.
    pub key: String,
    pub site: ResourceId,
    pub site_name: String,
    pub instance: u32,
    /// Where platform sockets are made.
    pub worker_netns: String,
    pub integration: Option<Integration>,
    /// The app's custom DNS servers for traffic through the integration
    /// (WEBSITE_DNS_SERVER/ALT, else the VNet's `dhcpOptions.dnsServers`;
    /// empty: Azure-provided DNS of the VNet).
    pub dns_servers: Vec<std::net::Ipv4Addr>,
    pub managed_identity: bool,
    pub content_share: Option<ContentShare>,
    pub image: Option<ImagePull>,
    pub key_vault_references: Vec<KeyVaultSetting>,
    /// The app's own storage mounts (`azureStorageAccounts`): always over
    /// the public route (seed: integration "doesn't support ... Mounting a
    /// drive"), whatever Route All or `vnetContentShareEnabled` say.
    pub storage_mounts: Vec<StorageMount>,
}

impl StartupSpec {
    /// True when the platform has nothing to do for this instance.
    pub fn is_empty(&self) -> bool {
        self.content_share.is_none()
            && self.image.is_none()
            && self.key_vault_references.is_empty()
            && self.storage_mounts.is_empty()
    }
}

fn setting<'a>(site: &'a Site, name: &str) -> Option<&'a str> {
    site.app_settings
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `AccountName=x` of a storage connection string.
pub fn connection_string_account(cs: &str) -> Option<String> {
    cs.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("AccountName")
            .then(|| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
    })
}

/// `DOCKER|registry/repo[:tag]` -> (registry, repo, tag). Only images named
/// with a registry host (a dot in the first part) are pulled by the lab; a
/// bare Docker Hub name (`DOCKER|nginx`) is outside the lab and not emulated.
pub fn parse_image(fx: &str) -> Option<(String, String, String)> {
    let (kind, image) = fx.split_once('|')?;
    if !kind.eq_ignore_ascii_case("DOCKER") {
        return None;
    }
    let (registry, rest) = image.split_once('/')?;
    if !registry.contains('.') {
        return None;
    }
    let (repo, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (rest, "latest"),
    };
    Some((
        registry.to_ascii_lowercase(),
        repo.to_string(),
        tag.to_string(),
    ))
}

fn route(enabled: bool, integrated: bool) -> PlatformRoute {
    if enabled && integrated {
        PlatformRoute::VirtualNetwork
    } else {
        PlatformRoute::Public
    }
}

/// The startup work of every app instance of the lab (outside a full
/// [`super::build`], which carries it as `NetworkPlan::startups`).
pub fn startup_specs(state: &LabState, lab: &LabConfig) -> Vec<StartupSpec> {
    specs(&Layout::new(state, lab))
}

pub(super) fn specs(l: &Layout) -> Vec<StartupSpec> {
    let mut out = Vec::new();
    for w in &l.workers {
        for sb in &w.sandboxes {
            let site = &sb.site;
            let integration = sb.vnic.map(|i| {
                let v = &w.vnics[i];
                Integration {
                    mark: PLATFORM_MARK_BASE + i as u32,
                    vnet: l.fabrics[v.fabric].vnet.id.clone(),
                    address: v.ip,
                }
            });
            let integrated = integration.is_some();
            let cr = site.config_routing;
            let content_share = setting(site, "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING")
                .and_then(connection_string_account)
                .map(|account| ContentShare {
                    account,
                    share: setting(site, "WEBSITE_CONTENTSHARE")
                        .unwrap_or(&site.name)
                        .to_ascii_lowercase(),
                    route: route(cr.content_share, integrated),
                });
            let image = site
                .linux_fx_version
                .as_deref()
                .or(site.windows_fx_version.as_deref())
                .and_then(parse_image)
                .map(|(registry, repository, tag)| ImagePull {
                    registry,
                    repository,
                    tag,
                    route: route(cr.image_pull, integrated),
                });
            let key_vault_references = site
                .app_settings
                .iter()
                .filter(|(_, v)| kv_ref::is_reference(v))
                .map(|(n, v)| KeyVaultSetting {
                    setting: n.clone(),
                    raw: v.clone(),
                    reference: kv_ref::parse(v),
                })
                .collect();
            let dns_servers = match sb.vnic.map(|i| &l.fabrics[w.vnics[i].fabric].vnet) {
                Some(_) if !site.dns_servers.is_empty() => site.dns_servers.clone(),
                Some(vnet) => vnet.dns_servers.clone(),
                None => Vec::new(),
            };
            out.push(StartupSpec {
                key: names::instance_key(&site.id.key(), w.instance),
                site: site.id.clone(),
                site_name: site.name.clone(),
                instance: w.instance,
                worker_netns: w.netns.clone(),
                integration,
                dns_servers,
                managed_identity: site.managed_identity,
                content_share,
                image,
                key_vault_references,
                storage_mounts: site.storage_mounts.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_connection_strings() {
        assert_eq!(
            parse_image("DOCKER|Reg1.azurecr.io/team/api:v2"),
            Some(("reg1.azurecr.io".into(), "team/api".into(), "v2".into()))
        );
        assert_eq!(
            parse_image("DOCKER|reg1.azurecr.io/api"),
            Some(("reg1.azurecr.io".into(), "api".into(), "latest".into()))
        );
        assert_eq!(
            parse_image("docker|localhost.lab:5000/api"),
            Some(("localhost.lab:5000".into(), "api".into(), "latest".into()))
        );
        assert_eq!(parse_image("DOCKER|nginx"), None);
        assert_eq!(parse_image("DOCKER|library/nginx:1"), None);
        assert_eq!(parse_image("NODE|20-lts"), None);
        assert_eq!(
            connection_string_account(
                "DefaultEndpointsProtocol=https;AccountName=St1;AccountKey=abc==;EndpointSuffix=core.windows.net"
            ),
            Some("st1".into())
        );
        assert_eq!(
            connection_string_account("UseDevelopmentStorage=true"),
            None
        );
    }

    #[test]
    fn routes_follow_the_settings_only_when_integrated() {
        assert_eq!(route(true, true), PlatformRoute::VirtualNetwork);
        assert_eq!(route(true, false), PlatformRoute::Public);
        assert_eq!(route(false, true), PlatformRoute::Public);
    }
}
