//! The configuration of one service host: written by the agent (as JSON, in
//! the state directory) whenever the service's resource changes, re-read by
//! the host when the file changes, so an apply that changes `networkAcls`
//! takes effect on the next connection without restarting the host.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::ServiceKind;

/// How a connection reached the service (the `path` of the wire answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AccessPath {
    /// From the internet, with a public source address.
    Public,
    /// Over a subnet's service endpoint, with the private source address.
    ServiceEndpoint,
    /// Through a private endpoint of the service in a VNet.
    PrivateEndpoint,
}

/// One way into the service namespace other than the internet uplink: a
/// link from a VNet's fabric. Packets arriving on it carry `mark` (set by
/// nft from the ingress link); accepted sockets inherit it
/// (`tcp_fwmark_accept`), so the host reads the path back from the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    pub mark: u32,
    pub path: AccessPath,
    /// The VNet the link comes from.
    pub virtual_network: String,
    /// `(subnet id, prefix)` of that VNet: the source address picks the subnet.
    pub subnets: Vec<(String, Ipv4Net)>,
}

/// The service's network controls, as the host applies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// `publicNetworkAccess` is `Enabled`.
    pub public_network_access: bool,
    /// `defaultAction` is `Allow`.
    pub default_allow: bool,
    /// `ipRules` (public sources admitted under `Deny`).
    pub ip_rules: Vec<Ipv4Net>,
    /// `virtualNetworkRules` subnet ids, lower-cased (service-endpoint sources admitted under `Deny`).
    pub virtual_network_rules: Vec<String>,
}

/// A key vault secret as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretConfig {
    pub name: String,
    pub value: String,
    pub version: String,
}

/// A registry image as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub repository: String,
    pub tag: String,
}

/// Everything one service host serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostConfig {
    /// ARM type, e.g. `Microsoft.Storage/storageAccounts` (the `service` field of answers).
    pub service: String,
    pub id: String,
    pub name: String,
    pub public_ip: Ipv4Addr,
    /// Names its certificate is signed for (public and privatelink).
    pub host_names: Vec<String>,
    pub access: Access,
    pub ingress: Vec<Ingress>,
    #[serde(default)]
    pub secrets: Vec<SecretConfig>,
    #[serde(default)]
    pub images: Vec<ImageConfig>,
    /// The lab CA (certificate and key files), filled in by the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<(PathBuf, PathBuf)>,
}

impl HostConfig {
    pub fn kind(&self) -> Option<ServiceKind> {
        ServiceKind::from_type(&self.service)
    }

    /// TCP ports the host listens on: blob 80 and 443 plus file 445 for a
    /// storage account, 443 for a vault or registry.
    pub fn ports(&self) -> Vec<u16> {
        match self.kind() {
            Some(ServiceKind::Storage) => vec![80, 443, 445],
            _ => vec![443],
        }
    }

    /// The ingress of a socket mark (0 = the internet uplink: `None`).
    pub fn ingress_of(&self, mark: u32) -> Option<&Ingress> {
        (mark != 0)
            .then(|| self.ingress.iter().find(|i| i.mark == mark))
            .flatten()
    }
}
