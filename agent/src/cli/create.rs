//! The create verbs Azure's tutorials use, with az's flags: each builds
//! the ARM body az would send and PUTs it (`group create`, `network vnet
//! create`, `network vnet subnet create|delete`, `network nsg create|delete`,
//! `network route-table create`, `network public-ip create`, `network nat
//! gateway create`, `appservice plan create`, `webapp create`,
//! `functionapp create`, `vm create`, `storage account create`,
//! `keyvault create`).

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::network::Rg;
use super::Global;
use crate::model::DEFAULT_LOCATION;

/// `-l/--location`, the resource group's region when not given.
#[derive(Args, Debug, Clone)]
pub struct Location {
    #[arg(short = 'l', long)]
    location: Option<String>,
}

impl Location {
    pub(super) fn get(&self) -> String {
        self.location
            .clone()
            .unwrap_or_else(|| DEFAULT_LOCATION.into())
    }
}

/// `-n/--name` (or `-g/--resource-group`) of a group, and its subscription.
#[derive(Args, Debug)]
pub struct GroupName {
    #[arg(
        short = 'n',
        long = "name",
        visible_alias = "resource-group",
        short_alias = 'g'
    )]
    name: String,
    #[arg(long, default_value = crate::template::DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Delete a resource group: every resource in it.
    Delete {
        #[command(flatten)]
        group: GroupName,
        #[arg(short = 'y', long)]
        yes: bool,
        #[arg(long)]
        no_wait: bool,
    },
    /// Create a resource group (the lab keeps no group object: groups exist
    /// as the resources in them do; this answers as az does).
    Create {
        #[command(flatten)]
        group: GroupName,
        #[command(flatten)]
        location: Location,
    },
}

pub fn group(g: &Global, cmd: GroupCmd) -> Result<ExitCode> {
    let (GroupName { name, subscription }, location) = match cmd {
        GroupCmd::Delete { group, .. } => return group_delete(g, &group.name, &group.subscription),
        GroupCmd::Create { group, location } => (group, location),
    };
    g.print_value(&json!({
        "id": format!("/subscriptions/{subscription}/resourceGroups/{name}"),
        "location": location.get(),
        "managedBy": null,
        "name": name,
        "properties": {"provisioningState": "Succeeded"},
        "tags": null,
        "type": "Microsoft.Resources/resourceGroups"
    }))
}

#[derive(Args, Debug)]
pub struct VnetCreate {
    #[command(flatten)]
    rg: Rg,
    #[arg(short = 'n', long)]
    name: String,
    #[command(flatten)]
    location: Location,
    #[arg(long, num_args = 1.., default_values_t = vec!["10.0.0.0/16".to_string()])]
    address_prefixes: Vec<String>,
    #[arg(long)]
    subnet_name: Option<String>,
    #[arg(long, num_args = 1..)]
    subnet_prefixes: Vec<String>,
    #[arg(long, visible_alias = "network-security-group")]
    nsg: Option<String>,
}

pub fn vnet_create(g: &Global, a: VnetCreate) -> Result<ExitCode> {
    let mut subnets = Vec::new();
    if let Some(s) = &a.subnet_name {
        let prefixes = if a.subnet_prefixes.is_empty() {
            vec!["10.0.0.0/24".to_string()]
        } else {
            a.subnet_prefixes.clone()
        };
        let mut p = prefix_props(&prefixes);
        if let Some(n) = &a.nsg {
            p.insert(
                "networkSecurityGroup".into(),
                json!({"id": a.rg.resolve("Microsoft.Network", "networkSecurityGroups", n)}),
            );
        }
        subnets.push(json!({"name": s, "properties": p}));
    }
    let id = a.rg.id("Microsoft.Network", "virtualNetworks", &a.name);
    g.call("PUT", &id.to_string(), Some(&json!({
        "location": a.location.get(),
        "properties": {"addressSpace": {"addressPrefixes": a.address_prefixes}, "subnets": subnets}
    })))
}

fn prefix_props(prefixes: &[String]) -> Map<String, Value> {
    let mut p = Map::new();
    if prefixes.len() == 1 {
        p.insert("addressPrefix".into(), json!(prefixes[0]));
    } else {
        p.insert("addressPrefixes".into(), json!(prefixes));
    }
    p
}

