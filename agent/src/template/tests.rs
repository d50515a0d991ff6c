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
        ..Default::default()
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
    assert_eq!(e.code, "ResourceNotFound", "{}", e.message);
    let t = tmpl(json!([{
        "type": "Microsoft.Web/sites", "name": "web1",
        "properties": {"virtualNetworkSubnetId": "[nosuchfunction('x')]"}
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
        e.message.contains("'nosuchfunction' is not valid"),
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

fn run(template: Value) -> Result<Expansion, AzureError> {
    evaluate(&req(template, &[]), &NoState)
}

fn names(e: &Expansion) -> Vec<String> {
    e.resources.iter().map(|r| r.name.clone()).collect()
}

#[test]
fn copy_loops_conditions_and_outputs() {
    let t = json!({
        "parameters": {"count": {"type": "int", "defaultValue": 3}},
        "resources": [
            {"type": "Microsoft.Network/publicIPAddresses", "name": "[concat('pip', copyIndex(1))]",
             "copy": {"name": "pips", "count": "[parameters('count')]"},
             "properties": {"idx": "[copyIndex()]"}},
            {"type": "Microsoft.Network/virtualNetworks", "name": "off", "condition": "[equals(parameters('count'), 0)]"},
            {"type": "Microsoft.Network/virtualNetworks", "name": "vnet1",
             "properties": {"copy": [{"name": "subnets", "count": 2,
                "input": {"name": "[concat('s', copyIndex('subnets'))]", "properties": {"addressPrefix": "[format('10.0.{0}.0/24', copyIndex('subnets'))]"}}}]}}
        ],
        "outputs": {
            "first": {"type": "string", "value": "[reference('pip1').idx]"},
            "all": {"type": "array", "copy": {"count": "[parameters('count')]", "input": "[concat('pip', copyIndex(1))]"}},
            "secret": {"type": "securestring", "value": "hidden"},
            "skipped": {"type": "string", "condition": false, "value": "x"}
        }
    });
    let e = run(t).unwrap();
    assert_eq!(names(&e), ["pip1", "pip2", "pip3", "vnet1"]);
    assert_eq!(e.resources[2].properties["idx"], 2);
    assert_eq!(
        e.resources[3].properties["subnets"][1]["properties"]["addressPrefix"],
        "10.0.1.0/24"
    );
    assert_eq!(e.outputs["first"], json!({"type": "String", "value": 0}));
    assert_eq!(e.outputs["all"]["value"], json!(["pip1", "pip2", "pip3"]));
    assert!(!e.outputs.contains_key("secret") && !e.outputs.contains_key("skipped"));
}

#[test]
fn depends_on_orders_and_cycles_are_invalid_template() {
    let t = json!({"resources": [
        {"type": "Microsoft.Web/sites", "name": "web1",
         "dependsOn": ["[resourceId('Microsoft.Web/serverfarms', 'plan1')]"]},
        {"type": "Microsoft.Web/serverfarms", "name": "plan1", "dependsOn": ["vnet1"]},
        {"type": "Microsoft.Network/virtualNetworks", "name": "vnet1"}
    ]});
    assert_eq!(names(&run(t).unwrap()), ["vnet1", "plan1", "web1"]);
    let t = json!({"resources": [
        {"type": "Microsoft.Web/sites", "name": "web1", "dependsOn": ["plan1"]},
        {"type": "Microsoft.Web/serverfarms", "name": "plan1", "dependsOn": ["web1"]}
    ]});
    let e = run(t).unwrap_err();
    assert_eq!(e.code, "InvalidTemplate");
    assert!(
        e.message
            .contains("Circular dependency detected on resource"),
        "{}",
        e.message
    );
    let t = json!({"resources": [{"type": "Microsoft.Web/sites", "name": "web1", "dependsOn": ["nothere"]}]});
    let e = run(t).unwrap_err();
    assert!(
        e.message
            .contains("'nothere' is not defined in the template"),
        "{}",
        e.message
    );
    // Serial loops in batches of 2: the third waits for the first two.
    let t = json!({"resources": [
        {"type": "Microsoft.Network/publicIPAddresses", "name": "[concat('p', copyIndex())]",
         "copy": {"name": "loop", "count": 4, "mode": "serial", "batchSize": 2}},
        {"type": "Microsoft.Network/virtualNetworks", "name": "v", "dependsOn": ["loop"]}
    ]});
    assert_eq!(names(&run(t).unwrap()), ["p0", "p1", "p2", "p3", "v"]);
}

#[test]
fn reference_and_list_keys_see_computed_properties() {
    let t = json!({"resources": [
        {"type": "Microsoft.Web/sites", "name": "web1", "location": "westeurope",
         "properties": {"siteConfig": {"appSettings": [
            {"name": "STORAGE", "value": "[concat('AccountKey=', listKeys(resourceId('Microsoft.Storage/storageAccounts', 'st1'), '2023-01-01').keys[0].value)]"},
            {"name": "AI", "value": "[reference(resourceId('Microsoft.Insights/components', 'ai1'), '2020-02-02').ConnectionString]"}
         ]}}},
        {"type": "Microsoft.Storage/storageAccounts", "name": "st1"},
        {"type": "Microsoft.Insights/components", "name": "ai1", "location": "westeurope", "kind": "web"}
    ], "outputs": {
        "host": {"type": "string", "value": "[reference('web1').defaultHostName]"},
        "blob": {"type": "string", "value": "[reference('st1', '2023-01-01', 'Full').properties.primaryEndpoints.blob]"}
    }});
    let e = run(t).unwrap();
    // The app needed the storage account and Application Insights first.
    assert_eq!(names(&e), ["st1", "ai1", "web1"]);
    let settings = &e.resources[2].properties["siteConfig"]["appSettings"];
    assert!(settings[0]["value"].as_str().unwrap().len() > 60);
    assert!(settings[1]["value"]
        .as_str()
        .unwrap()
        .starts_with("InstrumentationKey="));
    assert_eq!(e.outputs["host"]["value"], "web1.azurewebsites.net");
    assert_eq!(
        e.outputs["blob"]["value"],
        "https://st1.blob.core.windows.net/"
    );
    let again = run(e.resources.iter().fold(json!(null), |_, _| json!({"resources": [
        {"type": "Microsoft.Storage/storageAccounts", "name": "st1"}],
        "outputs": {"k": {"type": "string", "value": "[listKeys('st1', '2023-01-01').keys[0].value]"}}})))
    .unwrap();
    assert_eq!(
        again.outputs["k"]["value"],
        settings[0]["value"]
            .as_str()
            .unwrap()
            .trim_start_matches("AccountKey=")
    );
}

#[test]
fn nested_and_linked_deployments() {
    let inner = json!({
        "parameters": {"vnetName": {"type": "string"}},
        "variables": {"prefix": "10.9.0.0/16"},
        "resources": [{"type": "Microsoft.Network/virtualNetworks", "name": "[parameters('vnetName')]",
            "properties": {"addressSpace": {"addressPrefixes": ["[variables('prefix')]"]}}}],
        "outputs": {"id": {"type": "string", "value": "[resourceId('Microsoft.Network/virtualNetworks', parameters('vnetName'))]"}}
    });
    let t = json!({
        "parameters": {"name": {"type": "string", "defaultValue": "outer-vnet"}},
        "variables": {"prefix": "10.1.0.0/16"},
        "resources": [
            {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "innerScope",
             "resourceGroup": "rg2",
             "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
                "parameters": {"vnetName": {"value": "[concat(parameters('name'), '-inner')]"}},
                "template": inner}},
            {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "outerScope",
             "properties": {"mode": "Incremental",
                "template": {"resources": [{"type": "Microsoft.Network/virtualNetworks", "name": "[parameters('name')]",
                    "properties": {"addressSpace": {"addressPrefixes": ["[variables('prefix')]"]}}}]}}},
            {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "linked",
             "properties": {"mode": "Incremental", "templateLink": {"relativePath": "nested/vnet.json"},
                "parameters": {"vnetName": {"value": "linked-vnet"}}}}
        ],
        "outputs": {"innerId": {"type": "string", "value": "[reference('innerScope').outputs.id.value]"}}
    });
    let mut r = req(t, &[]);
    r.template_uri = Some("file:///tmp/t/azuredeploy.json".into());
    r.linked_templates
        .insert("file:///tmp/t/nested/vnet.json".into(), inner);
    let e = evaluate(&r, &NoState).unwrap();
    assert_eq!(names(&e), ["outer-vnet-inner", "outer-vnet", "linked-vnet"]);
    assert_eq!(e.resources[0].id.resource_group, "rg2");
    assert_eq!(
        e.resources[0].properties["addressSpace"]["addressPrefixes"][0],
        "10.9.0.0/16"
    );
    assert_eq!(
        e.resources[1].properties["addressSpace"]["addressPrefixes"][0],
        "10.1.0.0/16"
    );
    assert_eq!(
        e.outputs["innerId"]["value"],
        "/subscriptions/sub1/resourceGroups/rg2/providers/Microsoft.Network/virtualNetworks/outer-vnet-inner"
    );
    assert_eq!(e.nested.len(), 3);
    // A link to a file the CLI did not send.
    let mut r2 = r.clone();
    r2.linked_templates.clear();
    assert_eq!(
        evaluate(&r2, &NoState).unwrap_err().code,
        "InvalidContentLink"
    );
}

#[test]
fn language_version_2_symbolic_names_existing_and_extension_scope() {
    let t = json!({
        "languageVersion": "2.0",
        "parameters": {"site": {"type": "string", "defaultValue": "web2"}},
        "resources": {
            "plan": {"type": "Microsoft.Web/serverfarms", "apiVersion": "2022-09-01", "name": "plan2"},
            "vnet": {"existing": true, "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "hub"},
            "site": {"type": "Microsoft.Web/sites", "apiVersion": "2022-09-01", "name": "[parameters('site')]",
                "dependsOn": ["plan"],
                "properties": {"serverFarmId": "[resourceId('Microsoft.Web/serverfarms', 'plan2')]"}},
            "lock": {"type": "Microsoft.Authorization/locks", "apiVersion": "2020-05-01", "name": "nodelete",
                "scope": "[format('Microsoft.Web/sites/{0}', parameters('site'))]", "dependsOn": ["site"],
                "properties": {"level": "CanNotDelete"}}
        },
        "outputs": {"host": {"type": "string", "value": "[reference('site').defaultHostName]"}}
    });
    let e = run(t).unwrap();
    assert_eq!(
        names(&e),
        ["plan2", "web2", "nodelete"],
        "the existing VNet is not deployed"
    );
    assert_eq!(
        e.resources[2].id.to_string(),
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Web/sites/web2/providers/Microsoft.Authorization/locks/nodelete"
    );
    assert_eq!(e.outputs["host"]["value"], "web2.azurewebsites.net");
}

#[test]
fn errors_carry_line_and_column_of_the_template_text() {
    let text = "{\n  \"resources\": [\n    {\n      \"type\": \"Microsoft.Web/sites\",\n      \"name\": \"[concat('a']\"\n    }\n  ]\n}\n";
    let mut r = req(serde_json::from_str(text).unwrap(), &[]);
    r.template_text = Some(text.into());
    let e = evaluate(&r, &NoState).unwrap_err();
    assert!(
        e.message.contains("line '5' and column '15'"),
        "{}",
        e.message
    );
}

/// The lab's state as `reference()` sees it (for templates that build on
/// what an earlier deployment made).
struct Lab<'a>(&'a crate::model::LabState);

impl StateLookup for Lab<'_> {
    fn view(&self, id: &ResourceId) -> Option<Value> {
        crate::plan::view::resource_view(self.0, &crate::model::LabConfig::default(), id).ok()
    }
}

/// One template of tests/templates into `state`: evaluated, validated and
/// committed as the daemon would. Returns the new state and the outputs.
fn deploy_file(
    state: &crate::model::LabState,
    file: &std::path::Path,
    given: &[(String, Value)],
) -> Result<(crate::model::LabState, Map<String, Value>), AzureError> {
    let text = std::fs::read_to_string(file).unwrap();
    let template: Value = serde_json::from_str(&text).unwrap();
    let mut r = req(template, &[]);
    r.resource_group = "rg-templates".into();
    let file = std::fs::canonicalize(file).unwrap();
    r.template_uri = Some(format!("file://{}", file.display()));
    r.template_text = Some(text);
    // The files beside it, as the CLI sends them (linked templates).
    let mut dirs = vec![file.parent().unwrap().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                if let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(&p).unwrap()) {
                    r.linked_templates
                        .insert(format!("file://{}", p.display()), v);
                }
            }
        }
    }
    let params_file = file.with_file_name(
        file.file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".json", ".parameters.json"),
    );
    if let Ok(p) = std::fs::read_to_string(params_file) {
        let p: Value = serde_json::from_str(&p).unwrap();
        for (k, v) in p["parameters"].as_object().unwrap() {
            if let Some(v) = v.get("value") {
                // The gallery's harness: GET-PREREQ-x is the prerequisite's output x.
                let prereq = v
                    .as_str()
                    .and_then(|s| s.strip_prefix("GET-PREREQ-"))
                    .and_then(|x| given.iter().find(|(k, _)| k.eq_ignore_ascii_case(x)))
                    .map(|(_, v)| v.clone());
                r.parameters
                    .insert(k.clone(), prereq.unwrap_or_else(|| required_value(v)));
            }
        }
    }
    let declared: Vec<String> = r.template["parameters"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for (k, v) in given {
        if declared.iter().any(|d| d.eq_ignore_ascii_case(k)) {
            r.parameters.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in required_parameters(&r.template) {
        r.parameters.entry(k).or_insert(v);
    }
    let e = evaluate(&r, &Lab(state))?;
    assert!(!e.resources.is_empty(), "{}", file.display());
    let next = crate::validate::apply_resources(
        state,
        e.resources,
        &crate::model::LabConfig::default(),
        &crate::validate::RequestContext::default(),
    )?;
    Ok((next, e.outputs))
}

/// Published templates that Azure itself refuses, with the error Azure
/// gives (SOURCES.md says why): the lab must refuse them the same way.
const REFUSED_UPSTREAM: &[(&str, &str)] = &[
    // An NSG flow log (its prerequisite's NSG): Azure stopped creating them
    // on 30 June 2025 (VNet flow logs replace them).
    (
        "networkwatcher-flowLogs-create",
        "InvalidTargetResourceType",
    ),
    // Subnet 'function' is 10.0.0.1/24: host bits set, and it overlaps 'data' (10.0.0.0/24).
    (
        "app-function-private-endpoint-storage",
        "InvalidCIDRNotation",
    ),
    // Its gateway's public IP is SKU-less and Dynamic: a Basic address,
    // which Azure no longer creates (Basic public IPs retired on 30
    // September 2025). The lab makes a SKU-less address Standard, which
    // must be Static.
    (
        "site-to-site-vpn-create",
        "StandardSkuPublicIPAddressesMustBeStatic",
    ),
];

/// Real public templates (tests/templates, SOURCES.md) deploy unchanged:
/// each evaluates and validates into a lab (after its prerequisites, whose
/// outputs feed its parameters, as the gallery's own test harness does).
#[test]
fn real_templates_deploy_unchanged() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/templates");
    let mut seen = Vec::new();
    let mut failed = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let folder = entry.unwrap().path();
        let file = folder.join("azuredeploy.json");
        if !file.exists() {
            continue;
        }
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let mut state = crate::model::LabState::default();
        let mut given = Vec::new();
        let prereq = folder.join("prereqs/prereq.azuredeploy.json");
        let result = (|| {
            if prereq.exists() {
                let (s, outputs) = deploy_file(&state, &prereq, &[])?;
                state = s;
                given = outputs
                    .into_iter()
                    .map(|(k, v)| (k, v["value"].clone()))
                    .collect();
            }
            deploy_file(&state, &file, &given)
        })();
        let expected = REFUSED_UPSTREAM
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, c)| *c);
        match (result, expected) {
            (Ok(_), None) => {}
            (Err(e), Some(code)) if e.code == code => {}
            (Ok(_), Some(code)) => {
                failed.push(format!("{name}: accepted; Azure refuses it with {code}"))
            }
            (Err(e), _) => failed.push(format!("{name}: {} {}", e.code, e.message)),
        }
        seen.push(name);
    }
    assert!(
        failed.is_empty(),
        "{} of {} templates:\n{}",
        failed.len(),
        seen.len(),
        failed.join("\n")
    );
    assert!(
        seen.len() >= 12,
        "only {} real templates: {seen:?}",
        seen.len()
    );
}

