//! `az network private-endpoint ...` and `... dns-zone-group ...`: ARM PUTs of
//! `Microsoft.Network/privateEndpoints` and its `privateDnsZoneGroups`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::network::Rg;
use super::Global;
use crate::api::client::request;
use crate::model::ResourceId;

#[derive(Subcommand, Debug)]
pub enum PrivateEndpointCmd {
    /// Create a private endpoint to a storage account, key vault, registry or web app.
    Create(Box<CreateArgs>),
    Show(EndpointRef),
    Delete(EndpointRef),
    /// The private endpoints of a resource group.
    List {
        #[command(flatten)]
        rg: Rg,
    },
    /// The endpoint's DNS zone group (the A records of its target in private zones).
    #[command(subcommand, name = "dns-zone-group")]
    DnsZoneGroup(ZoneGroupCmd),
}

/// `-g RG -n NAME`.
#[derive(Args, Debug)]
pub struct EndpointRef {
    #[command(flatten)]
    rg: Rg,
    #[arg(short = 'n', long)]
    name: String,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    endpoint: EndpointRef,
    /// The subnet's name (with --vnet-name) or id.
    #[arg(long)]
    subnet: String,
    #[arg(long)]
    vnet_name: Option<String>,
    /// The id of the resource to connect to.
    #[arg(long)]
    private_connection_resource_id: String,
    /// blob, file, vault, registry or sites.
    #[arg(long, alias = "group-ids")]
    group_id: Option<String>,
    #[arg(long)]
    connection_name: String,
    /// Region [default: the virtual network's].
    #[arg(short = 'l', long)]
    location: Option<String>,
    /// customNetworkInterfaceName [default: `<name>.nic.<guid>`].
    #[arg(long)]
    nic_name: Option<String>,
    /// Ask the target's owner for approval (the connection stays Pending).
    #[arg(long)]
    manual_request: bool,
    #[arg(long)]
    request_message: Option<String>,
    /// A static address: `name=N private-ip-address=IP [group-id=G] [member-name=M]`.
    #[arg(long, num_args = 1..)]
    ip_config: Vec<String>,
}

impl EndpointRef {
    fn id(&self) -> ResourceId {
        self.rg
            .id("Microsoft.Network", "privateEndpoints", &self.name)
    }
}

#[derive(Subcommand, Debug)]
pub enum ZoneGroupCmd {
    /// Create (or replace) the zone group with one private DNS zone.
    Create(ZoneArgs),
    /// Add a private DNS zone to the zone group.
    Add(ZoneArgs),
    Show(ZoneGroupRef),
    Delete(ZoneGroupRef),
    List {
        #[command(flatten)]
        rg: Rg,
        #[arg(long)]
        endpoint_name: String,
    },
}

/// `-g RG --endpoint-name PE -n GROUP`.
#[derive(Args, Debug)]
pub struct ZoneGroupRef {
    #[command(flatten)]
    rg: Rg,
    #[arg(long)]
    endpoint_name: String,
    #[arg(short = 'n', long)]
    name: String,
}

impl ZoneGroupRef {
    fn id(&self) -> ResourceId {
        self.rg
            .id("Microsoft.Network", "privateEndpoints", &self.endpoint_name)
            .child("privateDnsZoneGroups", &self.name)
    }
}

#[derive(Args, Debug)]
pub struct ZoneArgs {
    #[command(flatten)]
    group: ZoneGroupRef,
    /// The private DNS zone's name (in the group) or id.
    #[arg(long)]
    private_dns_zone: String,
    /// The name of the zone's configuration in the group.
    #[arg(long)]
    zone_name: String,
}

impl ZoneArgs {
    fn config(&self) -> Value {
        let zone = self.group.rg.resolve(
            "Microsoft.Network",
            "privateDnsZones",
            &self.private_dns_zone,
        );
        json!({ "name": self.zone_name, "properties": { "privateDnsZoneId": zone } })
    }
}

/// az's shorthand `key=value` words of one `--ip-config` as an ipConfigurations entry.
fn ip_config(words: &[String]) -> Result<Value> {
    let mut props = Map::new();
    let mut name = None;
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            bail!("--ip-config takes key=value words, not '{w}'");
        };
        match k {
            "name" => name = Some(v.to_string()),
            "private-ip-address" | "private_ip_address" => {
                props.insert("privateIPAddress".into(), json!(v));
            }
            "group-id" | "group_id" => {
                props.insert("groupId".into(), json!(v));
            }
            "member-name" | "member_name" => {
                props.insert("memberName".into(), json!(v));
            }
            other => bail!(
                "--ip-config: unknown key '{other}' (name, private-ip-address, group-id, member-name)"
            ),
        }
    }
    let Some(name) = name else {
        bail!("--ip-config needs name=NAME");
    };
    Ok(json!({ "name": name, "properties": props }))
}