/// The subnet flags `create` and `update` share.
#[derive(Args, Debug, Default)]
pub struct SubnetFlags {
    #[arg(long, num_args = 1.., visible_alias = "address-prefix")]
    pub address_prefixes: Vec<String>,
    /// Service names to delegate to, e.g. Microsoft.Web/serverFarms.
    #[arg(long, num_args = 1..)]
    pub delegations: Vec<String>,
    /// Service endpoints, e.g. Microsoft.Storage Microsoft.Web.
    #[arg(long, num_args = 1..)]
    pub service_endpoints: Vec<String>,
    #[arg(long, visible_alias = "network-security-group")]
    pub nsg: Option<String>,
    #[arg(long)]
    pub route_table: Option<String>,
    #[arg(long)]
    pub nat_gateway: Option<String>,
    /// Enabled or Disabled.
    #[arg(long)]
    pub private_endpoint_network_policies: Option<String>,
    /// The older flag: with no value, true.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = az_bool)]
    pub disable_private_endpoint_network_policies: Option<bool>,
}

impl SubnetFlags {
    /// These flags over `p` (a subnet's properties); "" dissociates.
    pub fn apply(&self, rg: &Rg, p: &mut Map<String, Value>) {
        if !self.address_prefixes.is_empty() {
            p.remove("addressPrefix");
            p.remove("addressPrefixes");
            p.extend(prefix_props(&self.address_prefixes));
        }
        if !self.delegations.is_empty() {
            let d: Vec<Value> = self
                .delegations
                .iter()
                .filter(|s| !s.is_empty())
                .enumerate()
                .map(|(i, s)| json!({"name": if i == 0 { "delegation".to_string() } else { format!("delegation{i}") }, "properties": {"serviceName": s}}))
                .collect();
            p.insert("delegations".into(), json!(d));
        }
        if !self.service_endpoints.is_empty() {
            let e: Vec<Value> = self
                .service_endpoints
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| json!({"service": s}))
                .collect();
            p.insert("serviceEndpoints".into(), json!(e));
        }
        for (key, value, ty) in [
            ("networkSecurityGroup", &self.nsg, "networkSecurityGroups"),
            ("routeTable", &self.route_table, "routeTables"),
            ("natGateway", &self.nat_gateway, "natGateways"),
        ] {
            if let Some(v) = value {
                let v = if v.is_empty() {
                    Value::Null
                } else {
                    json!({"id": rg.resolve("Microsoft.Network", ty, v)})
                };
                p.insert(key.into(), v);
            }
        }
        let policies = self.private_endpoint_network_policies.clone().or_else(|| {
            self.disable_private_endpoint_network_policies.map(|d| {
                if d {
                    "Disabled".to_string()
                } else {
                    "Enabled".to_string()
                }
            })
        });
        if let Some(v) = policies {
            p.insert("privateEndpointNetworkPolicies".into(), json!(v));
        }
    }
}

#[derive(Args, Debug)]
pub struct SubnetCreate {
    #[command(flatten)]
    subnet: super::network::SubnetArgs,
    #[command(flatten)]
    flags: SubnetFlags,
}

pub fn subnet_create(g: &Global, a: SubnetCreate) -> Result<ExitCode> {
    if a.flags.address_prefixes.is_empty() {
        bail!("the following arguments are required: --address-prefixes");
    }
    let mut p = Map::new();
    a.flags.apply(a.subnet.rg(), &mut p);
    g.call(
        "PUT",
        &a.subnet.id().to_string(),
        Some(&json!({ "properties": p })),
    )
}

/// `network nsg create`, `network route-table create`, `network public-ip
/// create`, `network nat gateway create`, `network private-dns zone create`:
/// a named resource with a location and a few properties.
#[derive(Args, Debug)]
pub struct Named {
    #[command(flatten)]
    pub rg: Rg,
    #[arg(short = 'n', long)]
    pub name: String,
    #[command(flatten)]
    location: Location,
}

pub fn nsg_create(g: &Global, a: Named) -> Result<ExitCode> {
    let id =
        a.rg.id("Microsoft.Network", "networkSecurityGroups", &a.name);
    g.call(
        "PUT",
        &id.to_string(),
        Some(&json!({"location": a.location.get(), "properties": {"securityRules": []}})),
    )
}

#[derive(Args, Debug)]
pub struct RouteTableCreate {
    #[command(flatten)]
    named: Named,
    /// Don't propagate routes learned by BGP.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = az_bool)]
    disable_bgp_route_propagation: Option<bool>,
}

pub fn route_table_create(g: &Global, a: RouteTableCreate) -> Result<ExitCode> {
    let id = a
        .named
        .rg
        .id("Microsoft.Network", "routeTables", &a.named.name);
    g.call("PUT", &id.to_string(), Some(&json!({
        "location": a.named.location.get(),
        "properties": {"disableBgpRoutePropagation": a.disable_bgp_route_propagation.unwrap_or(false), "routes": []}
    })))
}

