//! The app network troubleshooter (`webapp troubleshoot-network`), the part
//! the desired state answers: every instance has a private IP in the
//! integration subnet, the subnet is fit for integration (size, delegation,
//! one plan), the route and the NSG rule the endpoint's traffic meets, and
//! the links that keep the subnet and its VNet from being deleted. The CLI
//! adds what only the sandbox can tell: the DNS servers in force, what the
//! endpoint's name resolves to, and a real connection attempt.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::flow_verify;
use crate::model::{AzureError, Inventory, LabConfig, LabState, ResourceId};

/// Azure's smallest integration subnet, and the size it recommends.
const SMALLEST_PREFIX: u8 = 28;
const RECOMMENDED_PREFIX: u8 = 26;

fn check(name: &str, status: &str, message: String) -> Value {
    json!({ "name": name, "status": status, "message": message })
}

/// The checks for `site`, with `endpoint` (`address`, `port`) when given.
pub fn checks(
    state: &LabState,
    lab: &LabConfig,
    site: &ResourceId,
    instance: u32,
    endpoint: Option<(Ipv4Addr, u16)>,
) -> Result<Vec<Value>, AzureError> {
    let inv = Inventory::parse_lenient(&state.resources);
    let s = inv.site(site).ok_or_else(|| {
        AzureError::not_found(
            "ResourceNotFound",
            format!("The site '{site}' was not found."),
        )
    })?;
    let mut out = Vec::new();
    let Some(subnet_id) = &s.subnet_id else {
        out.push(check(
            "VnetIntegration",
            "Failed",
            format!("App '{}' is not integrated with a virtual network: its outbound traffic leaves from the App Service stamp.", s.name),
        ));
        return Ok(out);
    };
    let Some((vnet, subnet, _)) = inv.subnet(subnet_id) else {
        out.push(check(
            "VnetIntegration",
            "Failed",
            format!("The integration subnet '{subnet_id}' does not exist."),
        ));
        return Ok(out);
    };
    out.push(check(
        "VnetIntegration",
        "Passed",
        format!(
            "Integrated with subnet '{}' ({}) of virtual network '{}'.",
            subnet.name, subnet.address_prefix, vnet.name
        ),
    ));
    let count = crate::plan::app_instance_count(state, lab, site)?;
    let mut missing = Vec::new();
    let mut have = Vec::new();
    for i in 0..count {
        match crate::plan::app_vnet_address(state, lab, site, i)? {
            Some(ip) if subnet.address_prefix.contains(&ip) => have.push(format!("{i}: {ip}")),
            _ => missing.push(i.to_string()),
        }
    }
    out.push(if missing.is_empty() {
        check(
            "InstancePrivateIp",
            "Passed",
            format!(
                "Every instance has a private IP in the subnet ({}).",
                have.join(", ")
            ),
        )
    } else {
        check(
            "InstancePrivateIp",
            "Failed",
            format!(
                "Instance(s) {} have no address in the subnet: the subnet may be full.",
                missing.join(", ")
            ),
        )
    });
    let len = subnet.address_prefix.prefix_len();
    out.push(if len > SMALLEST_PREFIX {
        check("SubnetSize", "Failed", format!("/{len} is smaller than /{SMALLEST_PREFIX}, the smallest subnet integration accepts."))
    } else if len > RECOMMENDED_PREFIX {
        check("SubnetSize", "Warning", format!("/{len} works, but leaves little room to scale out: Azure recommends /{RECOMMENDED_PREFIX}."))
    } else {
        check("SubnetSize", "Passed", format!("/{len} is large enough."))
    });
    out.push(if subnet.is_delegated_to_server_farms() {
        check(
            "SubnetDelegation",
            "Passed",
            "Delegated to Microsoft.Web/serverFarms.".into(),
        )
    } else {
        check(
            "SubnetDelegation",
            "Failed",
            "The subnet is not delegated to Microsoft.Web/serverFarms.".into(),
        )
    });
    let mut plans: Vec<&ResourceId> = inv
        .sites
        .iter()
        .filter(|x| x.subnet_id.as_ref() == Some(subnet_id))
        .map(|x| &x.server_farm_id)
        .collect();
    plans.sort_by_key(|p| p.key());
    plans.dedup();
    out.push(if plans.len() <= 1 {
        check(
            "OnePlanPerSubnet",
            "Passed",
            "Only this app's plan uses the subnet.".into(),
        )
    } else {
        check(
            "OnePlanPerSubnet",
            "Warning",
            format!(
                "{} plans share the subnet: each needs its own addresses.",
                plans.len()
            ),
        )
    });
    let links: Vec<String> = subnet
        .service_association_links
        .iter()
        .map(|l| format!("{} -> {}", l.name, l.link))
        .collect();
    out.push(check(
        "ServiceAssociationLinks",
        "Info",
        if links.is_empty() {
            "The subnet has no service association link: nothing blocks deleting it.".into()
        } else {
            format!(
                "{} keeps the subnet (and its virtual network) from being deleted until the last app of the plan disconnects.",
                links.join("; ")
            )
        },
    ));
    if let Some((ip, port)) = endpoint {
        let Some(local) = crate::plan::app_vnet_address(state, lab, site, instance)? else {
            return Ok(out);
        };
        let target = json!({ "targetResourceId": site.to_string(), "instance": instance });
        let location = s.location.to_ascii_lowercase();
        let mut hop_body = target.clone();
        hop_body["sourceIPAddress"] = json!(local.to_string());
        hop_body["destinationIPAddress"] = json!(ip.to_string());
        let hop = flow_verify::next_hop(state, lab, &location, &hop_body)?;
        let hop_type = hop["nextHopType"].as_str().unwrap_or("None");
        out.push(check(
            "Route",
            if hop_type == "None" {
                "Failed"
            } else {
                "Passed"
            },
            format!(
                "Traffic to {ip} takes next hop {hop_type}{} ({}).",
                hop["nextHopIpAddress"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default(),
                hop["routeTableId"].as_str().unwrap_or_default()
            ),
        ));
        let mut verify = target;
        let o = verify.as_object_mut().expect("object");
        for (k, v) in [
            ("direction", "Outbound".to_string()),
            ("protocol", "TCP".to_string()),
            ("localIPAddress", local.to_string()),
            ("localPort", "40000".to_string()),
            ("remoteIPAddress", ip.to_string()),
            ("remotePort", port.to_string()),
        ] {
            o.insert(k.into(), json!(v));
        }
        let entering = matches!(hop_type, "AppServiceDirect");
        if entering {
            out.push(check(
                "NetworkSecurityRule",
                "Info",
                "The traffic does not enter the virtual network: no NSG applies.".into(),
            ));
        } else {
            let v = flow_verify::ip_flow_verify(state, lab, &location, &verify)?;
            let rule = v["ruleName"].as_str().unwrap_or_default();
            out.push(if v["access"] == "Allow" {
                check(
                    "NetworkSecurityRule",
                    "Passed",
                    format!(
                        "Allowed by {}.",
                        if rule.is_empty() {
                            "no NSG (none on the subnet)"
                        } else {
                            rule
                        }
                    ),
                )
            } else {
                check(
                    "NetworkSecurityRule",
                    "Failed",
                    format!("Denied by {rule} of the integration subnet's NSG."),
                )
            });
        }
    }
    Ok(out)
}
