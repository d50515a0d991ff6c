//! Typed view of `Lab.Emulator/internetHosts`: a public test host (no Azure twin).

use std::net::Ipv4Addr;

use super::props::{invalid, Props};
use super::{AzureError, GenericResource, ResourceId};

/// A host on the lab's internet with one public address, e.g. to check which
/// source address an app's outbound call arrives with.
#[derive(Debug, Clone, PartialEq)]
pub struct InternetHost {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// `properties.ipAddress`; allocated from the lab's public pool when absent.
    pub ip_address: Option<Ipv4Addr>,
    /// `properties.dnsName`: the host's name in the lab's public DNS
    /// (lower-cased, no trailing dot); [`InternetHost::dns_name`] gives the
    /// default `<name>.internet.lab` when absent.
    pub dns_name_property: Option<String>,
}

/// The lab's public domain of internet hosts without a `dnsName`.
pub const INTERNET_HOST_DOMAIN: &str = "internet.lab";

impl InternetHost {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let ip_address = p
            .opt_str("properties.ipAddress")?
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Ipv4Addr>().map_err(|_| {
                    invalid(
                        res,
                        "properties.ipAddress",
                        &format!("'{s}' is not an IPv4 address"),
                    )
                })
            })
            .transpose()?;
        let dns_name_property = p
            .opt_str("properties.dnsName")?
            .map(|s| super::canonical_name(&s))
            .filter(|s| !s.is_empty());
        Ok(InternetHost {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            ip_address,
            dns_name_property,
        })
    }

    /// The host's name in the lab's public DNS: `properties.dnsName`, else
    /// `<name>.internet.lab` (lower-cased).
    pub fn dns_name(&self) -> String {
        self.dns_name_property
            .clone()
            .unwrap_or_else(|| format!("{}.{INTERNET_HOST_DOMAIN}", self.name.to_ascii_lowercase()))
    }
}