#[derive(Args, Debug)]
pub struct PublicIpCreate {
    #[command(flatten)]
    named: Named,
    #[arg(long, default_value = "Standard")]
    sku: String,
    #[arg(long, default_value = "Static")]
    allocation_method: String,
    #[arg(long, default_value = "IPv4")]
    version: String,
    #[arg(short = 'z', long, num_args = 1..)]
    zone: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum PublicIpCmd {
    /// Create a public IP address (from the lab's public pool).
    Create(PublicIpCreate),
    /// Show a public IP address (its `properties.ipAddress`).
    Show {
        #[command(flatten)]
        rg: super::network::Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
}

pub fn public_ip(g: &Global, cmd: PublicIpCmd) -> Result<ExitCode> {
    let a = match cmd {
        PublicIpCmd::Create(a) => a,
        PublicIpCmd::Show { rg, name } => {
            let id = rg.id("Microsoft.Network", "publicIPAddresses", &name);
            return g.call("GET", &id.to_string(), None);
        }
    };
    let id = a
        .named
        .rg
        .id("Microsoft.Network", "publicIPAddresses", &a.named.name);
    let mut body = json!({
        "location": a.named.location.get(),
        "sku": {"name": a.sku, "tier": "Regional"},
        "properties": {"publicIPAllocationMethod": a.allocation_method, "publicIPAddressVersion": a.version}
    });
    if !a.zone.is_empty() {
        body["zones"] = json!(a.zone);
    }
    g.call("PUT", &id.to_string(), Some(&body))
}

#[derive(Subcommand, Debug)]
pub enum NatCmd {
    /// NAT gateways.
    #[command(subcommand)]
    Gateway(NatGatewayCmd),
}

#[derive(Subcommand, Debug)]
pub enum NatGatewayCmd {
    /// Create a NAT gateway.
    Create {
        #[command(flatten)]
        named: Named,
        #[arg(long, num_args = 1..)]
        public_ip_addresses: Vec<String>,
        #[arg(long, num_args = 1..)]
        public_ip_prefixes: Vec<String>,
        #[arg(long, default_value_t = 4)]
        idle_timeout: u32,
    },
}

pub fn nat(g: &Global, cmd: NatCmd) -> Result<ExitCode> {
    let NatCmd::Gateway(NatGatewayCmd::Create {
        named,
        public_ip_addresses,
        public_ip_prefixes,
        idle_timeout,
    }) = cmd;
    let ids = |names: &[String], ty: &str| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"id": named.rg.resolve("Microsoft.Network", ty, n)}))
            .collect()
    };
    let id = named.rg.id("Microsoft.Network", "natGateways", &named.name);
    g.call(
        "PUT",
        &id.to_string(),
        Some(&json!({
            "location": named.location.get(),
            "sku": {"name": "Standard"},
            "properties": {
                "idleTimeoutInMinutes": idle_timeout,
                "publicIpAddresses": ids(&public_ip_addresses, "publicIPAddresses"),
                "publicIpPrefixes": ids(&public_ip_prefixes, "publicIPPrefixes"),
            }
        })),
    )
}

#[derive(Args, Debug)]
pub struct PlanCreate {
    #[command(flatten)]
    named: Named,
    #[arg(long, default_value = "B1")]
    sku: String,
    #[arg(long)]
    is_linux: bool,
    #[arg(long, default_value_t = 1)]
    number_of_workers: u32,
}

pub fn plan_create(g: &Global, a: PlanCreate) -> Result<ExitCode> {
    let id = a.named.rg.id("Microsoft.Web", "serverfarms", &a.named.name);
    g.call(
        "PUT",
        &id.to_string(),
        Some(&json!({
            "location": a.named.location.get(),
            "kind": if a.is_linux { "linux" } else { "app" },
            "sku": {"name": plan_sku(&a.sku).replace("V", "v"), "capacity": a.number_of_workers},
            "properties": {"reserved": a.is_linux}
        })),
    )
}

/// az's SKU names: the tier words it accepts (`FREE`, `SHARED`, `BASIC`,
/// `STANDARD`, `PREMIUM...`) or a SKU (`B1`, `P1V3`, `EP1`).
pub fn plan_sku(sku: &str) -> String {
    match sku.to_ascii_uppercase().as_str() {
        "FREE" => "F1".into(),
        "SHARED" => "D1".into(),
        "BASIC" => "B1".into(),
        "STANDARD" => "S1".into(),
        "PREMIUM" => "P1".into(),
        "PREMIUMV2" => "P1V2".into(),
        "PREMIUMV3" => "P1V3".into(),
        other => other.to_string(),
    }
}