/// Placeholder values in the quickstarts' parameter files ("GEN-UNIQUE",
/// "GEN-PASSWORD") become what the gallery's test harness would give.
fn required_value(v: &Value) -> Value {
    match v.as_str() {
        Some(s) if s.starts_with("GEN-") => json!(format!("lab{}", s.len())),
        _ => v.clone(),
    }
}

/// Values for parameters with no default (passwords, names): what a user
/// would type.
fn required_parameters(template: &Value) -> Vec<(String, Value)> {
    template["parameters"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, d)| d.get("defaultValue").is_none())
        .map(|(k, d)| {
            let v = match d["type"]
                .as_str()
                .unwrap_or("string")
                .to_ascii_lowercase()
                .as_str()
            {
                "int" => json!(1),
                "bool" => json!(false),
                "array" => json!([]),
                "object" | "secureobject" => json!({}),
                t => match d.get("allowedValues").and_then(|a| a.get(0)) {
                    Some(a) => a.clone(),
                    None if t == "securestring" || k.to_ascii_lowercase().contains("password") => {
                        json!("Lab-Passw0rd!")
                    }
                    // Names: what a user would type for one.
                    None => json!(format!(
                        "lab{}",
                        k.to_ascii_lowercase()
                            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
                    )),
                },
            };
            (k.clone(), v)
        })
        .collect()
}

/// A securestring's value is never echoed: not in an error, not in outputs.
#[test]
fn secure_values_are_never_echoed() {
    let t = json!({
        "parameters": {"pw": {"type": "securestring", "allowedValues": ["a"]}},
        "resources": [{"type": "Microsoft.Network/virtualNetworks", "name": "v"}],
        "outputs": {"pw": {"type": "securestring", "value": "[parameters('pw')]"}}
    });
    let e = evaluate(&req(t.clone(), &[("pw", json!("hunter2"))]), &NoState).unwrap_err();
    assert!(!e.message.contains("hunter2"), "{}", e.message);
    let ok = evaluate(&req(t, &[("pw", json!("a"))]), &NoState).unwrap();
    assert!(!ok.outputs.contains_key("pw"));
    let t = json!({"parameters": {"o": {"type": "secureObject"}}, "resources": []});
    let e = evaluate(&req(t, &[("o", json!("hunter2"))]), &NoState).unwrap_err();
    assert!(!e.message.contains("hunter2"), "{}", e.message);
}
