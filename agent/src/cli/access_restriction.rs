//! `az webapp config access-restriction add|remove|show|set`: the app's
//! access restrictions (`siteConfig.ipSecurityRestrictions`,
//! `scmIpSecurityRestrictions`, their default actions), read from the site,
//! changed, and written back with one PATCH, as az does.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::az::SiteArgs;
use super::Global;

#[derive(Args, Debug)]
pub struct RuleMatch {
    /// Source CIDR(s), comma-separated (a bare address is a /32).
    #[arg(long)]
    ip_address: Option<String>,
    /// A service tag, e.g. AzureFrontDoor.Backend.
    #[arg(long)]
    service_tag: Option<String>,
    /// The VNet (name in the app's resource group, or id) of `--subnet`.
    #[arg(long)]
    vnet_name: Option<String>,
    /// A subnet name (with `--vnet-name`) or id.
    #[arg(long)]
    subnet: Option<String>,
    /// The rule is for the scm (Kudu) site.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    scm_site: bool,
}

#[derive(Subcommand, Debug)]
pub enum AccessRestrictionCmd {
    /// Add a rule.
    Add {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long)]
        rule_name: Option<String>,
        /// Allow or Deny.
        #[arg(long)]
        action: String,
        #[arg(long)]
        priority: u32,
        #[arg(long)]
        description: Option<String>,
        /// Do not add the Microsoft.Web service endpoint to `--subnet`.
        #[arg(long, default_value_t = false)]
        ignore_missing_endpoint: bool,
        #[command(flatten)]
        what: RuleMatch,
    },
    /// Remove the rules that match by name, address, tag or subnet.
    Remove {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long)]
        rule_name: Option<String>,
        #[command(flatten)]
        what: RuleMatch,
    },
    /// The app's and the scm site's rules.
    Show {
        #[command(flatten)]
        site: SiteArgs,
    },
    /// Default actions and whether the scm site uses the app's rules.
    Set {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long)]
        use_same_restrictions_for_scm_site: Option<bool>,
        /// Allow or Deny: what no rule matches gets.
        #[arg(long)]
        default_action: Option<String>,
        #[arg(long)]
        scm_default_action: Option<String>,
    },
}

const KEYS: [&str; 5] = [
    "ipSecurityRestrictions",
    "scmIpSecurityRestrictions",
    "scmIpSecurityRestrictionsUseMain",
    "ipSecurityRestrictionsDefaultAction",
    "scmIpSecurityRestrictionsDefaultAction",
];

/// The restrictions part of a site's `siteConfig`, as `show` prints it.
fn restrictions(site: &Value) -> Map<String, Value> {
    let sc = site.pointer("/properties/siteConfig");
    let mut out = Map::new();
    for k in KEYS {
        let v = sc.and_then(|c| c.get(k)).cloned();
        let v = match (k, v) {
            (_, Some(v)) if !v.is_null() => v,
            ("ipSecurityRestrictions" | "scmIpSecurityRestrictions", _) => json!([]),
            ("scmIpSecurityRestrictionsUseMain", _) => json!(false),
            _ => continue,
        };
        out.insert(k.into(), v);
    }
    out
}

fn list_key(scm: bool) -> &'static str {
    if scm {
        "scmIpSecurityRestrictions"
    } else {
        "ipSecurityRestrictions"
    }
}

/// A subnet id from `--subnet` (an id, or a name with `--vnet-name`).
fn subnet_id(site: &SiteArgs, what: &RuleMatch) -> Result<Option<String>> {
    let Some(subnet) = &what.subnet else {
        return Ok(None);
    };
    if subnet.starts_with('/') {
        return Ok(Some(subnet.clone()));
    }
    let Some(vnet) = &what.vnet_name else {
        bail!("--subnet by name needs --vnet-name");
    };
    let vnet_id = if vnet.starts_with('/') {
        vnet.clone()
    } else {
        site.sibling("Microsoft.Network", "virtualNetworks", vnet)
    };
    Ok(Some(format!("{vnet_id}/subnets/{subnet}")))
}

fn patch(g: &Global, site: &SiteArgs, config: Map<String, Value>) -> Result<Option<Value>> {
    let body = json!({ "properties": { "siteConfig": config } });
    let (status, value) = super::request(
        &g.socket(),
        &g.principal,
        "PATCH",
        &site.id().to_string(),
        Some(&body),
    )?;
    if (200..300).contains(&status) {
        Ok(Some(value))
    } else {
        super::print_error(&value);
        Ok(None)
    }
}