/// `webapp create` and `functionapp create`.
#[derive(Args, Debug)]
pub struct AppCreate {
    #[command(flatten)]
    rg: Rg,
    #[arg(short = 'n', long)]
    name: String,
    /// The plan (name or id).
    #[arg(short = 'p', long)]
    plan: Option<String>,
    /// e.g. "NODE:20-lts", "PYTHON:3.12", "DOTNETCORE:8.0".
    #[arg(short = 'r', long)]
    runtime: Option<String>,
    /// A VNet (name or id) to integrate with; with --subnet.
    #[arg(long)]
    vnet: Option<String>,
    #[arg(long)]
    subnet: Option<String>,
    /// The command the app's instances run (the lab's appCommandLine).
    #[arg(long)]
    startup_file: Option<String>,
    /// functionapp: the storage account it uses.
    #[arg(short = 's', long)]
    storage_account: Option<String>,
    /// functionapp: a Consumption plan's region (the lab needs a plan: use --plan).
    #[arg(short = 'c', long)]
    consumption_plan_location: Option<String>,
    #[arg(long)]
    functions_version: Option<String>,
    #[arg(long)]
    os_type: Option<String>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = az_bool)]
    https_only: Option<bool>,
}

pub fn app_create(g: &Global, a: AppCreate, function: bool) -> Result<ExitCode> {
    let Some(plan) = &a.plan else {
        if a.consumption_plan_location.is_some() {
            bail!("the lab has no Consumption plans (they have no VNet integration); create a plan with `appservice plan create --sku EP1` or P1V3 and pass --plan");
        }
        bail!("the following arguments are required: --plan/-p");
    };
    let plan_id = a.rg.resolve("Microsoft.Web", "serverfarms", plan);
    let mut site_config = Map::new();
    if let Some(r) = &a.runtime {
        site_config.insert(
            "linuxFxVersion".into(),
            json!(r.replace(':', "|").to_uppercase()),
        );
    }
    if let Some(s) = &a.startup_file {
        site_config.insert("appCommandLine".into(), json!(s));
    }
    let mut settings = Vec::new();
    if function {
        settings.push(json!({"name": "FUNCTIONS_EXTENSION_VERSION", "value": format!("~{}", a.functions_version.clone().unwrap_or("4".into()))}));
        if let Some(sa) = &a.storage_account {
            settings.push(json!({"name": "AzureWebJobsStorage__accountName", "value": sa}));
        }
    }
    if !settings.is_empty() {
        site_config.insert("appSettings".into(), json!(settings));
    }
    let mut props = json!({"serverFarmId": plan_id, "siteConfig": site_config});
    if let Some(h) = a.https_only {
        props["httpsOnly"] = json!(h);
    }
    match (&a.vnet, &a.subnet) {
        (Some(v), Some(s)) => {
            props["virtualNetworkSubnetId"] = json!(if s.starts_with("/subscriptions/") {
                s.clone()
            } else {
                format!(
                    "{}/subnets/{s}",
                    a.rg.resolve("Microsoft.Network", "virtualNetworks", v)
                )
            });
        }
        (None, Some(s)) if s.starts_with("/subscriptions/") => {
            props["virtualNetworkSubnetId"] = json!(s)
        }
        (None, None) => {}
        _ => bail!("--vnet and --subnet go together (or --subnet with a full subnet id)"),
    }
    let linux = a
        .os_type
        .as_deref()
        .is_none_or(|o| o.eq_ignore_ascii_case("linux"));
    let kind = match (function, linux) {
        (true, true) => "functionapp,linux",
        (true, false) => "functionapp",
        (false, true) => "app,linux",
        (false, false) => "app",
    };
    let id = a.rg.id("Microsoft.Web", "sites", &a.name);
    g.call(
        "PUT",
        &id.to_string(),
        Some(&json!({"kind": kind, "location": DEFAULT_LOCATION, "properties": props})),
    )
}

#[derive(Subcommand, Debug)]
pub enum VmCmd {
    /// A lab VM: a namespace with a NIC in the subnet (and a public IP).
    Create(Box<VmCreate>),
}

#[derive(Args, Debug)]
pub struct VmCreate {
    #[command(flatten)]
    named: Named,
    /// Accepted as az has it (the lab's VMs run the host's programs).
    #[arg(long)]
    image: Option<String>,
    #[arg(long)]
    vnet_name: Option<String>,
    /// The subnet (name with --vnet-name, or an id).
    #[arg(long)]
    subnet: String,
    #[arg(long)]
    private_ip_address: Option<String>,
    /// A public IP to create (a name) or "" for none.
    #[arg(long)]
    public_ip_address: Option<String>,
    #[arg(long)]
    nsg: Option<String>,
    #[arg(long)]
    admin_username: Option<String>,
    #[arg(long)]
    admin_password: Option<String>,
    #[arg(long)]
    generate_ssh_keys: bool,
    #[arg(long)]
    size: Option<String>,
}

