//! App Service access restrictions: who may reach an app's public front end
//! (seed, "Network routing": "To control inbound traffic to your app, use
//! the access restrictions feature or private endpoints"; AZURE-FACTS §11).
//! Pure: the policy is computed from the site, the decision from the policy
//! and the caller; the front end (`frontend/`) only asks.
//!
//! As Azure's access-restrictions documentation describes it:
//! - rules of `siteConfig.ipSecurityRestrictions` (the app) and
//!   `scmIpSecurityRestrictions` (the `scm` site, or the app's rules when
//!   `scmIpSecurityRestrictionsUseMain`), by `priority`, first match wins;
//! - a rule matches an `ipAddress` CIDR (a bare address is a /32), a service
//!   tag (`tag: ServiceTag`, the tag's prefixes), or a `vnetSubnetResourceId`
//!   (traffic that arrives over that subnet's `Microsoft.Web` service
//!   endpoint, with its private source);
//! - with no rule, everything is allowed; otherwise what no rule matched
//!   gets `ipSecurityRestrictionsDefaultAction` (`Deny` unless it says
//!   `Allow`: the implicit "Deny all");
//! - `publicNetworkAccess: Disabled` closes the public path;
//! - "Access restrictions does not apply to traffic coming through a
//!   private endpoint" (seed, Troubleshooting note).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AzureError, GenericResource, ResourceId, ServiceTag};

/// What one rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Matcher {
    /// Source addresses (an `ipAddress` CIDR, or a service tag's prefixes).
    Addresses(Vec<Ipv4Net>),
    /// Traffic from this subnet over its `Microsoft.Web` service endpoint.
    Subnet { vnet_id: String, prefix: Ipv4Net },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRule {
    pub name: String,
    pub priority: u32,
    pub allow: bool,
    pub matcher: Matcher,
}

/// The rules of one site (the app or its `scm` site), by priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSet {
    pub rules: Vec<AccessRule>,
    /// What no rule matched gets.
    pub default_allow: bool,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            rules: Vec::new(),
            default_allow: true,
        }
    }
}

/// Everything the front end needs to decide for one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    /// False: `publicNetworkAccess: Disabled`.
    pub public_network_access: bool,
    pub main: RuleSet,
    pub scm: RuleSet,
}

/// Who is calling, and which way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// From the internet, with its public source.
    Internet {
        source: Ipv4Addr,
    },
    /// Over a subnet's service endpoint, with its private source.
    ServiceEndpoint {
        source: Ipv4Addr,
        vnet_id: String,
    },
    PrivateEndpoint,
}

/// The front end's answer, with the rule that decided it (`Default` for
/// the default action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub rule: Option<String>,
}

impl AccessPolicy {
    pub fn decide(&self, scm: bool, caller: &Caller) -> Decision {
        let source = match caller {
            Caller::PrivateEndpoint => {
                return Decision {
                    allowed: true,
                    rule: None,
                }
            }
            _ if !self.public_network_access => {
                return Decision {
                    allowed: false,
                    rule: Some("PublicNetworkAccessDisabled".into()),
                }
            }
            Caller::Internet { source } | Caller::ServiceEndpoint { source, .. } => *source,
        };
        let set = if scm { &self.scm } else { &self.main };
        let hit = set.rules.iter().find(|r| match (&r.matcher, caller) {
            (Matcher::Addresses(nets), Caller::Internet { .. }) => {
                nets.iter().any(|n| n.contains(&source))
            }
            (Matcher::Subnet { vnet_id, prefix }, Caller::ServiceEndpoint { vnet_id: v, .. }) => {
                vnet_id == v && prefix.contains(&source)
            }
            // Over a service endpoint the source is private: IP rules for
            // public addresses no longer match it (as Azure).
            (Matcher::Addresses(nets), Caller::ServiceEndpoint { .. }) => {
                nets.iter().any(|n| n.contains(&source))
            }
            _ => false,
        });
        match hit {
            Some(r) => Decision {
                allowed: r.allow,
                rule: Some(r.name.clone()),
            },
            None => Decision {
                allowed: set.default_allow,
                rule: Some("Default".into()),
            },
        }
    }
}

/// Azure's front end answer to a denied caller: HTTP 403 with its page.
pub const FORBIDDEN_STATUS: u16 = 403;
pub const FORBIDDEN_BODY: &str = "<!DOCTYPE html><html><head><title>Web App - Unavailable</title></head>\
<body><h1>Error 403 - Forbidden</h1><p>The web app you have attempted to reach has blocked your access.</p>\
</body></html>\n";

fn invalid(site: &GenericResource, path: &str, why: String) -> AzureError {
    AzureError::bad_request(
        "InvalidAccessRestriction",
        format!("Site '{}': {path} {why}", site.name),
    )
    .with_target(path.to_string())
}

