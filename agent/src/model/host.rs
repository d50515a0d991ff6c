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
}

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
        Ok(InternetHost {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            ip_address,
        })
    }
}
