//! The `az`-shaped verbs: each one is one ARM-shaped request to the daemon,
//! with `az`'s nouns and flags.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Global;
use crate::model::ResourceId;
use crate::template::DEFAULT_SUBSCRIPTION;

/// `az webapp ...` (and `az functionapp ...`, the same verbs on a function app).
#[derive(Subcommand, Debug)]
pub enum WebappCmd {
    /// Change an app: HTTPS only, client affinity.
    Update {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = super::create::az_bool)]
        https_only: Option<bool>,
        #[arg(long, value_parser = super::create::az_bool)]
        client_affinity_enabled: Option<bool>,
    },
    /// Create a web app (or, as `functionapp create`, a function app) on a plan.
    Create(Box<super::create::AppCreate>),
    /// Show a web app, including `outboundIpAddresses`.
    Show(SiteArgs),
    /// Regional virtual network integration of an app.
    #[command(subcommand, name = "vnet-integration")]
    VnetIntegration(VnetIntegrationCmd),
    /// Site configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Restart the app (its appCommandLine on every instance).
    Restart(SiteArgs),
    /// Lab only: the routes an app instance's outbound traffic follows.
    ShowEffectiveRouteTable {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long, default_value_t = 0)]
        instance: u32,
    },
    /// Lab only: the security rules that filter an app instance's traffic into the VNet.
    ListEffectiveNsg {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long, default_value_t = 0)]
        instance: u32,
    },
    /// What the app resolves, as Kudu's nameresolver.exe: a real query from
    /// its sandbox to the servers of its resolv.conf (`-o table`: Kudu's text).
    Nameresolver(super::nameresolver::NameresolverArgs),
    /// Kudu's tcpping from the app's sandbox: timed TCP connects to HOST[:PORT].
    Tcpping(super::tcpping::TcppingArgs),
    /// The app network troubleshooter: integration, subnet, DNS, route, NSG rule and a real connection.
    #[command(name = "troubleshoot-network")]
    TroubleshootNetwork(super::troubleshoot::TroubleshootArgs),
}

#[derive(Args, Debug)]
pub struct SiteArgs {
    #[arg(short = 'g', long = "resource-group")]
    resource_group: String,
    #[arg(short = 'n', long)]
    name: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

impl SiteArgs {
    /// The id of another resource in the app's subscription and group.
    pub(super) fn sibling(&self, namespace: &str, type_: &str, name: &str) -> String {
        ResourceId::new(
            &self.subscription,
            &self.resource_group,
            namespace,
            type_,
            name,
        )
        .to_string()
    }

    pub(super) fn id(&self) -> ResourceId {
        ResourceId::new(
            &self.subscription,
            &self.resource_group,
            "Microsoft.Web",
            "sites",
            &self.name,
        )
    }
}

#[derive(Subcommand, Debug)]
pub enum VnetIntegrationCmd {
    /// Integrate the app with a subnet (adds the delegation if missing).
    Add {
        #[command(flatten)]
        site: SiteArgs,
        /// VNet name (in the app's resource group) or id.
        #[arg(long)]
        vnet: String,
        /// Subnet name or id.
        #[arg(long)]
        subnet: String,
        /// Accepted for az compatibility: the lab always checks the delegation.
        #[arg(long)]
        skip_delegation_check: Option<bool>,
    },
    /// Disconnect the app (it restarts; the VNet and subnet stay).
    Remove {
        #[command(flatten)]
        site: SiteArgs,
    },
    /// The app's integrations.
    List {
        #[command(flatten)]
        site: SiteArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Set site configuration (`--vnet-route-all-enabled`, `--startup-file`).
    Set {
        #[command(flatten)]
        site: SiteArgs,
        /// Route all outbound traffic into the virtual network.
        #[arg(long)]
        vnet_route_all_enabled: Option<bool>,
        /// The appCommandLine.
        #[arg(long)]
        startup_file: Option<String>,
        /// Configuration routing: content share through the integration.
        #[arg(long)]
        vnet_content_share_enabled: Option<bool>,
        /// Configuration routing: container image pull through the integration.
        #[arg(long)]
        vnet_image_pull_enabled: Option<bool>,
        /// Configuration routing: custom backup/restore through the integration.
        #[arg(long)]
        vnet_backup_restore_enabled: Option<bool>,
    },
    /// Custom backup/restore to your own storage account.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// App settings.
    #[command(subcommand)]
    Appsettings(AppsettingsCmd),
    /// Access restrictions of the app's public front end.
    #[command(subcommand)]
    AccessRestriction(super::access_restriction::AccessRestrictionCmd),
}

#[derive(Subcommand, Debug)]
pub enum AppsettingsCmd {
    /// Add or change app settings (`NAME=VALUE ...`); the others stay.
    Set {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long, num_args = 1.., required = true)]
        settings: Vec<String>,
    },
    /// The app settings.
    List(SiteArgs),
    /// The status of each Key Vault reference (`config/configreferences/appsettings`).
    ListReferences(SiteArgs),
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    #[arg(short = 'g', long = "resource-group")]
    resource_group: String,
    #[arg(long = "webapp-name")]
    webapp_name: String,
    /// SAS URL of a blob container: https://ACCOUNT.blob.core.windows.net/CONTAINER?...
    #[arg(long)]
    container_url: String,
    #[arg(long)]
    backup_name: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

impl BackupArgs {
    fn site(&self) -> ResourceId {
        ResourceId::new(
            &self.subscription,
            &self.resource_group,
            "Microsoft.Web",
            "sites",
            &self.webapp_name,
        )
    }