pub fn vm(g: &Global, cmd: VmCmd) -> Result<ExitCode> {
    let VmCmd::Create(a) = cmd;
    let rg = &a.named.rg;
    let location = a.named.location.get();
    let subnet = if a.subnet.starts_with("/subscriptions/") {
        a.subnet.clone()
    } else {
        let Some(v) = &a.vnet_name else {
            bail!("--subnet by name needs --vnet-name")
        };
        format!(
            "{}/subnets/{}",
            rg.resolve("Microsoft.Network", "virtualNetworks", v),
            a.subnet
        )
    };
    let name = &a.named.name;
    let mut resources = Vec::new();
    let mut ipconfig = json!({"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"});
    if let Some(ip) = &a.private_ip_address {
        ipconfig["privateIPAllocationMethod"] = json!("Static");
        ipconfig["privateIPAddress"] = json!(ip);
    }
    let pip = match a.public_ip_address.as_deref() {
        Some("") => None,
        Some(p) => Some(p.to_string()),
        None => Some(format!("{name}PublicIP")),
    };
    if let Some(p) = &pip {
        resources.push(json!({"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2023-04-01", "name": p,
            "location": location, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}));
        ipconfig["publicIPAddress"] =
            json!({"id": rg.resolve("Microsoft.Network", "publicIPAddresses", p)});
    }
    let mut nic = json!({"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": format!("{name}VMNic"),
        "location": location, "properties": {"ipConfigurations": [{"name": format!("ipconfig{name}"), "properties": ipconfig}]}});
    if let Some(n) = &a.nsg {
        nic["properties"]["networkSecurityGroup"] =
            json!({"id": rg.resolve("Microsoft.Network", "networkSecurityGroups", n)});
    }
    resources.push(nic);
    resources.push(json!({"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-03-01", "name": name, "location": location,
        "properties": {
            "hardwareProfile": {"vmSize": a.size.clone().unwrap_or("Standard_DS1_v2".into())},
            "networkProfile": {"networkInterfaces": [{"id": rg.resolve("Microsoft.Network", "networkInterfaces", &format!("{name}VMNic"))}]}
        }}));
    // One deployment, as az's `vm create` does (vm_deploy_<hash>).
    let template = json!({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0", "resources": resources});
    let path = rg.deployment(&format!("vm_deploy_{name}"));
    let (status, v) = crate::api::client::request(
        &g.socket(),
        &g.principal,
        "PUT",
        &path,
        Some(
            &json!({"properties": {"mode": "Incremental", "template": template, "parameters": {}}}),
        ),
    )?;
    if !(200..300).contains(&status) {
        super::print_error(&v);
        return Ok(ExitCode::FAILURE);
    }
    let vm = rg.id("Microsoft.Compute", "virtualMachines", name);
    let (_, shown) =
        crate::api::client::request(&g.socket(), &g.principal, "GET", &vm.to_string(), None)?;
    let nic = rg.id(
        "Microsoft.Network",
        "networkInterfaces",
        &format!("{name}VMNic"),
    );
    let (_, nic) =
        crate::api::client::request(&g.socket(), &g.principal, "GET", &nic.to_string(), None)?;
    let ipc = &nic["properties"]["ipConfigurations"][0]["properties"];
    let public = match &pip {
        Some(p) => {
            let (_, pv) = crate::api::client::request(
                &g.socket(),
                &g.principal,
                "GET",
                &rg.resolve("Microsoft.Network", "publicIPAddresses", p),
                None,
            )?;
            pv["properties"]["ipAddress"].clone()
        }
        None => json!(""),
    };
    // az prints a summary of the new VM.
    g.print_value(&json!({
        "id": vm.to_string(),
        "location": location,
        "powerState": "VM running",
        "privateIpAddress": ipc["privateIPAddress"],
        "publicIpAddress": public,
        "resourceGroup": rg.resource_group,
        "zones": "",
        "emulator": shown.get("emulator").cloned().unwrap_or(Value::Null),
    }))
}

#[derive(Subcommand, Debug)]
pub enum StorageCmd {
    #[command(subcommand)]
    Account(StorageAccountCmd),
}

#[derive(Subcommand, Debug)]
pub enum StorageAccountCmd {
    /// Create a storage account (blob and file endpoints are emulated).
    Create {
        #[command(flatten)]
        named: Named,
        #[arg(long, default_value = "Standard_RAGRS")]
        sku: String,
        #[arg(long, default_value = "StorageV2")]
        kind: String,
        /// Enabled or Disabled.
        #[arg(long)]
        public_network_access: Option<String>,
        /// Allow or Deny.
        #[arg(long)]
        default_action: Option<String>,
    },
    /// The account's firewall rules.
    #[command(subcommand, name = "network-rule")]
    NetworkRule(NetworkRuleCmd),
}

#[derive(Subcommand, Debug)]
pub enum NetworkRuleCmd {
    /// Admit a subnet (service endpoint traffic) or a public address or range.
    Add {
        #[command(flatten)]
        rg: super::network::Rg,
        #[arg(long)]
        account_name: String,
        /// A subnet: its name (with --vnet-name) or its id.
        #[arg(long, conflicts_with = "ip_address")]
        subnet: Option<String>,
        #[arg(long, requires = "subnet")]
        vnet_name: Option<String>,
        /// A public IPv4 address or CIDR range.
        #[arg(long, required_unless_present = "subnet")]
        ip_address: Option<String>,
    },
    /// The account's virtual network and IP rules.
    List {
        #[command(flatten)]
        rg: super::network::Rg,
        #[arg(long)]
        account_name: String,
    },
}

fn network_rule(g: &Global, cmd: NetworkRuleCmd) -> Result<ExitCode> {
    match cmd {
        NetworkRuleCmd::List { rg, account_name } => {
            let id = rg.id("Microsoft.Storage", "storageAccounts", &account_name);
            match g.fetch(&id.to_string())? {
                Some(v) => {
                    let acls = &v["properties"]["networkAcls"];
                    g.print_value(&json!({
                        "ipRules": acls["ipRules"].as_array().cloned().unwrap_or_default(),
                        "virtualNetworkRules": acls["virtualNetworkRules"].as_array().cloned().unwrap_or_default(),
                    }))
                }
                None => Ok(ExitCode::FAILURE),
            }
        }
        NetworkRuleCmd::Add {
            rg,
            account_name,
            subnet,
            vnet_name,
            ip_address,
        } => {
            let id = rg.id("Microsoft.Storage", "storageAccounts", &account_name);
            let (key, rule) = match (subnet, ip_address) {
                (Some(s), _) => {
                    let subnet_id = match vnet_name {
                        Some(v) => rg
                            .id("Microsoft.Network", "virtualNetworks", &v)
                            .child("subnets", &s)
                            .to_string(),
                        None => s,
                    };
                    (
                        "virtualNetworkRules",
                        json!({ "id": subnet_id, "action": "Allow" }),
                    )
                }
                (None, Some(ip)) => ("ipRules", json!({ "value": ip, "action": "Allow" })),
                (None, None) => anyhow::bail!("give --subnet or --ip-address"),
            };
            g.update(&id.to_string(), |v| {
                let acls = &mut v["properties"]["networkAcls"];
                if acls.is_null() {
                    *acls = json!({ "defaultAction": "Allow" });
                }
                match acls[key].as_array_mut() {
                    Some(rules) => rules.push(rule),
                    None => acls[key] = json!([rule]),
                }
                Ok(())
            })
        }
    }
}

pub fn storage(g: &Global, cmd: StorageCmd) -> Result<ExitCode> {
    let (named, sku, kind, public_network_access, default_action) = match cmd {
        StorageCmd::Account(StorageAccountCmd::NetworkRule(r)) => return network_rule(g, r),
        StorageCmd::Account(StorageAccountCmd::Create {
            named,
            sku,
            kind,
            public_network_access,
            default_action,
        }) => (named, sku, kind, public_network_access, default_action),
    };
    let mut props = json!({"minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": false});
    if let Some(p) = public_network_access {
        props["publicNetworkAccess"] = json!(p);
    }
    if let Some(d) = default_action {
        props["networkAcls"] = json!({"defaultAction": d, "bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": []});
    }
    let id = named
        .rg
        .id("Microsoft.Storage", "storageAccounts", &named.name);
    g.call("PUT", &id.to_string(), Some(&json!({"location": named.location.get(), "kind": kind, "sku": {"name": sku}, "properties": props})))
}

#[derive(Subcommand, Debug)]
pub enum KeyvaultCmd {
    /// Create a key vault.
    Create {
        #[command(flatten)]
        named: Named,
        #[arg(long, default_value = "standard")]
        sku: String,
        #[arg(long)]
        public_network_access: Option<String>,
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = az_bool)]
        enable_rbac_authorization: Option<bool>,
    },
    #[command(flatten)]
    More(KeyvaultMore),
}

