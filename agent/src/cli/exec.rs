//! `vnet-agent exec`: run a real program inside a lab namespace with the
//! environment the app would see (WEBSITE_PRIVATE_IP, WEBSITE_SITE_NAME, ...).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use crate::api::client::{encode, request};
use crate::dataplane::netns_path;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["app", "vm", "host", "onprem_host", "site", "gateway"])))]
pub struct ExecArgs {
    /// A site (web app) name or id: runs in its sandbox on one instance.
    #[arg(long)]
    app: Option<String>,
    /// The plan instance (0-based) whose sandbox to use.
    #[arg(long, requires = "app", default_value_t = 0)]
    instance: u32,
    /// A virtual machine name.
    #[arg(long)]
    vm: Option<String>,
    /// An internet host (`Lab.Emulator/internetHosts`) name.
    #[arg(long)]
    host: Option<String>,
    /// An on-premises host (`Lab.Emulator/onPremisesHosts`) name.
    #[arg(long)]
    onprem_host: Option<String>,
    /// The router of an on-premises site: a local network gateway's or an
    /// ExpressRoute circuit's name. `$VNET_BIRD_SOCKET` names its BGP
    /// speaker's control socket (`birdc -s "$VNET_BIRD_SOCKET" show route`).
    #[arg(long)]
    site: Option<String>,
    /// A virtual network gateway's namespace (and `$VNET_BIRD_SOCKET`).
    #[arg(long)]
    gateway: Option<String>,
    /// The resource group of the name given (when the same name is in
    /// several groups); a full id needs none.
    #[arg(short = 'g', long = "resource-group")]
    resource_group: Option<String>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// `name` as the server should look it up: a full id when a group is given.
fn in_group(rg: Option<&str>, namespace: &str, ty: &str, name: &str) -> String {
    match rg {
        Some(rg) if !name.starts_with('/') => crate::model::ResourceId::new(
            crate::template::DEFAULT_SUBSCRIPTION,
            rg,
            namespace,
            ty,
            name,
        )
        .to_string(),
        _ => name.to_string(),
    }
}

pub fn run(socket: &Path, principal: &str, args: ExecArgs) -> Result<ExitCode> {
    let rg = args.resource_group.as_deref();
    let query = if let Some(a) = &args.app {
        let a = in_group(rg, "Microsoft.Web", "sites", a);
        format!("app={}&instance={}", encode(&a), args.instance)
    } else if let Some((k, v)) = [
        ("vm", &args.vm, "Microsoft.Compute", "virtualMachines"),
        ("host", &args.host, "Lab.Emulator", "internetHosts"),
        (
            "onprem_host",
            &args.onprem_host,
            "Lab.Emulator",
            "onPremisesHosts",
        ),
        (
            "site",
            &args.site,
            "Microsoft.Network",
            "localNetworkGateways",
        ),
        (
            "gateway",
            &args.gateway,
            "Microsoft.Network",
            "virtualNetworkGateways",
        ),
    ]
    .into_iter()
    .find_map(|(k, v, ns, ty)| Some((k, in_group(rg, ns, ty, v.as_ref()?))))
    {
        format!("{k}={}", encode(&v))
    } else {
        bail!("name one of --app, --vm, --host, --onprem-host, --site or --gateway")
    };
    let Some(spec) = enter(socket, principal, &query)? else {
        return Ok(ExitCode::FAILURE);
    };
    let netns = spec["netns"].as_str().unwrap_or_default().to_string();
    // The namespace's DNS: its resolv.conf bound on /etc/resolv.conf in a
    // mount namespace of this process alone.
    if let Some(path) = spec["resolvConf"].as_str() {
        crate::supervisor::ResolvMount::new(Path::new(path))?
            .enter()
            .with_context(|| format!("mounting {path} on /etc/resolv.conf"))?;
    }
    let mut cmd = std::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    if let Some(env) = spec["env"].as_object() {
        for (k, v) in env {
            if let Some(v) = v.as_str() {
                cmd.env(k, v);
            }
        }
    }
    let err = cmd.exec();
    Err(err).with_context(|| format!("running {:?} in {netns}", args.command[0]))
}

/// Asks the daemon where `/lab/exec?{query}` runs and moves this process
/// into that network namespace (it is single-threaded here, so it may switch
/// its own namespace, and then become or act as the program). `None`: the
/// daemon refused; its error is printed.
pub(super) fn enter(socket: &Path, principal: &str, query: &str) -> Result<Option<Value>> {
    let (status, spec) = request(
        socket,
        principal,
        "GET",
        &format!("/lab/exec?{query}"),
        None,
    )?;
    if status != 200 {
        super::print_error(&spec);
        return Ok(None);
    }
    let netns = spec["netns"]
        .as_str()
        .context("daemon answered without a namespace")?;
    // The daemon names only namespaces its plan made; a name that could
    // leave /run/netns is refused here too, before anything is opened.
    crate::dataplane::check_netns_name(netns)?;
    let ns = std::fs::File::open(netns_path(netns))
        .with_context(|| format!("opening namespace {netns}"))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering namespace {netns}"))?;
    Ok(Some(spec))
}