/// The rules at `properties.siteConfig.<key>`, checked (priority 1-2147483647,
/// action Allow or Deny, exactly one of `ipAddress` and
/// `vnetSubnetResourceId`, a valid CIDR or a known service tag).
fn rule_set(
    site: &GenericResource,
    key: &str,
    default_key: &str,
    subnet_prefix: &dyn Fn(&ResourceId) -> Option<Ipv4Net>,
    tag_prefixes: &dyn Fn(&ServiceTag) -> Vec<Ipv4Net>,
) -> Result<RuleSet, AzureError> {
    let sc = site.properties.get("siteConfig");
    let list = sc.and_then(|c| c.get(key)).and_then(Value::as_array);
    let mut rules = Vec::new();
    for (i, r) in list.into_iter().flatten().enumerate() {
        let path = format!("properties.siteConfig.{key}[{i}]");
        let text = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").trim();
        let name = match text("name") {
            "" => format!("rule-{i}"),
            n => n.to_string(),
        };
        let allow = match text("action") {
            a if a.eq_ignore_ascii_case("Allow") || a.is_empty() => true,
            a if a.eq_ignore_ascii_case("Deny") => false,
            a => {
                return Err(invalid(
                    site,
                    &path,
                    format!("has action '{a}'; use Allow or Deny"),
                ))
            }
        };
        let priority = r
            .get("priority")
            .and_then(Value::as_u64)
            .unwrap_or(u64::from(i32::MAX as u32));
        if !(1..=i32::MAX as u64).contains(&priority) {
            return Err(invalid(
                site,
                &path,
                format!("has priority {priority}; use 1 to 2147483647"),
            ));
        }
        let ip = text("ipAddress");
        let subnet = text("vnetSubnetResourceId");
        let matcher = match (ip.is_empty(), subnet.is_empty()) {
            (false, true) if text("tag").eq_ignore_ascii_case("ServiceTag") => {
                let tag = ServiceTag::parse(ip).ok_or_else(|| {
                    invalid(
                        site,
                        &path,
                        format!("names the service tag '{ip}', which Azure does not have"),
                    )
                })?;
                Matcher::Addresses(tag_prefixes(&tag))
            }
            (false, true) => {
                let nets: Result<Vec<Ipv4Net>, _> = ip
                    .split(',')
                    .map(|p| {
                        let p = p.trim();
                        p.parse::<Ipv4Net>()
                            .or_else(|_| p.parse::<Ipv4Addr>().map(Ipv4Net::from))
                    })
                    .collect();
                Matcher::Addresses(nets.map_err(|_| {
                    invalid(
                        site,
                        &path,
                        format!("has ipAddress '{ip}', which is not an IPv4 address or CIDR"),
                    )
                })?)
            }
            (true, false) => {
                let id: ResourceId = subnet.parse()?;
                let prefix = subnet_prefix(&id).ok_or_else(|| {
                    invalid(
                        site,
                        &path,
                        format!("names the subnet '{subnet}', which was not found"),
                    )
                })?;
                Matcher::Subnet {
                    vnet_id: id.parent().map(|p| p.key()).unwrap_or_default(),
                    prefix,
                }
            }
            _ => {
                return Err(invalid(
                    site,
                    &path,
                    "must have exactly one of ipAddress and vnetSubnetResourceId".into(),
                ))
            }
        };
        rules.push(AccessRule {
            name,
            priority: priority as u32,
            allow,
            matcher,
        });
    }
    rules.sort_by_key(|r| r.priority);
    let default_allow = match sc.and_then(|c| c.get(default_key)).and_then(Value::as_str) {
        Some(a) => a.eq_ignore_ascii_case("Allow"),
        // No explicit default: everything when there is no rule, else Azure's
        // implicit "Deny all".
        None => rules.is_empty(),
    };
    Ok(RuleSet {
        rules,
        default_allow,
    })
}

