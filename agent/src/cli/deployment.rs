//! `az deployment group create|show|list|delete|what-if` (and `deploy`, the
//! short form): the template file, the JSON files beside it (linked
//! templates), parameters from files, `name=value` pairs and inline JSON,
//! and the answers printed as az prints them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::{print_error, Global};
use crate::api::client::request;
use crate::template::DEFAULT_SUBSCRIPTION;

#[derive(Subcommand, Debug)]
pub enum DeploymentCmd {
    /// Deployments at resource group scope.
    #[command(subcommand)]
    Group(GroupCmd),
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Deploy a template into a resource group.
    Create(CreateArgs),
    /// Preview the changes a deployment would make, in Azure's terms and
    /// in the kernel's.
    WhatIf(WhatIfArgs),
    /// Show a deployment.
    Show(NameArgs),
    /// List the deployments of a resource group.
    List {
        #[arg(short = 'g', long = "resource-group")]
        resource_group: String,
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
    /// Delete a deployment's record (its resources stay, as in Azure).
    Delete(NameArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Resource group.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    pub subscription: String,
    /// The ARM template file (JSON; `bicep build` output works too).
    #[arg(short = 'f', long = "template-file")]
    pub template_file: PathBuf,
    /// Parameters: `name=value`, `@parameters.json` (the deploymentParameters
    /// schema), or inline JSON; repeat or mix them, later ones win.
    #[arg(short = 'p', long = "parameters", num_args = 1..)]
    pub parameters: Vec<String>,
    /// Deployment name [default: the template file's stem].
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Incremental (default) or Complete (deletes what the template no longer has).
    #[arg(long, default_value = "Incremental")]
    pub mode: String,
}

#[derive(Args, Debug, Clone)]
pub struct WhatIfArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Print the JSON answer instead of the summary.
    #[arg(long)]
    pub no_pretty_print: bool,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    #[arg(short = 'g', long = "resource-group")]
    resource_group: String,
    #[arg(short = 'n', long)]
    name: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

fn path_of(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Resources/deployments/{name}"
    )
}

pub fn run(g: &Global, cmd: DeploymentCmd) -> Result<ExitCode> {
    let DeploymentCmd::Group(cmd) = cmd;
    match cmd {
        GroupCmd::Create(a) => create(g, &a),
        GroupCmd::WhatIf(a) => what_if(g, &a),
        GroupCmd::Show(a) => g.call(
            "GET",
            &path_of(&a.subscription, &a.resource_group, &a.name),
            None,
        ),
        GroupCmd::Delete(a) => g.call(
            "DELETE",
            &path_of(&a.subscription, &a.resource_group, &a.name),
            None,
        ),
        GroupCmd::List {
            resource_group,
            subscription,
        } => {
            let (status, v) = request(
                &g.socket(),
                &g.principal,
                "GET",
                &format!("/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Resources/deployments"),
                None,
            )?;
            if status != 200 {
                print_error(&v);
                return Ok(ExitCode::FAILURE);
            }
            g.print_value(&v["value"])
        }
    }
}

/// The request body: ARM's deployment properties, plus what the daemon
/// needs to read linked templates and place errors (`properties.lab`).
pub(super) fn body(a: &CreateArgs) -> Result<(String, Value)> {
    // ARM refuses a template over 4 MB; say so before reading (or sending)
    // a file that cannot be deployed.
    let size = std::fs::metadata(&a.template_file)
        .with_context(|| format!("reading {}", a.template_file.display()))?
        .len();
    if size > crate::template::limits::MAX_TEMPLATE_BYTES as u64 {
        anyhow::bail!(
            "(DeploymentJobSizeExceeded) {} is {:.1} MB; a template can't exceed 4 MB. Split it into linked or nested templates.",
            a.template_file.display(),
            size as f64 / 1_048_576.0
        );
    }
    let text = std::fs::read_to_string(&a.template_file)
        .with_context(|| format!("reading {}", a.template_file.display()))?;
    let template: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", a.template_file.display()))?;
    let mut params = Map::new();
    for p in &a.parameters {
        parse_parameter(p, &mut params)?;
    }
    let name = a.name.clone().unwrap_or_else(|| {
        a.template_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or("deployment".into())
    });
    let file = std::fs::canonicalize(&a.template_file)?;
    let uri = format!("file://{}", file.display());
    let linked = beside(&file);
    let body = json!({"properties": {
        "mode": a.mode,
        "template": template,
        "parameters": params,
        "lab": {"templateUri": uri, "linkedTemplates": linked, "templateText": text},
    }});
    Ok((path_of(&a.subscription, &a.resource_group, &name), body))
}

/// The JSON files beside the template (what a linked deployment may name
/// by relative path), by `file://` URI: at most 4 levels and 400 files.
fn beside(template: &Path) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(dir) = template.parent() else {
        return out;
    };
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if out.len() >= 400 {
                return out;
            }
            if p.is_dir() && depth < 4 {
                stack.push((p, depth + 1));
            } else if p.extension().is_some_and(|x| x == "json") && p != template {
                let small = e.metadata().map(|m| m.len() < 4 << 20).unwrap_or(false);
                if let (true, Ok(bytes)) = (small, std::fs::read(&p)) {
                    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                        if v.get("resources").is_some() || v.get("$schema").is_some() {
                            out.insert(format!("file://{}", p.display()), v);
                        }
                    }
                }
            }
        }
    }
    out
}

pub fn create(g: &Global, a: &CreateArgs) -> Result<ExitCode> {
    let (path, body) = body(a)?;
    g.call("PUT", &path, Some(&body))
}