pub fn run(g: &Global, cmd: AccessRestrictionCmd) -> Result<ExitCode> {
    match cmd {
        AccessRestrictionCmd::Show { site } => {
            let Some(v) = g.fetch(&site.id().to_string())? else {
                return Ok(ExitCode::FAILURE);
            };
            g.print_value(&Value::Object(restrictions(&v)))
        }
        AccessRestrictionCmd::Add {
            site,
            rule_name,
            action,
            priority,
            description,
            ignore_missing_endpoint,
            what,
        } => {
            let Some(v) = g.fetch(&site.id().to_string())? else {
                return Ok(ExitCode::FAILURE);
            };
            let mut rule = Map::new();
            match (&what.ip_address, &what.service_tag, subnet_id(&site, &what)?) {
                (Some(ip), None, None) => {
                    rule.insert("ipAddress".into(), json!(ip));
                    rule.insert("tag".into(), json!("Default"));
                }
                (None, Some(tag), None) => {
                    rule.insert("ipAddress".into(), json!(tag));
                    rule.insert("tag".into(), json!("ServiceTag"));
                }
                (None, None, Some(subnet)) => {
                    if !ignore_missing_endpoint {
                        add_web_endpoint(g, &subnet)?;
                    }
                    rule.insert("vnetSubnetResourceId".into(), json!(subnet));
                }
                _ => bail!("name exactly one of --ip-address, --service-tag or --subnet (with --vnet-name)"),
            }
            rule.insert("action".into(), json!(action));
            rule.insert("priority".into(), json!(priority));
            if let Some(n) = rule_name {
                rule.insert("name".into(), json!(n));
            }
            if let Some(d) = description {
                rule.insert("description".into(), json!(d));
            }
            let key = list_key(what.scm_site);
            let mut list = restrictions(&v)[key]
                .as_array()
                .cloned()
                .unwrap_or_default();
            list.push(Value::Object(rule));
            let mut cfg = Map::new();
            cfg.insert(key.into(), json!(list));
            match patch(g, &site, cfg)? {
                Some(after) => g.print_value(&restrictions(&after)[key]),
                None => Ok(ExitCode::FAILURE),
            }
        }
        AccessRestrictionCmd::Remove {
            site,
            rule_name,
            what,
        } => {
            let Some(v) = g.fetch(&site.id().to_string())? else {
                return Ok(ExitCode::FAILURE);
            };
            let subnet = subnet_id(&site, &what)?;
            let key = list_key(what.scm_site);
            let list = restrictions(&v)[key]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let field =
                |r: &Value, f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            let same = |a: &str, b: &Option<String>| {
                b.as_deref().is_some_and(|b| a.eq_ignore_ascii_case(b))
            };
            let keep: Vec<Value> = list
                .iter()
                .filter(|r| {
                    !(same(&field(r, "name"), &rule_name)
                        || same(&field(r, "ipAddress"), &what.ip_address)
                        || same(&field(r, "ipAddress"), &what.service_tag)
                        || same(&field(r, "vnetSubnetResourceId"), &subnet))
                })
                .cloned()
                .collect();
            if keep.len() == list.len() {
                bail!("no rule matches; `access-restriction show` lists them");
            }
            let mut cfg = Map::new();
            cfg.insert(key.into(), json!(keep));
            match patch(g, &site, cfg)? {
                Some(after) => g.print_value(&restrictions(&after)[key]),
                None => Ok(ExitCode::FAILURE),
            }
        }
        AccessRestrictionCmd::Set {
            site,
            use_same_restrictions_for_scm_site,
            default_action,
            scm_default_action,
        } => {
            let mut cfg = Map::new();
            if let Some(v) = use_same_restrictions_for_scm_site {
                cfg.insert("scmIpSecurityRestrictionsUseMain".into(), json!(v));
            }
            if let Some(v) = default_action {
                cfg.insert("ipSecurityRestrictionsDefaultAction".into(), json!(v));
            }
            if let Some(v) = scm_default_action {
                cfg.insert("scmIpSecurityRestrictionsDefaultAction".into(), json!(v));
            }
            if cfg.is_empty() {
                bail!("nothing to set: name --use-same-restrictions-for-scm-site, --default-action or --scm-default-action");
            }
            match patch(g, &site, cfg)? {
                Some(after) => g.print_value(&Value::Object(restrictions(&after))),
                None => Ok(ExitCode::FAILURE),
            }
        }
    }
}

/// As az does without `--ignore-missing-endpoint`: the subnet gets the
/// `Microsoft.Web` service endpoint if it lacks it.
fn add_web_endpoint(g: &Global, subnet: &str) -> Result<()> {
    let Some(s) = g.fetch(subnet)? else {
        bail!("the subnet {subnet} was not found");
    };
    let mut endpoints = s
        .pointer("/properties/serviceEndpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has = endpoints.iter().any(|e| {
        e.get("service")
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case("Microsoft.Web"))
    });
    if !has {
        endpoints.push(json!({ "service": "Microsoft.Web" }));
        let body = json!({ "properties": { "serviceEndpoints": endpoints } });
        let (status, value) =
            super::request(&g.socket(), &g.principal, "PATCH", subnet, Some(&body))?;
        if !(200..300).contains(&status) {
            super::print_error(&value);
            bail!("could not add the Microsoft.Web service endpoint to {subnet}");
        }
    }
    Ok(())
}