/// A site's access policy. `subnet_prefix` finds a subnet's prefix,
/// `tag_prefixes` a service tag's prefixes in the lab.
pub fn policy(
    site: &GenericResource,
    subnet_prefix: &dyn Fn(&ResourceId) -> Option<Ipv4Net>,
    tag_prefixes: &dyn Fn(&ServiceTag) -> Vec<Ipv4Net>,
) -> Result<AccessPolicy, AzureError> {
    let main = rule_set(
        site,
        "ipSecurityRestrictions",
        "ipSecurityRestrictionsDefaultAction",
        subnet_prefix,
        tag_prefixes,
    )?;
    let use_main = site
        .properties
        .pointer("/siteConfig/scmIpSecurityRestrictionsUseMain")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let scm = if use_main {
        main.clone()
    } else {
        rule_set(
            site,
            "scmIpSecurityRestrictions",
            "scmIpSecurityRestrictionsDefaultAction",
            subnet_prefix,
            tag_prefixes,
        )?
    };
    let public_network_access = !site
        .properties
        .get("publicNetworkAccess")
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("Disabled"));
    Ok(AccessPolicy {
        public_network_access,
        main,
        scm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn site(site_config: Value, extra: Value) -> GenericResource {
        let mut properties = json!({ "siteConfig": site_config });
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                properties[k] = v.clone();
            }
        }
        GenericResource {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/w1"
                .parse()
                .unwrap(),
            type_: "Microsoft.Web/sites".into(),
            name: "w1".into(),
            location: None,
            kind: None,
            sku: None,
            properties,
            tags: None,
            identity: None,
        }
    }

    fn pol(sc: Value, extra: Value) -> Result<AccessPolicy, AzureError> {
        let subnet = |id: &ResourceId| (id.name() == "int").then(|| "10.0.1.0/24".parse().unwrap());
        let tags = |t: &ServiceTag| {
            if t.name().eq_ignore_ascii_case("AzureFrontDoor.Backend") {
                vec!["198.18.9.0/24".parse().unwrap()]
            } else {
                Vec::new()
            }
        };
        policy(&site(sc, extra), &subnet, &tags)
    }

    fn internet(ip: &str) -> Caller {
        Caller::Internet {
            source: ip.parse().unwrap(),
        }
    }

    #[test]
    fn no_rules_allow_everyone() {
        let p = pol(json!({}), json!({})).unwrap();
        assert!(p.decide(false, &internet("203.0.113.7")).allowed);
        assert!(p.decide(true, &internet("203.0.113.7")).allowed);
    }

    #[test]
    fn first_match_by_priority_then_the_implicit_deny() {
        let p = pol(
            json!({ "ipSecurityRestrictions": [
                { "name": "deny-one", "ipAddress": "203.0.113.7/32", "action": "Deny", "priority": 100 },
                { "name": "allow-net", "ipAddress": "203.0.113.0/24", "action": "Allow", "priority": 200 },
                { "name": "fd", "ipAddress": "AzureFrontDoor.Backend", "tag": "ServiceTag", "action": "Allow", "priority": 300 } ] }),
            json!({}),
        )
        .unwrap();
        let d = p.decide(false, &internet("203.0.113.7"));
        assert_eq!((d.allowed, d.rule.as_deref()), (false, Some("deny-one")));
        let d = p.decide(false, &internet("203.0.113.8"));
        assert_eq!((d.allowed, d.rule.as_deref()), (true, Some("allow-net")));
        assert!(
            p.decide(false, &internet("198.18.9.20")).allowed,
            "service tag"
        );
        let d = p.decide(false, &internet("8.8.8.8"));
        assert_eq!(
            (d.allowed, d.rule.as_deref()),
            (false, Some("Default")),
            "implicit Deny all"
        );
        // The scm site has no rules of its own: open.
        assert!(p.decide(true, &internet("8.8.8.8")).allowed);
    }

    #[test]
    fn default_action_scm_use_main_public_access_and_private_endpoints() {
        let p = pol(
            json!({ "ipSecurityRestrictions": [
                { "name": "deny-one", "ipAddress": "203.0.113.7", "action": "Deny", "priority": 100 } ],
                "ipSecurityRestrictionsDefaultAction": "Allow", "scmIpSecurityRestrictionsUseMain": true }),
            json!({}),
        )
        .unwrap();
        assert!(p.decide(false, &internet("8.8.8.8")).allowed);
        assert!(
            !p.decide(true, &internet("203.0.113.7")).allowed,
            "scm uses the main rules"
        );
        assert!(p.decide(false, &Caller::PrivateEndpoint).allowed);
        let closed = pol(json!({}), json!({ "publicNetworkAccess": "Disabled" })).unwrap();
        let d = closed.decide(false, &internet("8.8.8.8"));
        assert_eq!(
            (d.allowed, d.rule.as_deref()),
            (false, Some("PublicNetworkAccessDisabled"))
        );
        assert!(
            closed.decide(false, &Caller::PrivateEndpoint).allowed,
            "a private endpoint still gets in"
        );
    }

    #[test]
    fn subnet_rules_match_service_endpoint_traffic_only() {
        let p = pol(
            json!({ "ipSecurityRestrictions": [{ "name": "int", "priority": 100, "action": "Allow",
                "vnetSubnetResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/int" }] }),
            json!({}),
        )
        .unwrap();
        let vnet =
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/v"
                .to_string();
        let se = |ip: &str| Caller::ServiceEndpoint {
            source: ip.parse().unwrap(),
            vnet_id: vnet.clone(),
        };
        assert!(p.decide(false, &se("10.0.1.4")).allowed);
        assert!(!p.decide(false, &se("10.0.2.4")).allowed);
        assert!(!p.decide(false, &internet("10.0.1.4")).allowed);
    }

    #[test]
    fn bad_rules_are_refused() {
        for sc in [
            json!({ "ipSecurityRestrictions": [{ "ipAddress": "300.1.1.1/32", "priority": 100 }] }),
            json!({ "ipSecurityRestrictions": [{ "ipAddress": "1.1.1.1", "action": "Maybe", "priority": 100 }] }),
            json!({ "ipSecurityRestrictions": [{ "ipAddress": "1.1.1.1", "priority": 0 }] }),
            json!({ "ipSecurityRestrictions": [{ "ipAddress": "NoSuchTag", "tag": "ServiceTag", "priority": 1 }] }),
            json!({ "ipSecurityRestrictions": [{ "priority": 1 }] }),
        ] {
            assert_eq!(
                pol(sc.clone(), json!({})).unwrap_err().code,
                "InvalidAccessRestriction",
                "{sc}"
            );
        }
    }
}
