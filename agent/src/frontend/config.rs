//! What a stamp's front end serves: written by the daemon from the plan,
//! read by the `front-end` process (re-read when the file changes, so a
//! rule change takes effect on the next request without a restart).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::model::access_restriction::AccessPolicy;

/// One instance of a site, as the front end reaches it: the worker's `pub0`
/// address and the port the worker maps to the sandbox's listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    pub instance: u32,
    pub address: Ipv4Addr,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrontEndSite {
    /// `NAME` (lower-cased): serves `NAME.azurewebsites.net` and
    /// `NAME.scm.azurewebsites.net`.
    pub name: String,
    pub backends: Vec<Backend>,
    pub access: AccessPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrontEndConfig {
    pub location: String,
    /// The stamp's inbound address: where it listens (80, 443).
    pub inbound: Ipv4Addr,
    /// The address its connections to workers come from (the stamp's own).
    pub source: Ipv4Addr,
    pub sites: Vec<FrontEndSite>,
    /// Socket marks of connections that came through a private endpoint
    /// (the stamp's endpoint links): never restricted.
    #[serde(default)]
    pub private_endpoint_marks: Vec<u32>,
    /// Socket marks of connections that came over a VNet's `Microsoft.Web`
    /// service endpoint (the stamp's fabric links), with the VNet's id
    /// (lower-cased): what `vnetSubnetResourceId` rules match.
    #[serde(default)]
    pub service_endpoint_marks: Vec<(u32, String)>,
    /// The lab CA (certificate, key) the HTTPS certificate is signed with;
    /// filled in by the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl FrontEndConfig {
    /// The site `host` (a Host header or SNI, port stripped) names, and
    /// whether it is the `scm` site.
    pub fn site_for_host(&self, host: &str) -> Option<(&FrontEndSite, bool)> {
        let host = host
            .split(':')
            .next()?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let label = host.strip_suffix(".azurewebsites.net")?;
        let (name, scm) = match label.strip_suffix(".scm") {
            Some(n) => (n, true),
            None => (label, false),
        };
        self.sites.iter().find(|s| s.name == name).map(|s| (s, scm))
    }

    /// Every host name served, for the certificate.
    pub fn host_names(&self) -> Vec<String> {
        self.sites
            .iter()
            .flat_map(|s| {
                [
                    format!("{}.azurewebsites.net", s.name),
                    format!("{}.scm.azurewebsites.net", s.name),
                ]
            })
            .collect()
    }
}
