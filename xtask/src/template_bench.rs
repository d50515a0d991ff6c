//! `cargo xtask bench`, template section: the time to evaluate, validate
//! and plan a 500-resource template written with copy loops, against the
//! same 500 resources written out literally (the baseline, same run). Pure
//! library calls: no kernel, no daemon.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};
use vnet_agent::model::{LabConfig, LabState};
use vnet_agent::template::{DeploymentRequest, NoState, DEFAULT_SUBSCRIPTION};

use crate::stats::median;

/// 500 resources: a VNet whose 8 subnets come from a property copy, and
/// copy loops of 100 NSGs (two rules each, also a property copy), 100 route
/// tables, 99 public IPs, 100 NICs (static addresses in `vms`) and 100 VMs.
pub fn copy_loop_template() -> Value {
    let id = |ty: &str, name: &str| format!("[resourceId('{ty}', {name})]");
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "count": {"type": "int", "defaultValue": 100},
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
            "prefix": {"type": "string", "defaultValue": "[uniqueString(resourceGroup().id)]"}
        },
        "variables": {
            "vnetName": "[format('{0}-vnet', parameters('prefix'))]",
            "vmsSubnet": "[resourceId('Microsoft.Network/virtualNetworks/subnets', variables('vnetName'), 'vms')]"
        },
        "resources": [
            {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "[variables('vnetName')]",
             "location": "[parameters('location')]",
             "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "copy": [{"name": "subnets", "count": 8, "input": {
                    "name": "[if(equals(copyIndex('subnets'), 0), 'vms', format('s{0}', copyIndex('subnets')))]",
                    "properties": {"addressPrefix": "[format('10.0.{0}.0/24', copyIndex('subnets'))]"}}}]}},
            {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01",
             "name": "[format('nsg{0}', copyIndex())]", "location": "[parameters('location')]",
             "copy": {"name": "nsgs", "count": "[parameters('count')]"},
             "properties": {"copy": [{"name": "securityRules", "count": 2, "input": {
                "name": "[format('rule{0}', copyIndex('securityRules'))]",
                "properties": {"priority": "[add(100, copyIndex('securityRules'))]", "direction": "Inbound",
                    "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "*", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "[string(add(8000, copyIndex('securityRules')))]"}}}]}},
            {"type": "Microsoft.Network/routeTables", "apiVersion": "2023-04-01",
             "name": "[format('rt{0}', copyIndex())]", "location": "[parameters('location')]",
             "copy": {"name": "rts", "count": "[parameters('count')]"},
             "properties": {"routes": [{"name": "default", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}}]}},
            {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2023-04-01",
             "name": "[format('pip{0}', copyIndex())]", "location": "[parameters('location')]",
             "copy": {"name": "pips", "count": "[sub(parameters('count'), 1)]"},
             "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}},
            {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01",
             "name": "[format('nic{0}', copyIndex())]", "location": "[parameters('location')]",
             "copy": {"name": "nics", "count": "[parameters('count')]"},
             "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks', variables('vnetName'))]"],
             "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
                "subnet": {"id": "[variables('vmsSubnet')]"}, "privateIPAllocationMethod": "Static",
                "privateIPAddress": "[format('10.0.0.{0}', add(copyIndex(), 10))]"}}]}},
            {"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-03-01",
             "name": "[format('vm{0}', copyIndex())]", "location": "[parameters('location')]",
             "copy": {"name": "vms", "count": "[parameters('count')]", "mode": "serial", "batchSize": 25},
             "dependsOn": [id("Microsoft.Network/networkInterfaces", "format('nic{0}', copyIndex())")],
             "properties": {"networkProfile": {"networkInterfaces": [
                {"id": id("Microsoft.Network/networkInterfaces", "format('nic{0}', copyIndex())")}]}}}
        ]
    })
}

fn request(template: &Value) -> DeploymentRequest {
    DeploymentRequest {
        subscription: DEFAULT_SUBSCRIPTION.to_string(),
        resource_group: "bench".to_string(),
        template: template.clone(),
        ..Default::default()
    }
}