pub fn keyvault(g: &Global, cmd: KeyvaultCmd) -> Result<ExitCode> {
    let (named, sku, public_network_access, enable_rbac_authorization) = match cmd {
        KeyvaultCmd::More(more) => return keyvault_more(g, more),
        KeyvaultCmd::Create {
            named,
            sku,
            public_network_access,
            enable_rbac_authorization,
        } => (named, sku, public_network_access, enable_rbac_authorization),
    };
    let mut props = json!({
        "tenantId": crate::model::LAB_TENANT_ID,
        "sku": {"family": "A", "name": sku},
        "enableRbacAuthorization": enable_rbac_authorization.unwrap_or(true),
        "accessPolicies": []
    });
    if let Some(p) = public_network_access {
        props["publicNetworkAccess"] = json!(p);
    }
    let id = named.rg.id("Microsoft.KeyVault", "vaults", &named.name);
    g.call(
        "PUT",
        &id.to_string(),
        Some(&json!({"location": named.location.get(), "properties": props})),
    )
}

/// az's booleans: true/false in any case, yes/no, 1/0.
pub fn az_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Ok(true),
        "false" | "no" | "0" | "n" => Ok(false),
        _ => Err(format!("'{s}' is not a boolean (true or false)")),
    }
}

/// The id of the `type_` resource named `name` (in `rg` if given, else
/// anywhere in the lab), as az's `show --name` finds it.
fn find(g: &Global, type_: &str, name: &str, rg: Option<&str>) -> Result<Option<String>> {
    let q = rg
        .map(|r| format!("?resourceGroup={}", crate::api::client::encode(r)))
        .unwrap_or_default();
    let (status, v) = crate::api::client::request(
        &g.socket(),
        &g.principal,
        "GET",
        &format!("/resources{q}"),
        None,
    )?;
    if status != 200 {
        super::print_error(&v);
        return Ok(None);
    }
    let hits: Vec<String> = v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(type_))
                && r["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    match hits.as_slice() {
        [one] => Ok(Some(one.clone())),
        [] => {
            eprintln!("ERROR: (ResourceNotFound) The {type_} '{name}' was not found.");
            Ok(None)
        }
        _ => bail!("more than one {type_} is named '{name}': give --resource-group"),
    }
}

