//! `az network watcher test-connectivity`: connection troubleshoot from a VM
//! (or, lab only, an app instance: `--app SITE [--instance N]`), with real
//! probes from the source's namespace.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use super::Global;
use crate::diag::watcher::watcher_id;
use crate::model::ResourceId;
use crate::template::DEFAULT_SUBSCRIPTION;

#[derive(Args, Debug)]
pub struct TestConnectivityArgs {
    #[arg(short = 'g', long = "resource-group")]
    resource_group: String,
    /// Name or id of the source VM (an app's id is accepted too).
    #[arg(long = "source-resource")]
    source_resource: Option<String>,
    /// Lab only: the source is this app's instance.
    #[arg(long)]
    app: Option<String>,
    #[arg(long, default_value_t = 0)]
    instance: u32,
    #[arg(long = "dest-address")]
    dest_address: Option<String>,
    /// Name or id of the destination VM.
    #[arg(long = "dest-resource")]
    dest_resource: Option<String>,
    #[arg(long = "dest-port")]
    dest_port: u16,
    #[arg(long, default_value = "Tcp", value_parser = ["Tcp", "Http", "Https", "Icmp"], ignore_case = true)]
    protocol: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

impl TestConnectivityArgs {
    fn id(&self, value: &str, ns: &str, ty: &str) -> String {
        if value.starts_with('/') {
            value.to_string()
        } else {
            ResourceId::new(&self.subscription, &self.resource_group, ns, ty, value).to_string()
        }
    }
}

pub fn run(g: &Global, a: TestConnectivityArgs) -> Result<ExitCode> {
    let (source, mut source_body) = match (&a.source_resource, &a.app) {
        (Some(s), None) => {
            let id = self_id(&a, s);
            (id.clone(), json!({ "resourceId": id }))
        }
        (None, Some(app)) => {
            let id = a.id(app, "Microsoft.Web", "sites");
            (
                id.clone(),
                json!({ "resourceId": id, "instance": a.instance }),
            )
        }
        _ => bail!("usage error: give --source-resource VM or --app SITE"),
    };
    if a.app.is_none()
        && source
            .to_ascii_lowercase()
            .contains("/microsoft.web/sites/")
    {
        source_body["instance"] = json!(a.instance);
    }
    let mut dest = json!({ "port": a.dest_port });
    match (&a.dest_address, &a.dest_resource) {
        (Some(ip), None) => dest["address"] = json!(ip),
        (None, Some(r)) => {
            dest["resourceId"] = json!(a.id(r, "Microsoft.Compute", "virtualMachines"))
        }
        _ => bail!("usage error: give --dest-address or --dest-resource"),
    }
    let Some(resource) = g.fetch(&source)? else {
        return Ok(ExitCode::FAILURE);
    };
    let location = resource["location"]
        .as_str()
        .context("the source has no location")?;
    let body = json!({ "source": source_body, "destination": dest, "protocol": a.protocol });
    let path = format!(
        "{}/connectivityCheck",
        watcher_id(&a.subscription, location)
    );
    g.call("POST", &path, Some(&body))
}

fn self_id(a: &TestConnectivityArgs, value: &str) -> String {
    a.id(value, "Microsoft.Compute", "virtualMachines")
}