/// The same resources with nothing left to evaluate.
pub fn flat_template(copy: &Value) -> Result<Value> {
    let e = vnet_agent::template::evaluate(&request(copy), &NoState)?;
    let resources: Vec<Value> = e
        .resources
        .iter()
        .map(|r| {
            let mut v = json!({"type": r.type_, "name": r.name, "properties": r.properties});
            for (k, x) in [
                ("location", r.location.clone().map(Value::from)),
                ("sku", r.sku.clone()),
            ] {
                if let Some(x) = x {
                    v[k] = x;
                }
            }
            v
        })
        .collect();
    Ok(json!({"contentVersion": "1.0.0.0", "resources": resources}))
}

/// (evaluate, validate, plan) of one template.
fn once(template: &Value) -> Result<(Duration, Duration, Duration, usize)> {
    let config = LabConfig {
        name: "tb".into(),
        ..LabConfig::default()
    };
    let t0 = Instant::now();
    let e = vnet_agent::template::evaluate(&request(template), &NoState)?;
    let t1 = Instant::now();
    let n = e.resources.len();
    let state = vnet_agent::validate::apply_resources(
        &LabState::default(),
        e.resources,
        &config,
        &vnet_agent::validate::RequestContext::default(),
    )?;
    let t2 = Instant::now();
    let plan = vnet_agent::plan::build(&state, &config);
    let t3 = Instant::now();
    anyhow::ensure!(!plan.namespaces.is_empty(), "the plan is empty");
    Ok((t1 - t0, t2 - t1, t3 - t2, n))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs both templates alternately `rounds` times; prints and returns the report.
pub fn measure(rounds: usize) -> Result<Value> {
    let copy = copy_loop_template();
    let flat = flat_template(&copy)?;
    let mut c = (Vec::new(), Vec::new(), Vec::new());
    let mut f = (Vec::new(), Vec::new(), Vec::new());
    let mut count = 0;
    for _ in 0..rounds {
        let (e, v, p, n) = once(&copy)?;
        c.0.push(ms(e));
        c.1.push(ms(v));
        c.2.push(ms(p));
        count = n;
        let (e, v, p, _) = once(&flat)?;
        f.0.push(ms(e));
        f.1.push(ms(v));
        f.2.push(ms(p));
    }
    let (ce, cv, cp) = (median(&c.0), median(&c.1), median(&c.2));
    let (fe, fv, fp) = (median(&f.0), median(&f.1), median(&f.2));
    println!();
    println!("template  resources  evaluate_ms  validate_ms  plan_ms  total_ms");
    println!(
        "copy      {count:>9}  {ce:>11.1}  {cv:>11.1}  {cp:>7.1}  {:>8.1}",
        ce + cv + cp
    );
    println!(
        "flat      {count:>9}  {fe:>11.1}  {fv:>11.1}  {fp:>7.1}  {:>8.1}",
        fe + fv + fp
    );
    println!(
        "copy loops cost {:.2}x the flat template's evaluation; the whole evaluate+validate+plan {:.2}x",
        ce / fe.max(0.001),
        (ce + cv + cp) / (fe + fv + fp).max(0.001)
    );
    Ok(json!({
        "benchmark": "template",
        "resources": count,
        "rounds": rounds,
        "copyLoops": {"evaluateMs": c.0, "validateMs": c.1, "planMs": c.2},
        "flat": {"evaluateMs": f.0, "validateMs": f.1, "planMs": f.2},
        "medianMs": {"copyLoops": {"evaluate": ce, "validate": cv, "plan": cp},
                     "flat": {"evaluate": fe, "validate": fv, "plan": fp}},
        "evaluateRatio": ce / fe.max(0.001),
        "totalRatio": (ce + cv + cp) / (fe + fv + fp).max(0.001),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's template is what it says: 500 resources, and the
    /// flat copy evaluates to the very same resources.
    #[test]
    fn five_hundred_resources_both_ways() {
        let copy = copy_loop_template();
        let a = vnet_agent::template::evaluate(&request(&copy), &NoState).unwrap();
        assert_eq!(a.resources.len(), 500);
        let b = vnet_agent::template::evaluate(&request(&flat_template(&copy).unwrap()), &NoState)
            .unwrap();
        let ids = |e: &vnet_agent::template::Expansion| {
            let mut v: Vec<String> = e.resources.iter().map(|r| r.id.key()).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&a), ids(&b));
        once(&copy).unwrap();
    }
}