/// The body of `private-endpoint create`.
fn endpoint_body(a: &CreateArgs, location: Option<String>) -> Result<Value> {
    let mut conn = json!({
        "privateLinkServiceId": a.private_connection_resource_id,
        "groupIds": a.group_id.iter().collect::<Vec<_>>(),
    });
    if let Some(m) = &a.request_message {
        conn["requestMessage"] = json!(m);
    }
    let conn = json!([{ "name": a.connection_name, "properties": conn }]);
    let (auto, manual) = if a.manual_request {
        (json!([]), conn)
    } else {
        (conn, json!([]))
    };
    let mut props = json!({
        "subnet": { "id": subnet_id(a)? },
        "privateLinkServiceConnections": auto,
        "manualPrivateLinkServiceConnections": manual,
    });
    if let Some(n) = &a.nic_name {
        props["customNetworkInterfaceName"] = json!(n);
    }
    if !a.ip_config.is_empty() {
        props["ipConfigurations"] = json!([ip_config(&a.ip_config)?]);
    }
    let mut body = json!({ "properties": props });
    if let Some(l) = location {
        body["location"] = json!(l);
    }
    Ok(body)
}

fn subnet_id(a: &CreateArgs) -> Result<String> {
    if a.subnet.starts_with("/subscriptions/") {
        return Ok(a.subnet.clone());
    }
    let Some(vnet) = &a.vnet_name else {
        bail!("incorrect usage: ( --subnet ID | --subnet NAME --vnet-name NAME)");
    };
    Ok(a.endpoint
        .rg
        .id("Microsoft.Network", "virtualNetworks", vnet)
        .child("subnets", &a.subnet)
        .to_string())
}

pub fn run(g: &Global, cmd: PrivateEndpointCmd) -> Result<ExitCode> {
    match cmd {
        PrivateEndpointCmd::Create(a) => {
            // az takes the resource group's region; the lab has no resource
            // groups, so the endpoint takes its VNet's (where it must be).
            let location = match &a.location {
                Some(l) => Some(l.clone()),
                // A VNet that is not there: the PUT says what Azure says.
                None => {
                    let subnet: ResourceId = subnet_id(&a)?.parse()?;
                    let vnet = subnet.parent().map(|v| v.to_string()).unwrap_or_default();
                    match request(&g.socket(), &g.principal, "GET", &vnet, None)? {
                        (200, v) => v["location"].as_str().map(str::to_string),
                        _ => None,
                    }
                }
            };
            let body = endpoint_body(&a, location)?;
            g.call("PUT", &a.endpoint.id().to_string(), Some(&body))
        }
        PrivateEndpointCmd::Show(e) => g.call("GET", &e.id().to_string(), None),
        PrivateEndpointCmd::Delete(e) => g.call("DELETE", &e.id().to_string(), None),
        PrivateEndpointCmd::List { rg } => {
            super::network::list_of_type(g, &rg, "Microsoft.Network/privateEndpoints")
        }
        PrivateEndpointCmd::DnsZoneGroup(cmd) => zone_group(g, cmd),
    }
}

