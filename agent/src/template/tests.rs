use serde_json::json;

use super::*;

fn req(template: Value, parameters: &[(&str, Value)]) -> DeploymentRequest {
    DeploymentRequest {
        subscription: "sub1".into(),
        resource_group: "rg1".into(),
        template,
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn tmpl(resources: Value) -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "vnetName": {"type": "string", "defaultValue": "vnet1"},
            "count": {"type": "int", "defaultValue": 1},
            "loc": {"type": "string"}
        },
        "variables": {"prefix": "10.0.0.0/16"},
        "resources": resources
    })
}

#[test]
fn parameters_defaults_and_overrides() {
    let t = tmpl(json!([{
        "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "dependsOn": [],
        "name": "[parameters('vnetName')]", "location": "[parameters('loc')]",
        "properties": {"addressSpace": {"addressPrefixes": ["[variables('prefix')]"]}}
    }]));
    let out = expand(&req(t.clone(), &[("loc", json!("westeurope"))])).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].name, "vnet1");
    assert_eq!(out[0].location.as_deref(), Some("westeurope"));
    assert_eq!(
        out[0].properties["addressSpace"]["addressPrefixes"][0],
        "10.0.0.0/16"
    );
    assert_eq!(
        out[0].id.to_string(),
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet1"
    );
    let out = expand(&req(
        t.clone(),
        &[("loc", json!("x")), ("vnetName", json!("other"))],
    ))
    .unwrap();
    assert_eq!(out[0].name, "other");
    // A string for an int parameter is converted.
    assert!(expand(&req(
        t.clone(),
        &[("loc", json!("x")), ("count", json!("3"))]
    ))
    .is_ok());
    assert_eq!(
        expand(&req(
            t.clone(),
            &[("loc", json!("x")), ("count", json!("three"))]
        ))
        .unwrap_err()
        .code,
        "InvalidTemplate"
    );
}

#[test]
fn missing_and_unknown_parameters() {
    let t = tmpl(json!([]));
    let e = expand(&req(t.clone(), &[])).unwrap_err();
    assert_eq!(e.code, "InvalidTemplate");
    assert!(
        e.message.contains("'loc'") && e.message.contains("not provided"),
        "{}",
        e.message
    );
    let e = expand(&req(t, &[("loc", json!("x")), ("nope", json!(1))])).unwrap_err();
    assert!(e.message.contains("nope"), "{}", e.message);
}

/// `resourceId` evaluates (it used to be refused); a function the lab does
/// not have yet is refused naming the resource and the property.
#[test]
fn expressions_evaluate_and_unknown_functions_name_resource_and_property() {
    let t = tmpl(json!([{
        "type": "Microsoft.Web/sites", "name": "web1",
        "properties": {"virtualNetworkSubnetId": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet1', 'integration')]"}
    }]));
    let out = expand(&req(t, &[("loc", json!("x"))])).unwrap();
    assert_eq!(
        out[0].properties["virtualNetworkSubnetId"],
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/integration"
    );
    let t = tmpl(json!([{
        "type": "Microsoft.Web/sites", "name": "web1",
        "properties": {"virtualNetworkSubnetId": "[reference('x').id]"}
    }]));
    let e = expand(&req(t, &[("loc", json!("x"))])).unwrap_err();
    assert_eq!(e.code, "InvalidTemplate");
    assert!(
        e.message.contains("Microsoft.Web/sites 'web1'"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("properties.virtualNetworkSubnetId"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("not supported by the lab yet"),
        "{}",
        e.message
    );
}

#[test]
fn escaped_bracket_is_literal() {
    let t = tmpl(json!([{ "type": "Microsoft.Web/sites", "name": "w",
        "properties": {"siteConfig": {"appCommandLine": "[[ -f x ] && sleep 1"}}}]));
    let out = expand(&req(t, &[("loc", json!("x"))])).unwrap();
    assert_eq!(
        out[0].properties["siteConfig"]["appCommandLine"],
        "[ -f x ] && sleep 1"
    );
}

#[test]
fn child_resources_flat_and_nested() {
    let t = tmpl(json!([
        {"type": "Microsoft.Network/virtualNetworks", "name": "vnet1",
         "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
         "resources": [{"type": "subnets", "name": "a", "properties": {"addressPrefix": "10.0.1.0/24"}}]},
        {"type": "Microsoft.Network/virtualNetworks/subnets", "name": "vnet1/b",
         "properties": {"addressPrefix": "10.0.2.0/24"}}
    ]));
    let out = expand(&req(t, &[("loc", json!("x"))])).unwrap();
    let ids: Vec<String> = out.iter().map(|r| r.id.to_string()).collect();
    assert!(
        ids.iter()
            .any(|i| i.ends_with("/virtualNetworks/vnet1/subnets/a")),
        "{ids:?}"
    );
    assert!(
        ids.iter()
            .any(|i| i.ends_with("/virtualNetworks/vnet1/subnets/b")),
        "{ids:?}"
    );
    assert!(out
        .iter()
        .any(|r| r.type_ == "Microsoft.Network/virtualNetworks/subnets" && r.name == "vnet1/a"));
}

#[test]
fn bad_names_duplicates_and_conditions() {
    let bad =
        tmpl(json!([{"type": "Microsoft.Network/virtualNetworks/subnets", "name": "justone"}]));
    assert!(expand(&req(bad, &[("loc", json!("x"))]))
        .unwrap_err()
        .message
        .contains("segment"));
    let dup = tmpl(
        json!([{"type": "Microsoft.Web/sites", "name": "w"}, {"type": "Microsoft.Web/sites", "name": "W"}]),
    );
    assert!(expand(&req(dup, &[("loc", json!("x"))]))
        .unwrap_err()
        .message
        .contains("multiple times"));
    let cond = tmpl(json!([{"type": "Microsoft.Web/sites", "name": "w", "condition": false}]));
    assert!(expand(&req(cond, &[("loc", json!("x"))]))
        .unwrap()
        .is_empty());
}

#[test]
fn placeholder_subscription_is_rewritten() {
    let t = tmpl(
        json!([{ "type": "Microsoft.Web/sites", "name": "w", "properties": {
        "serverFarmId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Web/serverfarms/p"}}]),
    );
    let out = expand(&req(t, &[("loc", json!("x"))])).unwrap();
    assert_eq!(
        out[0].properties["serverFarmId"],
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Web/serverfarms/p"
    );
}