#[derive(Subcommand, Debug)]
pub enum KeyvaultMore {
    /// Show a vault (found by name when no group is given).
    Show {
        #[arg(short = 'n', long)]
        name: String,
        #[arg(short = 'g', long = "resource-group")]
        resource_group: Option<String>,
    },
    /// Change a vault's network access.
    Update {
        #[arg(short = 'n', long)]
        name: String,
        #[arg(short = 'g', long = "resource-group")]
        resource_group: Option<String>,
        /// Allow or Deny: the network rules' default action.
        #[arg(long)]
        default_action: Option<String>,
        /// Enabled or Disabled.
        #[arg(long)]
        public_network_access: Option<String>,
    },
    /// Secrets of a vault.
    #[command(subcommand)]
    Secret(SecretCmd),
}

#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Set a secret's value (as the vault's owner, through the lab's ARM).
    Set {
        #[arg(long)]
        vault_name: String,
        #[arg(short = 'n', long)]
        name: String,
        #[arg(long)]
        value: String,
    },
}

pub fn keyvault_more(g: &Global, cmd: KeyvaultMore) -> Result<ExitCode> {
    const VAULT: &str = "Microsoft.KeyVault/vaults";
    match cmd {
        KeyvaultMore::Show {
            name,
            resource_group,
        } => match find(g, VAULT, &name, resource_group.as_deref())? {
            Some(id) => g.call("GET", &id, None),
            None => Ok(ExitCode::FAILURE),
        },
        KeyvaultMore::Update {
            name,
            resource_group,
            default_action,
            public_network_access,
        } => {
            let Some(id) = find(g, VAULT, &name, resource_group.as_deref())? else {
                return Ok(ExitCode::FAILURE);
            };
            let mut p = Map::new();
            if let Some(d) = default_action {
                p.insert(
                    "networkAcls".into(),
                    json!({"defaultAction": d, "bypass": "AzureServices"}),
                );
            }
            if let Some(a) = public_network_access {
                p.insert("publicNetworkAccess".into(), json!(a));
            }
            g.call("PATCH", &id, Some(&json!({"properties": p})))
        }
        KeyvaultMore::Secret(SecretCmd::Set {
            vault_name,
            name,
            value,
        }) => {
            let Some(id) = find(g, VAULT, &vault_name, None)? else {
                return Ok(ExitCode::FAILURE);
            };
            g.call(
                "PUT",
                &format!("{id}/secrets/{name}"),
                Some(&json!({"properties": {"value": value}})),
            )
        }
    }
}

