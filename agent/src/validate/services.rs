//! Azure's rules for the emulated services and service endpoints: names
//! (AccountNameInvalid, VaultNameNotValid, InvalidResourceName), global name
//! uniqueness within the lab (StorageAccountAlreadyTaken, VaultAlreadyExists,
//! AlreadyInUse), network rules (NetworkAclsValidationFailure) and the
//! service names of subnets' service endpoints
//! (SubnetHasServiceEndpointWithInvalidServiceName).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::model::{
    AzureError, GenericResource, Inventory, LabState, PaasService, ResourceKind, ServiceKind,
    SERVICE_ENDPOINT_SERVICES,
};

pub(crate) fn check(inv: &Inventory, old: &Inventory) -> Result<(), AzureError> {
    check_endpoint_services(inv)?;
    for s in &inv.services {
        check_name(s)?;
        check_unique(inv, old, s)?;
        check_rules(inv, s)?;
    }
    Ok(())
}

/// `serviceEndpoints[].service` must be a service Azure has endpoints for.
fn check_endpoint_services(inv: &Inventory) -> Result<(), AzureError> {
    for v in &inv.vnets {
        for s in &v.subnets {
            for e in &s.service_endpoints {
                if !SERVICE_ENDPOINT_SERVICES
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&e.service))
                {
                    return Err(AzureError::bad_request(
                        "SubnetHasServiceEndpointWithInvalidServiceName",
                        format!(
                            "Subnet '{}' of virtual network '{}' has a service endpoint with the invalid service \
                             name '{}'. Valid names: {}.",
                            s.name,
                            v.name,
                            e.service,
                            SERVICE_ENDPOINT_SERVICES.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Storage accounts: 3-24 lower-case letters and digits. Vaults: 3-24
/// letters, digits and hyphens, starting with a letter, ending with a letter
/// or digit, no `--`. Registries: 5-50 letters and digits.
pub(crate) fn name_error(kind: ServiceKind, name: &str) -> Option<AzureError> {
    let len = name.chars().count();
    let alnum = |c: char| c.is_ascii_alphanumeric();
    match kind {
        ServiceKind::Storage => {
            let ok = (3..=24).contains(&len)
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            (!ok).then(|| {
                AzureError::bad_request(
                    "AccountNameInvalid",
                    format!(
                        "{name} is not a valid storage account name. Storage account name must be between 3 and 24 \
                         characters in length and use numbers and lower-case letters only."
                    ),
                )
            })
        }
        ServiceKind::KeyVault => {
            let ok = (3..=24).contains(&len)
                && name.chars().all(|c| alnum(c) || c == '-')
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.ends_with(alnum)
                && !name.contains("--");
            (!ok).then(|| {
                AzureError::bad_request(
                    "VaultNameNotValid",
                    format!(
                        "The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric \
                         characters. The name must begin with a letter, end with a letter or digit, and not contain \
                         consecutive hyphens."
                    ),
                )
            })
        }
        ServiceKind::ContainerRegistry => {
            let ok = (5..=50).contains(&len) && name.chars().all(alnum);
            (!ok).then(|| {
                AzureError::bad_request(
                    "InvalidResourceName",
                    format!(
                        "The registry name '{name}' is invalid: registry names may contain only alpha numeric \
                         characters and must be between 5 and 50 characters."
                    ),
                )
            })
        }
    }
}

fn check_name(s: &PaasService) -> Result<(), AzureError> {
    name_error(s.kind, &s.name).map_or(Ok(()), Err)
}

/// Names are global (they are DNS names): within the lab, two services of
/// one kind may not share a name, whatever their resource group or
/// subscription. The one that is new in this change is refused.
fn check_unique(inv: &Inventory, old: &Inventory, s: &PaasService) -> Result<(), AzureError> {
    let Some(other) = inv
        .services
        .iter()
        .find(|o| o.kind == s.kind && o.id != s.id && o.name.eq_ignore_ascii_case(&s.name))
    else {
        return Ok(());
    };
    // Report the newcomer (the one the old state did not have).
    if old.service(&s.id).is_some() && old.service(&other.id).is_none() {
        return Ok(());
    }
    if old.service(&s.id).is_some() == old.service(&other.id).is_some() && s.id > other.id {
        return Ok(());
    }
    let name = &s.name;
    Err(match s.kind {
        ServiceKind::Storage => AzureError::conflict(
            "StorageAccountAlreadyTaken",
            format!("The storage account named {name} is already taken."),
        ),
        ServiceKind::KeyVault => AzureError::conflict(
            "VaultAlreadyExists",
            format!(
                "The vault name '{name}' is already in use. Vault names are globally unique so it is possible that \
                 the name is already taken ({}). Pick another name.",
                other.id
            ),
        ),
        ServiceKind::ContainerRegistry => AzureError::conflict(
            "AlreadyInUse",
            format!(
                "The registry DNS name {}.azurecr.io is already in use ({}). Pick another name.",
                name.to_ascii_lowercase(),
                other.id
            ),
        ),
    })
}

/// Private, loopback and link-local space: never the source of a public client.
fn is_private(net: Ipv4Net) -> bool {
    const RANGES: [&str; 6] = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
    ];
    RANGES
        .iter()
        .map(|r| r.parse::<Ipv4Net>().expect("constant"))
        .any(|r| r.contains(&net.network()) || net.contains(&r.network()))
}

/// ipRules are public addresses only; virtualNetworkRules name existing
/// subnets that have the service's endpoint (unless
/// `ignoreMissingVnetServiceEndpoint`), as Azure checks.
fn check_rules(inv: &Inventory, s: &PaasService) -> Result<(), AzureError> {
    let fail = |what: String| {
        AzureError::bad_request(
            "NetworkAclsValidationFailure",
            format!("Validation of network acls failure: {what}"),
        )
    };
    for r in &s.rules.ip_rules {
        if r.network() == Ipv4Addr::UNSPECIFIED || is_private(*r) {
            return Err(fail(format!(
                "IpAddressOrRange:Invalid({r}) on {} '{}': IP rules admit public internet addresses only; private, \
                 loopback and link-local ranges are not allowed. Traffic from a subnet is admitted by a \
                 virtualNetworkRules entry (with a service endpoint) or a private endpoint.",
                s.kind.resource_type(),
                s.name
            )));
        }
    }
    for r in &s.rules.virtual_network_rules {
        let Some((vnet, subnet, _)) = inv.subnet(&r.subnet) else {
            return Err(fail(format!(
                "SubnetNotFound:The subnet '{}' named by a virtualNetworkRules entry of {} '{}' does not exist.",
                r.subnet,
                s.kind.resource_type(),
                s.name
            )));
        };
        let has = subnet
            .service_endpoints
            .iter()
            .any(|e| e.service.eq_ignore_ascii_case(s.kind.endpoint_service()));
        if !has && !r.ignore_missing_endpoint {
            let svc = s.kind.endpoint_service();
            return Err(fail(format!(
                "SubnetsHaveNoServiceEndpointsConfigured:Subnets {} of virtual network {} do not have \
                 ServiceEndpoints for {svc} resources configured. Add {svc} to subnet's ServiceEndpoints collection \
                 before trying to ACL {svc} resources to these Subnets.",
                subnet.name, vnet.id
            )));
        }
    }
    Ok(())
}

/// A key vault PUT without `properties.secrets` keeps the stored vault's
/// secrets: in Azure, secrets are child resources a vault update leaves alone.
pub(crate) fn keep_secrets(state: &LabState, res: &mut GenericResource) {
    if ResourceKind::from_type(&res.type_) != Some(ResourceKind::KeyVault) {
        return;
    }
    let Some(old) = state
        .get(&res.id)
        .and_then(|o| o.properties.get("secrets"))
        .cloned()
    else {
        return;
    };
    if let Some(p) = res.properties.as_object_mut() {
        p.entry("secrets").or_insert(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_azure() {
        assert!(name_error(ServiceKind::Storage, "acct1").is_none());
        for bad in ["ab", "Acct1", "acct-1", &"a".repeat(25)] {
            assert_eq!(
                name_error(ServiceKind::Storage, bad).unwrap().code,
                "AccountNameInvalid",
                "{bad}"
            );
        }
        assert!(name_error(ServiceKind::KeyVault, "kv-lab-1").is_none());
        for bad in ["1kv", "kv-", "kv--x", "k", &"k".repeat(25), "kv_1"] {
            assert_eq!(
                name_error(ServiceKind::KeyVault, bad).unwrap().code,
                "VaultNameNotValid",
                "{bad}"
            );
        }
        assert!(name_error(ServiceKind::ContainerRegistry, "Registry1").is_none());
        for bad in ["reg1", "reg-istry", &"r".repeat(51)] {
            assert_eq!(
                name_error(ServiceKind::ContainerRegistry, bad)
                    .unwrap()
                    .code,
                "InvalidResourceName",
                "{bad}"
            );
        }
    }

    #[test]
    fn private_ranges_are_not_ip_rules() {
        for p in [
            "10.1.2.3/32",
            "192.168.0.0/16",
            "172.20.0.0/24",
            "169.254.1.1/32",
            "198.51.100.0/24",
        ] {
            let n: Ipv4Net = p.parse().unwrap();
            assert_eq!(is_private(n), p != "198.51.100.0/24", "{p}");
        }
    }
}