    fn body(&self, databases: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"properties": {
            "storageAccountUrl": self.container_url,
            "backupName": self.backup_name,
            "databases": databases,
        }})
    }
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Back the app up to the container.
    Create {
        #[command(flatten)]
        args: BackupArgs,
        /// Also back up a database (refused over the integration).
        #[arg(long)]
        db_name: Option<String>,
        #[arg(long, default_value = "SqlAzure")]
        db_type: String,
        #[arg(long, default_value = "")]
        db_connection_string: String,
    },
    /// Restore the app from a backup in the container.
    Restore {
        #[command(flatten)]
        args: BackupArgs,
    },
}

/// `az appservice ...`.
#[derive(Subcommand, Debug)]
pub enum AppserviceCmd {
    /// App Service plans.
    #[command(subcommand)]
    Plan(PlanCmd),
    /// Integrations of a plan's apps.
    #[command(subcommand, name = "vnet-integration")]
    VnetIntegration(PlanIntegrationCmd),
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[arg(short = 'g', long = "resource-group")]
    resource_group: String,
    #[arg(short = 'n', long = "name")]
    name: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

impl PlanArgs {
    fn id(&self) -> ResourceId {
        ResourceId::new(
            &self.subscription,
            &self.resource_group,
            "Microsoft.Web",
            "serverfarms",
            &self.name,
        )
    }
}

#[derive(Subcommand, Debug)]
pub enum PlanCmd {
    /// Create a plan.
    Create(super::create::PlanCreate),
    /// Show a plan.
    Show(PlanArgs),
    /// Scale a plan out/in (`--number-of-workers`) or up/down (`--sku`).
    Update {
        #[command(flatten)]
        plan: PlanArgs,
        #[arg(long)]
        number_of_workers: Option<u32>,
        #[arg(long)]
        sku: Option<String>,
    },
    /// Lab only: simulate a platform upgrade of the plan's workers (make-before-break).
    PlatformUpgrade(PlanArgs),
}

#[derive(Subcommand, Debug)]
pub enum PlanIntegrationCmd {
    /// The integrations of a plan.
    List {
        #[arg(long)]
        plan: String,
        #[arg(short = 'g', long = "resource-group")]
        resource_group: String,
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
}

/// `az role ...`.
#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    #[command(subcommand)]
    Assignment(RoleAssignmentCmd),
}

#[derive(Subcommand, Debug)]
pub enum RoleAssignmentCmd {
    /// Grant a role to a principal at a scope.
    Create {
        #[arg(long)]
        assignee: String,
        /// A built-in role name (Owner, Contributor, Reader, Network Contributor, ...) or a role definition id.
        #[arg(long)]
        role: String,
        /// `/subscriptions/X`, `/subscriptions/X/resourceGroups/Y` or a resource id.
        #[arg(long)]
        scope: String,
    },
    /// List role assignments.
    List {
        #[arg(long)]
        assignee: Option<String>,
    },
    /// Delete role assignments by id.
    Delete {
        #[arg(long, required = true, num_args = 1..)]
        ids: Vec<String>,
    },
}

/// `az ad ...`: the lab's principals.
#[derive(Subcommand, Debug)]
pub enum AdCmd {
    #[command(subcommand)]
    User(AdUserCmd),
}

#[derive(Subcommand, Debug)]
pub enum AdUserCmd {
    /// Add a principal to the lab (role assignments name it).
    Create {
        #[arg(long)]
        display_name: String,
    },
    /// The lab's principals.
    List,
}

pub fn ad(g: &Global, cmd: AdCmd) -> Result<ExitCode> {
    match cmd {
        AdCmd::User(AdUserCmd::Create { display_name }) => g.call(
            "PUT",
            &format!(
                "/lab/principals/{}",
                crate::api::client::encode(&display_name)
            ),
            None,
        ),
        AdCmd::User(AdUserCmd::List) => g.call("GET", "/lab/principals", None),
    }
}

/// `az account ...`: settings of a subscription that the lab emulates.
#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Change a subscription's settings (lab: whether outbound SMTP on TCP 25 is allowed,
    /// as Azure decides by the subscription's offer type).
    Update {
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
        #[arg(long, action = clap::ArgAction::Set)]
        allow_outbound_smtp: bool,
    },
    /// A subscription's settings.
    Show {
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
}

pub fn account(g: &Global, cmd: AccountCmd) -> Result<ExitCode> {
    match cmd {
        AccountCmd::Update {
            subscription,
            allow_outbound_smtp,
        } => g.call(
            "PUT",
            &format!("/lab/subscriptions/{subscription}"),
            Some(&json!({ "allowOutboundSmtp": allow_outbound_smtp })),
        ),
        AccountCmd::Show { subscription } => {
            g.call("GET", &format!("/lab/subscriptions/{subscription}"), None)
        }
    }
}

/// `az provider ...`.
#[derive(Subcommand, Debug)]
pub enum ProviderCmd {
    /// Register a resource provider in a subscription.
    Register {
        #[arg(long)]
        namespace: String,
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
}

/// `az resource move`.
#[derive(Args, Debug)]
pub struct MoveArgs {
    #[arg(long, required = true, num_args = 1..)]
    ids: Vec<String>,
    #[arg(long)]
    destination_group: String,
    #[arg(long)]
    destination_subscription_id: Option<String>,
}

pub fn webapp(g: &Global, cmd: WebappCmd, function: bool) -> Result<ExitCode> {
    match cmd {
        WebappCmd::Create(a) => super::create::app_create(g, *a, function),
        WebappCmd::Update {
            site,
            https_only,
            client_affinity_enabled,
        } => {
            let mut p = serde_json::Map::new();
            if let Some(h) = https_only {
                p.insert("httpsOnly".into(), json!(h));
            }
            if let Some(c) = client_affinity_enabled {
                p.insert("clientAffinityEnabled".into(), json!(c));
            }
            g.call(
                "PATCH",
                &site.id().to_string(),
                Some(&json!({ "properties": p })),
            )
        }
        WebappCmd::Config(ConfigCmd::Appsettings(AppsettingsCmd::Set { site, settings })) => {
            let Some(current) = g.fetch(&site.id().to_string())? else {
                return Ok(ExitCode::FAILURE);
            };
            let mut list: Vec<serde_json::Value> = current["properties"]["siteConfig"]
                ["appSettings"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for s in &settings {
                let Some((k, v)) = s.split_once('=') else {
                    bail!("setting {s:?} is not NAME=VALUE");
                };
                list.retain(|x| {
                    !x["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(k))
                });
                list.push(json!({ "name": k, "value": v }));
            }
            let (status, v) = crate::api::client::request(
                &g.socket(),
                &g.principal,
                "PATCH",
                &site.id().to_string(),
                Some(&json!({ "properties": { "siteConfig": { "appSettings": list } } })),
            )?;
            if !(200..300).contains(&status) {
                super::print_error(&v);
                return Ok(ExitCode::FAILURE);
            }
            // az prints the settings, secret values hidden.
            g.print_value(&json!(list
                .iter()
                .map(|x| json!({ "name": x["name"], "slotSetting": false, "value": null }))
                .collect::<Vec<_>>()))
        }
        WebappCmd::Config(ConfigCmd::Appsettings(AppsettingsCmd::List(site))) => {
            let Some(current) = g.fetch(&site.id().to_string())? else {
                return Ok(ExitCode::FAILURE);
            };
            g.print_value(&current["properties"]["siteConfig"]["appSettings"])
        }
        WebappCmd::Show(s) => g.call("GET", &s.id().to_string(), None),
        WebappCmd::Restart(s) => g.call("POST", &format!("{}/restart", s.id()), None),
        WebappCmd::Nameresolver(args) => super::nameresolver::run(g, args),
        WebappCmd::Tcpping(args) => super::tcpping::run(g, args),
        WebappCmd::TroubleshootNetwork(args) => super::troubleshoot::run(g, args),
        WebappCmd::ShowEffectiveRouteTable { site, instance } => g.call(
            "POST",
            &format!("{}/effectiveRouteTable", site.id()),
            Some(&json!({ "instance": instance })),
        ),
        WebappCmd::ListEffectiveNsg { site, instance } => g.call(
            "POST",
            &format!("{}/effectiveNetworkSecurityGroups", site.id()),
            Some(&json!({ "instance": instance })),
        ),
        WebappCmd::VnetIntegration(VnetIntegrationCmd::Add {
            site, vnet, subnet, ..
        }) => {
            let subnet_id = subnet_id(&site, &vnet, &subnet)?;
            let body =
                json!({"properties": {"subnetResourceId": subnet_id, "swiftSupported": true}});
            g.call(
                "PUT",
                &format!("{}/networkConfig/virtualNetwork", site.id()),
                Some(&body),
            )
        }
        WebappCmd::VnetIntegration(VnetIntegrationCmd::Remove { site }) => g.call(
            "DELETE",
            &format!("{}/networkConfig/virtualNetwork", site.id()),
            None,
        ),
        WebappCmd::VnetIntegration(VnetIntegrationCmd::List { site }) => g.call(
            "GET",
            &format!("{}/virtualNetworkConnections", site.id()),
            None,
        ),
        WebappCmd::Config(ConfigCmd::AccessRestriction(cmd)) => {
            super::access_restriction::run(g, cmd)
        }
        WebappCmd::Config(ConfigCmd::Set {
            site,
            vnet_route_all_enabled,
            startup_file,
            vnet_content_share_enabled,
            vnet_image_pull_enabled,
            vnet_backup_restore_enabled,
        }) => {
            let mut cfg = serde_json::Map::new();
            if let Some(v) = vnet_route_all_enabled {
                cfg.insert("vnetRouteAllEnabled".into(), json!(v));
            }
            if let Some(v) = startup_file {
                cfg.insert("appCommandLine".into(), json!(v));
            }
            let mut props = serde_json::Map::new();
            for (name, v) in [
                ("vnetContentShareEnabled", vnet_content_share_enabled),
                ("vnetImagePullEnabled", vnet_image_pull_enabled),
                ("vnetBackupRestoreEnabled", vnet_backup_restore_enabled),
            ] {
                if let Some(v) = v {
                    props.insert(name.into(), json!(v));
                }
            }
            if cfg.is_empty() && props.is_empty() {
                bail!(
                    "nothing to set: name --vnet-route-all-enabled, --startup-file or a                      --vnet-*-enabled configuration routing flag"
                );
            }
            if !cfg.is_empty() {
                props.insert("siteConfig".into(), json!(cfg));
            }
            let body = json!({ "properties": props });
            g.call("PATCH", &site.id().to_string(), Some(&body))
        }
        WebappCmd::Config(ConfigCmd::Backup(BackupCmd::Create {
            args,
            db_name,
            db_type,
            db_connection_string,
        })) => {
            let dbs = db_name
                .map(|n| {
                    vec![json!({"name": n, "databaseType": db_type,
                                "connectionString": db_connection_string})]
                })
                .unwrap_or_default();
            g.call(
                "POST",
                &format!("{}/backup", args.site()),
                Some(&args.body(dbs)),
            )
        }
        WebappCmd::Config(ConfigCmd::Backup(BackupCmd::Restore { args })) => g.call(
            "POST",
            &format!("{}/restore", args.site()),
            Some(&args.body(Vec::new())),
        ),
        WebappCmd::Config(ConfigCmd::Appsettings(AppsettingsCmd::ListReferences(site))) => g.call(
            "GET",
            &format!("{}/config/configreferences/appsettings", site.id()),
            None,
        ),
    }
}

/// `--vnet` and `--subnet` as az reads them: names in the app's resource group, or ids.
fn subnet_id(site: &SiteArgs, vnet: &str, subnet: &str) -> Result<String> {
    if subnet.starts_with("/subscriptions/") {
        return Ok(subnet.parse::<ResourceId>()?.to_string());
    }
    let vnet_id = if vnet.starts_with("/subscriptions/") {
        vnet.parse::<ResourceId>()?
    } else {
        ResourceId::new(
            &site.subscription,
            &site.resource_group,
            "Microsoft.Network",
            "virtualNetworks",
            vnet,
        )
    };
    Ok(vnet_id.child("subnets", subnet).to_string())
}

pub fn appservice(g: &Global, cmd: AppserviceCmd) -> Result<ExitCode> {
    match cmd {
        AppserviceCmd::Plan(PlanCmd::Show(p)) => g.call("GET", &p.id().to_string(), None),
        AppserviceCmd::Plan(PlanCmd::Create(a)) => super::create::plan_create(g, a),
        AppserviceCmd::Plan(PlanCmd::Update {
            plan,
            number_of_workers,
            sku,
        }) => {
            let mut s = serde_json::Map::new();
            if let Some(n) = number_of_workers {
                s.insert("capacity".into(), json!(n));
            }
            if let Some(name) = sku {
                s.insert(
                    "name".into(),
                    json!(super::create::plan_sku(&name).replace("V", "v")),
                );
            }
            if s.is_empty() {
                bail!("nothing to update: name --number-of-workers or --sku");
            }
            g.call("PATCH", &plan.id().to_string(), Some(&json!({ "sku": s })))
        }
        AppserviceCmd::Plan(PlanCmd::PlatformUpgrade(p)) => {
            g.call("POST", &format!("{}/platformUpgrade", p.id()), None)
        }
        AppserviceCmd::VnetIntegration(PlanIntegrationCmd::List {
            plan,
            resource_group,
            subscription,
        }) => {
            let id = ResourceId::new(
                &subscription,
                &resource_group,
                "Microsoft.Web",
                "serverfarms",
                &plan,
            );
            g.call("GET", &format!("{id}/virtualNetworkConnections"), None)
        }
    }
}

pub fn role(g: &Global, cmd: RoleCmd) -> Result<ExitCode> {
    match cmd {
        RoleCmd::Assignment(RoleAssignmentCmd::Create {
            assignee,
            role,
            scope,
        }) => {
            let scope = scope.trim_end_matches('/');
            let name = assignment_name(scope, &assignee, &role);
            let body = json!({"properties": {"principalId": assignee, "roleDefinitionId": role, "scope": scope}});
            g.call(
                "PUT",
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                Some(&body),
            )
        }
        RoleCmd::Assignment(RoleAssignmentCmd::List { assignee }) => {
            let q = assignee
                .map(|a| format!("?assignee={}", crate::api::client::encode(&a)))
                .unwrap_or_default();
            g.call("GET", &format!("/lab/roleAssignments{q}"), None)
        }
        RoleCmd::Assignment(RoleAssignmentCmd::Delete { ids }) => {
            let mut code = ExitCode::SUCCESS;
            for id in ids {
                if g.call("DELETE", &id, None)? != ExitCode::SUCCESS {
                    code = ExitCode::FAILURE;
                }
            }
            Ok(code)
        }
    }
}

/// A role assignment's name is a GUID; derive it so the same grant is idempotent.
fn assignment_name(scope: &str, assignee: &str, role: &str) -> String {
    let h = Sha256::digest(format!(
        "{}|{}|{}",
        scope.to_ascii_lowercase(),
        assignee,
        role.to_ascii_lowercase()
    ));
    let x: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

pub fn provider(g: &Global, cmd: ProviderCmd) -> Result<ExitCode> {
    match cmd {
        ProviderCmd::Register {
            namespace,
            subscription,
        } => g.call(
            "POST",
            &format!("/subscriptions/{subscription}/providers/{namespace}/register"),
            None,
        ),
    }
}

pub fn resource_move(g: &Global, args: MoveArgs) -> Result<ExitCode> {
    let ids: Vec<ResourceId> = args
        .ids
        .iter()
        .map(|i| i.parse())
        .collect::<Result<_, _>>()?;
    let first = ids.first().expect("clap requires one id");
    if ids
        .iter()
        .any(|i| i.subscription != first.subscription || i.resource_group != first.resource_group)
    {
        bail!("all resources moved at once must be in the same resource group");
    }
    let target_sub = args
        .destination_subscription_id
        .unwrap_or_else(|| first.subscription.clone());
    let body = json!({
        "resources": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        "targetResourceGroup": format!("/subscriptions/{target_sub}/resourceGroups/{}", args.destination_group),
    });
    g.call(
        "POST",
        &format!(
            "/subscriptions/{}/resourceGroups/{}/moveResources",
            first.subscription, first.resource_group
        ),
        Some(&body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_names_are_stable_guids() {
        let a = assignment_name("/subscriptions/x", "alice", "Reader");
        assert_eq!(a, assignment_name("/subscriptions/X", "alice", "reader"));
        assert_eq!(a.len(), 36);
        assert_ne!(a, assignment_name("/subscriptions/x", "bob", "Reader"));
    }

    #[test]
    fn subnet_names_resolve_in_the_apps_resource_group() {
        let site = SiteArgs {
            resource_group: "rg".into(),
            name: "web".into(),
            subscription: "s".into(),
        };
        assert_eq!(
            subnet_id(&site, "v1", "int").unwrap(),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v1/subnets/int"
        );
    }
}