/// `az group delete`: every resource of the group, dependents first (each
/// under the rules of a delete).
pub fn group_delete(g: &Global, name: &str, subscription: &str) -> Result<ExitCode> {
    let (status, v) = crate::api::client::request(
        &g.socket(),
        &g.principal,
        "GET",
        &format!(
            "/resources?resourceGroup={}",
            crate::api::client::encode(name)
        ),
        None,
    )?;
    if status != 200 {
        super::print_error(&v);
        return Ok(ExitCode::FAILURE);
    }
    let mut left: Vec<String> = v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["id"].as_str().is_some_and(|id| {
                id.to_ascii_lowercase().starts_with(&format!(
                    "/subscriptions/{}/",
                    subscription.to_ascii_lowercase()
                ))
            })
        })
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    // Apps leave their VNets first, as a group delete does in Azure (the
    // plan's link goes with its last app, so the subnet can go too).
    for r in v["value"].as_array().into_iter().flatten() {
        let integrated = r["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.Web/sites"))
            && r["properties"]["virtualNetworkSubnetId"]
                .as_str()
                .is_some_and(|s| !s.is_empty());
        if let (true, Some(id)) = (integrated, r["id"].as_str()) {
            crate::api::client::request(
                &g.socket(),
                &g.principal,
                "DELETE",
                &format!("{id}/networkConfig/virtualNetwork"),
                None,
            )?;
        }
    }
    while !left.is_empty() {
        let mut next = Vec::new();
        let mut last = None;
        for id in &left {
            let (status, v) =
                crate::api::client::request(&g.socket(), &g.principal, "DELETE", id, None)?;
            if !(200..300).contains(&status) && status != 404 {
                next.push(id.clone());
                last = Some(v);
            }
        }
        if next.len() == left.len() {
            super::print_error(&last.unwrap_or_default());
            return Ok(ExitCode::FAILURE);
        }
        left = next;
    }
    Ok(ExitCode::SUCCESS)
}

/// Which peering: `-g RG --vnet-name V -n NAME`.
#[derive(Args, Debug)]
pub struct PeeringRef {
    #[command(flatten)]
    rg: Rg,
    #[arg(short = 'n', long)]
    name: String,
    #[arg(long)]
    vnet_name: String,
}

impl PeeringRef {
    fn path(&self) -> String {
        self.rg
            .id("Microsoft.Network", "virtualNetworks", &self.vnet_name)
            .child("virtualNetworkPeerings", &self.name)
            .to_string()
    }
}

#[derive(Subcommand, Debug)]
pub enum PeeringCmd {
    /// Create (or update) this VNet's side of a peering.
    Create {
        #[command(flatten)]
        peering: PeeringRef,
        /// The remote VNet: a name in the group, or an id.
        #[arg(long)]
        remote_vnet: String,
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = az_bool)]
        allow_vnet_access: Option<bool>,
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = az_bool)]
        allow_forwarded_traffic: Option<bool>,
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = az_bool)]
        allow_gateway_transit: Option<bool>,
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = az_bool)]
        use_remote_gateways: Option<bool>,
    },
    Show(PeeringRef),
    Delete(PeeringRef),
    List {
        #[command(flatten)]
        rg: Rg,
        #[arg(long)]
        vnet_name: String,
    },
    /// Take the remote VNet's current address space (after it changed).
    Sync(PeeringRef),
}

/// `az network vnet peering ...`.
pub fn peering(g: &Global, cmd: PeeringCmd) -> Result<ExitCode> {
    match cmd {
        PeeringCmd::Create {
            peering,
            remote_vnet,
            allow_vnet_access,
            allow_forwarded_traffic,
            allow_gateway_transit,
            use_remote_gateways,
        } => {
            let remote = peering
                .rg
                .resolve("Microsoft.Network", "virtualNetworks", &remote_vnet);
            g.call(
                "PUT",
                &peering.path(),
                Some(&json!({ "properties": {
                    "remoteVirtualNetwork": { "id": remote },
                    "allowVirtualNetworkAccess": allow_vnet_access.unwrap_or(true),
                    "allowForwardedTraffic": allow_forwarded_traffic.unwrap_or(false),
                    "allowGatewayTransit": allow_gateway_transit.unwrap_or(false),
                    "useRemoteGateways": use_remote_gateways.unwrap_or(false),
                } })),
            )
        }
        PeeringCmd::Show(p) => g.call("GET", &p.path(), None),
        PeeringCmd::Delete(p) => g.call("DELETE", &p.path(), None),
        PeeringCmd::Sync(p) => {
            // A re-put without the recorded remote space records it anew.
            let Some(mut current) = g.fetch(&p.path())? else {
                return Ok(ExitCode::FAILURE);
            };
            let mut props = current["properties"].take();
            if let Some(m) = props.as_object_mut() {
                for k in [
                    "remoteAddressSpace",
                    "remoteVirtualNetworkAddressSpace",
                    "peeringState",
                    "peeringSyncLevel",
                    "provisioningState",
                ] {
                    m.remove(k);
                }
            }
            g.call("PUT", &p.path(), Some(&json!({ "properties": props })))
        }
        PeeringCmd::List { rg, vnet_name } => {
            let id = rg.id("Microsoft.Network", "virtualNetworks", &vnet_name);
            match g.fetch(&id.to_string())? {
                Some(v) => g.print_value(&v["properties"]["virtualNetworkPeerings"]),
                None => Ok(ExitCode::FAILURE),
            }
        }
    }
}