fn what_if(g: &Global, a: &WhatIfArgs) -> Result<ExitCode> {
    let (path, body) = body(&a.create)?;
    let (status, v) = request(
        &g.socket(),
        &g.principal,
        "POST",
        &format!("{path}/whatIf"),
        Some(&body),
    )?;
    if !(200..300).contains(&status) {
        print_error(&v);
        return Ok(ExitCode::FAILURE);
    }
    if a.no_pretty_print || g.output_is_explicit() {
        return g.print_value(&v);
    }
    print!("{}", summary(&v));
    Ok(ExitCode::SUCCESS)
}

/// az's what-if text: one line per resource with its change symbol, the
/// property changes under a Modify, the counts, then the kernel changes.
pub fn summary(v: &Value) -> String {
    let mut out = String::from(
        "Resource and property changes are indicated with these symbols:\n  + Create\n  ~ Modify\n  - Delete\n  = NoChange\n  * Ignore\n\nThe deployment will update the following scope:\n\n",
    );
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for c in v["properties"]["changes"].as_array().into_iter().flatten() {
        let t = c["changeType"].as_str().unwrap_or("?");
        *counts.entry(t).or_default() += 1;
        let sym = match t {
            "Create" => "+",
            "Modify" => "~",
            "Delete" => "-",
            "NoChange" => "=",
            _ => "*",
        };
        out.push_str(&format!(
            "  {sym} {}\n",
            c["resourceId"].as_str().unwrap_or("")
        ));
        for d in c["delta"].as_array().into_iter().flatten() {
            let psym = match d["propertyChangeType"].as_str() {
                Some("Create") => "+",
                Some("Delete") => "-",
                _ => "~",
            };
            let show = |k: &str| d.get(k).map(|x| x.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "      {psym} {}: {}{}\n",
                d["path"].as_str().unwrap_or(""),
                show("before"),
                if d.get("after").is_some() {
                    format!(" => {}", show("after"))
                } else {
                    String::new()
                }
            ));
        }
    }
    let parts: Vec<String> = ["Create", "Modify", "Delete", "NoChange", "Ignore"]
        .iter()
        .filter_map(|t| {
            counts
                .get(t)
                .map(|n| format!("{n} to {}", t.to_lowercase()))
        })
        .collect();
    out.push_str(&format!("\nResource changes: {}.\n", parts.join(", ")));
    let k = &v["properties"]["kernelChanges"];
    out.push_str("\nKernel changes (the lab's namespaces, links, addresses, routes, rules and nft tables):\n");
    for (label, key) in [
        ("+ namespace", "namespacesCreated"),
        ("- namespace", "namespacesDeleted"),
        ("+ link", "linksCreated"),
        ("- link", "linksDeleted"),
        ("+ address", "addressesAdded"),
        ("- address", "addressesDeleted"),
        ("+ route", "routesAdded"),
        ("- route", "routesDeleted"),
        ("+ rule", "rulesAdded"),
        ("- rule", "rulesDeleted"),
        ("~ nft table", "nftTablesReplaced"),
        ("+ process", "processesStarted"),
        ("- process", "processesStopped"),
    ] {
        for x in k[key].as_array().into_iter().flatten() {
            out.push_str(&format!("  {label} {}\n", x.as_str().unwrap_or("")));
        }
    }
    out.push_str(&format!("Kernel summary: {}\n", k["summary"]));
    out
}

/// `name=value` (a string; the template's type converts it), `@file.json`
/// (ARM's deploymentParameters: `{"parameters": {"name": {"value": ...}}}`),
/// or inline JSON of that `parameters` object.
pub fn parse_parameter(p: &str, out: &mut Map<String, Value>) -> Result<()> {
    let object = |v: &Value, out: &mut Map<String, Value>| -> Result<()> {
        let params = v.get("parameters").unwrap_or(v);
        for (k, v) in params
            .as_object()
            .context("parameters are an object of name: {\"value\": ...}")?
        {
            if k == "$schema" || k == "contentVersion" {
                continue;
            }
            if v.get("reference").is_some() {
                bail!("parameter '{k}' is a Key Vault reference, which the lab does not resolve; give its value");
            }
            out.insert(k.clone(), v.clone());
        }
        Ok(())
    };
    if let Some(file) = p.strip_prefix('@') {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("{file} is not valid JSON"))?;
        return object(&v, out);
    }
    if p.trim_start().starts_with('{') {
        let v: Value =
            serde_json::from_str(p).context("the inline parameters are not valid JSON")?;
        return object(&v, out);
    }
    let Some((k, v)) = p.split_once('=') else {
        bail!("parameter {p:?} is not name=value, @file or JSON")
    };
    out.insert(k.to_string(), json!({ "value": v }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `-p @file`, `-p name=value` and inline JSON together, later ones
    /// winning, as az merges them.
    #[test]
    fn parameters_from_files_pairs_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("azuredeploy.parameters.json");
        std::fs::write(
            &file,
            r#"{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
                "contentVersion": "1.0.0.0",
                "parameters": {"appName": {"value": "fromfile"}, "count": {"value": 2}}}"#,
        )
        .unwrap();
        let mut out = Map::new();
        parse_parameter(&format!("@{}", file.display()), &mut out).unwrap();
        parse_parameter("appName=fromflag", &mut out).unwrap();
        parse_parameter(r#"{"sku": {"value": "P1v3"}}"#, &mut out).unwrap();
        assert_eq!(out["appName"], json!({"value": "fromflag"}));
        assert_eq!(out["count"], json!({"value": 2}));
        assert_eq!(out["sku"], json!({"value": "P1v3"}));
        assert!(!out.contains_key("$schema"));
        let kv = r#"{"pw": {"reference": {"keyVault": {"id": "x"}, "secretName": "s"}}}"#;
        assert!(parse_parameter(kv, &mut out).is_err());
        assert!(parse_parameter("novalue", &mut out).is_err());
    }
}