fn zone_group(g: &Global, cmd: ZoneGroupCmd) -> Result<ExitCode> {
    match cmd {
        ZoneGroupCmd::Create(z) => g.call(
            "PUT",
            &z.group.id().to_string(),
            Some(&json!({ "properties": { "privateDnsZoneConfigs": [z.config()] } })),
        ),
        ZoneGroupCmd::Add(z) => {
            // az reads the group, appends the zone and writes it back.
            let Some(current) = g.fetch(&z.group.id().to_string())? else {
                return Ok(ExitCode::FAILURE);
            };
            let mut configs: Vec<Value> = current["properties"]["privateDnsZoneConfigs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|c| json!({ "name": c["name"], "properties": { "privateDnsZoneId": c["properties"]["privateDnsZoneId"] } }))
                .collect();
            configs.push(z.config());
            g.call(
                "PUT",
                &z.group.id().to_string(),
                Some(&json!({ "properties": { "privateDnsZoneConfigs": configs } })),
            )
        }
        ZoneGroupCmd::Show(r) => g.call("GET", &r.id().to_string(), None),
        ZoneGroupCmd::Delete(r) => g.call("DELETE", &r.id().to_string(), None),
        ZoneGroupCmd::List { rg, endpoint_name } => {
            let pe = rg.id("Microsoft.Network", "privateEndpoints", &endpoint_name);
            let Some(v) = g.fetch(&pe.to_string())? else {
                return Ok(ExitCode::FAILURE);
            };
            let groups: Vec<Value> = v["properties"]["privateDnsZoneGroups"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut grp| {
                    let name = grp["name"].as_str().unwrap_or_default().to_string();
                    grp["id"] = json!(pe.child("privateDnsZoneGroups", &name).to_string());
                    grp["type"] = json!("Microsoft.Network/privateEndpoints/privateDnsZoneGroups");
                    grp
                })
                .collect();
            g.print(&json!(groups))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: PrivateEndpointCmd,
    }

    fn parse(args: &[&str]) -> PrivateEndpointCmd {
        Cli::try_parse_from(std::iter::once("pe").chain(args.iter().copied()))
            .unwrap()
            .cmd
    }

    #[test]
    fn create_flags_become_the_arm_body() {
        let PrivateEndpointCmd::Create(a) = parse(&[
            "create",
            "-g",
            "rg1",
            "-n",
            "pe1",
            "--vnet-name",
            "vnet1",
            "--subnet",
            "pe",
            "--private-connection-resource-id",
            "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Web/sites/web1",
            "--group-id",
            "sites",
            "--connection-name",
            "c1",
            "--nic-name",
            "pe1-nic",
            "--ip-config",
            "name=cfg",
            "private-ip-address=10.0.2.10",
            "group-id=sites",
            "member-name=sites",
        ]) else {
            panic!("not create")
        };
        let b = endpoint_body(&a, Some("westeurope".into())).unwrap();
        let p = &b["properties"];
        assert_eq!(b["location"], "westeurope");
        assert!(p["subnet"]["id"]
            .as_str()
            .unwrap()
            .ends_with("/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/pe"));
        assert_eq!(p["privateLinkServiceConnections"][0]["name"], "c1");
        assert_eq!(
            p["privateLinkServiceConnections"][0]["properties"]["groupIds"],
            json!(["sites"])
        );
        assert_eq!(p["manualPrivateLinkServiceConnections"], json!([]));
        assert_eq!(p["customNetworkInterfaceName"], "pe1-nic");
        assert_eq!(
            p["ipConfigurations"],
            json!([{"name": "cfg", "properties": {"privateIPAddress": "10.0.2.10", "groupId": "sites", "memberName": "sites"}}])
        );

        let PrivateEndpointCmd::Create(m) = parse(&[
            "create", "-g", "rg1", "-n", "pe1", "--subnet", "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/v/subnets/pe",
            "--private-connection-resource-id", "x", "--group-id", "sites", "--connection-name", "c1",
            "--manual-request", "--request-message", "please",
        ]) else {
            panic!("not create")
        };
        let b = endpoint_body(&m, None).unwrap();
        assert!(b.get("location").is_none());
        assert_eq!(b["properties"]["privateLinkServiceConnections"], json!([]));
        assert_eq!(
            b["properties"]["manualPrivateLinkServiceConnections"][0]["properties"]
                ["requestMessage"],
            "please"
        );
        let PrivateEndpointCmd::Create(bad) = parse(&[
            "create",
            "-g",
            "rg1",
            "-n",
            "pe1",
            "--subnet",
            "pe",
            "--private-connection-resource-id",
            "x",
            "--connection-name",
            "c1",
        ]) else {
            panic!("not create")
        };
        assert!(
            endpoint_body(&bad, None).is_err(),
            "a subnet name needs --vnet-name"
        );
    }

    #[test]
    fn zone_group_flags_name_a_zone_in_the_group() {
        let PrivateEndpointCmd::DnsZoneGroup(ZoneGroupCmd::Create(z)) = parse(&[
            "dns-zone-group",
            "create",
            "-g",
            "rg1",
            "--endpoint-name",
            "pe1",
            "-n",
            "default",
            "--private-dns-zone",
            "privatelink.azurewebsites.net",
            "--zone-name",
            "sites",
        ]) else {
            panic!("not dns-zone-group create")
        };
        assert!(z
            .group
            .id()
            .to_string()
            .ends_with("/privateEndpoints/pe1/privateDnsZoneGroups/default"));
        let c = z.config();
        assert_eq!(c["name"], "sites");
        assert!(c["properties"]["privateDnsZoneId"]
            .as_str()
            .unwrap()
            .ends_with(
                "/providers/Microsoft.Network/privateDnsZones/privatelink.azurewebsites.net"
            ));
    }
}
