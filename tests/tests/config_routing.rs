//! Issue 5, configuration routing end to end: the platform's own traffic
//! for an app (content share, container image pull, Key Vault references,
//! custom backup/restore) leaves the worker over the public route or
//! through the integration as the site's settings say, and the emulated
//! service's answer (the source address it saw, and by which path) shows
//! which one it took.

use serde_json::{json, Value};
use vnet_e2e::fixtures::{
    dnsmasq_extension, private_dns_zone, private_endpoint, storage_account, template, vm_in,
    zone_group, RG,
};
use vnet_e2e::*;

const STORE: &str = "cfgstore1";
const VAULT: &str = "cfg-kv-1";
const REGISTRY: &str = "cfgregistry1";

fn subnet_of(name: &str) -> String {
    format!(
        "{}/subnets/{name}",
        id(RG, "Microsoft.Network/virtualNetworks", "vnet1")
    )
}

fn site_id(name: &str) -> String {
    id(RG, "Microsoft.Web/sites", name)
}

/// `vnet1` with `integration` 10.0.1.0/24 (service endpoints for Storage,
/// Key Vault and Container Registry); plan `plan1` (P1v3, 1 instance).
fn base() -> Vec<Value> {
    vec![
        json!({ "type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "location": "westeurope",
                "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": [
                    { "name": "integration", "properties": { "addressPrefix": "10.0.1.0/24",
                      "serviceEndpoints": [ { "service": "Microsoft.Storage" },
                                            { "service": "Microsoft.KeyVault" },
                                            { "service": "Microsoft.ContainerRegistry" } ] } } ] } }),
        fixtures::plan("plan1", "P1v3", 1, json!({})),
    ]
}

/// Network rules admitting only the integration subnet (over its service endpoint).
fn subnet_only() -> Value {
    json!({ "defaultAction": "Deny", "virtualNetworkRules": [ { "id": subnet_of("integration") } ] })
}

fn storage(acls: Value) -> Value {
    storage_account(STORE, "Enabled", Some(acls))
}

fn vault(acls: Value) -> Vec<Value> {
    vec![
        json!({ "type": "Microsoft.KeyVault/vaults", "name": VAULT, "location": "westeurope",
                "properties": { "sku": { "family": "A", "name": "standard" },
                                "tenantId": "00000000-0000-0000-0000-000000000000",
                                "networkAcls": acls } }),
        json!({ "type": "Microsoft.KeyVault/vaults/secrets", "name": format!("{VAULT}/db-password"),
                "properties": { "value": "s3cret" } }),
    ]
}

/// An integrated Linux app running a long sleep, with these app settings and
/// extra `properties`.
fn site(name: &str, settings: Value, props: Value, identity: bool) -> Value {
    let mut p = json!({ "serverFarmId": id(RG, "Microsoft.Web/serverfarms", "plan1"),
                        "virtualNetworkSubnetId": subnet_of("integration"),
                        "siteConfig": { "appCommandLine": "sleep 3600", "appSettings": settings } });
    for (k, v) in props.as_object().unwrap() {
        if k == "siteConfig" {
            for (k2, v2) in v.as_object().unwrap() {
                p["siteConfig"][k2] = v2.clone();
            }
        } else {
            p[k] = v.clone();
        }
    }
    let mut s = json!({ "type": "Microsoft.Web/sites", "name": name, "location": "westeurope",
                        "kind": "app,linux", "properties": p });
    if identity {
        s["identity"] = json!({ "type": "SystemAssigned" });
    }
    s
}

/// Instance 0's startup status from `webapp show`.
fn startup(lab: &Lab, name: &str) -> Value {
    let v = lab.show(&site_id(name));
    v["emulator"]["startup"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["instance"] == 0))
        .cloned()
        .unwrap_or_else(|| panic!("no startup status for {name}: {v:#}"))
}

fn outbound_ip(lab: &Lab, name: &str) -> String {
    let v = lab.show(&site_id(name));
    v["properties"]["outboundIpAddresses"]
        .as_str()
        .and_then(|s| s.split(',').next())
        .expect("outboundIpAddresses")
        .to_string()
}

fn processes(lab: &Lab, name: &str) -> usize {
    lab.show(&site_id(name))["emulator"]["processes"]
        .as_array()
        .map_or(0, |a| a.len())
}

/// `webapp config appsettings list-references`: Azure's Key Vault reference statuses.
fn references(lab: &Lab, name: &str) -> Value {
    lab.cli_json(&[
        "webapp",
        "config",
        "appsettings",
        "list-references",
        "-g",
        RG,
        "-n",
        name,
    ])
}

fn set(lab: &Lab, name: &str, flag: &str, value: bool) {
    lab.cli_ok(&[
        "webapp",
        "config",
        "set",
        "-g",
        RG,
        "-n",
        name,
        flag,
        &value.to_string(),
    ]);
}

/// Restarts the app until its startup status satisfies `ok` (a service host
/// re-reads changed network rules within a moment, not at once).
fn restart_until(lab: &Lab, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let mut s = startup(lab, name);
    for _ in 0..20 {
        if ok(&s) {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        lab.cli_ok(&["webapp", "restart", "-g", RG, "-n", name]);
        s = startup(lab, name);
    }
    panic!("startup of {name} never got there: {s:#}");
}

fn content_share_settings() -> Value {
    json!([
        { "name": "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
          "value": format!("DefaultEndpointsProtocol=https;AccountName={STORE};AccountKey=a2V5;EndpointSuffix=core.windows.net") },
        { "name": "WEBSITE_CONTENTSHARE", "value": "func1-content" }
    ])
}

#[test]
fn content_share_moves_between_the_public_route_and_the_integration() {
    let Some(lab) = Lab::start() else { return };
    let mut res = base();
    res.push(storage(json!({ "defaultAction": "Allow" })));
    res.push(site("func1", content_share_settings(), json!({}), false));
    lab.deploy(RG, &template(res));
    let outbound = outbound_ip(&lab, "func1");

    // Off (Azure's default): SMB 445 and HTTPS 443 over the public route,
    // seen from the app's outbound IP.
    let s = startup(&lab, "func1");
    let cs = &s["contentShare"];
    assert_eq!(cs["status"], "Succeeded", "{s:#}");
    assert_eq!(cs["route"], "Public");
    let contacts = cs["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 2);
    for c in contacts {
        assert_eq!(c["sourceAddress"], outbound.as_str(), "{c:#}");
        assert_eq!(c["path"], "public", "{c:#}");
    }
    assert_eq!(contacts[0]["port"], 445);
    assert_eq!(contacts[1]["port"], 443);
    assert_eq!(processes(&lab, "func1"), 1);

    // On: through the integration, over the subnet's service endpoint, from
    // the instance address.
    set(&lab, "func1", "--vnet-content-share-enabled", true);
    let s = startup(&lab, "func1");
    let cs = &s["contentShare"];
    assert_eq!(cs["status"], "Succeeded", "{s:#}");
    assert_eq!(cs["route"], "VirtualNetwork");
    for c in cs["contacts"].as_array().unwrap() {
        assert_eq!(c["sourceAddress"], "10.0.1.4", "{c:#}");
        assert_eq!(c["path"], "serviceEndpoint", "{c:#}");
    }

    // The storage account now admits only the subnet: the integration still
    // works; turned off again, the public route is refused and the app does
    // not start.
    lab.deploy(RG, &template(vec![storage(subnet_only())]));
    lab.cli_ok(&["webapp", "restart", "-g", RG, "-n", "func1"]);
    assert_eq!(
        startup(&lab, "func1")["contentShare"]["status"],
        "Succeeded"
    );
    set(&lab, "func1", "--vnet-content-share-enabled", false);
    // (Retried while a loaded machine turns the refusal into a timeout.)
    let s = restart_until(&lab, "func1", |s| {
        s["contentShare"]["status"] == "Failed"
            && s["contentShare"]["contacts"][0]["error"] == "AuthorizationFailure"
    });
    assert_eq!(s["appStarted"], false);
    assert!(
        s["contentShare"]["contacts"][0]["error"] == "AuthorizationFailure",
        "{s:#}"
    );
    assert_eq!(
        processes(&lab, "func1"),
        0,
        "the app must not run without its content share"
    );

    // Back on, but an NSG on the subnet denies TCP 445 outbound: a clear
    // status naming the port and the NSG, and the rule's counter moved.
    set(&lab, "func1", "--vnet-content-share-enabled", true);
    assert_eq!(startup(&lab, "func1")["appStarted"], true);
    let nsg = json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg1", "location": "westeurope",
        "properties": { "securityRules": [ { "name": "deny-smb", "properties": {
            "priority": 100, "direction": "Outbound", "access": "Deny", "protocol": "Tcp",
            "sourceAddressPrefix": "*", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "445" } } ] } });
    let mut vnet = base().remove(0);
    vnet["properties"]["subnets"][0]["properties"]["networkSecurityGroup"] =
        json!({ "id": id(RG, "Microsoft.Network/networkSecurityGroups", "nsg1") });
    lab.deploy(RG, &template(vec![nsg, vnet]));
    lab.cli_ok(&["webapp", "restart", "-g", RG, "-n", "func1"]);
    let s = startup(&lab, "func1");
    assert_eq!(s["contentShare"]["status"], "Failed", "{s:#}");
    let msg = s["contentShare"]["message"].as_str().unwrap();
    assert!(
        msg.contains("TCP 445") && msg.contains("443 and 445"),
        "{msg}"
    );
    assert!(
        s["contentShare"]["contacts"][1]["ok"] == true,
        "443 still passes: {s:#}"
    );
    let nsg_view = lab.show(&id(RG, "Microsoft.Network/networkSecurityGroups", "nsg1"));
    let hits = nsg_view["properties"]["securityRules"][0]["emulator"]["hits"]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("hit count of deny-smb: {nsg_view:#}"));
    assert!(hits > 0, "deny-smb decided it: {nsg_view:#}");
}

#[test]
fn image_pull_moves_between_the_public_route_and_the_integration() {
    let Some(lab) = Lab::start() else { return };
    let mut res = base();
    res.push(
        json!({ "type": "Microsoft.ContainerRegistry/registries", "name": REGISTRY,
        "location": "westeurope", "sku": { "name": "Premium" },
        "properties": { "lab": { "images": ["team/api:1.0"] } } }),
    );
    let image = format!("DOCKER|{REGISTRY}.azurecr.io/team/api:1.0");
    res.push(site(
        "img1",
        json!([]),
        json!({ "siteConfig": { "linuxFxVersion": image } }),
        false,
    ));
    res.push(site(
        "img2",
        json!([]),
        json!({ "siteConfig": { "linuxFxVersion": format!("DOCKER|{REGISTRY}.azurecr.io/team/missing:9") } }),
        false,
    ));
    lab.deploy(RG, &template(res));
    let outbound = outbound_ip(&lab, "img1");
    let s = startup(&lab, "img1");
    assert_eq!(s["imagePull"]["status"], "Succeeded", "{s:#}");
    assert_eq!(s["imagePull"]["route"], "Public");
    assert_eq!(
        s["imagePull"]["contacts"][0]["sourceAddress"],
        outbound.as_str()
    );

    set(&lab, "img1", "--vnet-image-pull-enabled", true);
    let s = startup(&lab, "img1");
    assert_eq!(s["imagePull"]["status"], "Succeeded", "{s:#}");
    assert_eq!(s["imagePull"]["route"], "VirtualNetwork");
    assert_eq!(s["imagePull"]["contacts"][0]["sourceAddress"], "10.0.1.4");

    // The newer outboundVnetRouting object decides the same (a PUT of the
    // site replaces the legacy flag set above).
    let with_routing = |routing: Value| {
        let fx =
            json!({ "siteConfig": { "linuxFxVersion": image }, "outboundVnetRouting": routing });
        lab.deploy(RG, &template(vec![site("img1", json!([]), fx, false)]));
        startup(&lab, "img1")["imagePull"]["route"].clone()
    };
    assert_eq!(with_routing(json!({ "imagePullTraffic": false })), "Public");
    assert_eq!(
        with_routing(json!({ "allTraffic": true })),
        "VirtualNetwork"
    );
    assert_eq!(
        with_routing(json!({ "contentShareTraffic": true })),
        "Public"
    );
    assert_eq!(
        with_routing(json!({ "imagePullTraffic": true })),
        "VirtualNetwork"
    );

    // A tag the registry does not have: the container never starts.
    let s = startup(&lab, "img2");
    assert_eq!(s["imagePull"]["status"], "Failed", "{s:#}");
    assert!(s["imagePull"]["message"]
        .as_str()
        .unwrap()
        .contains("MANIFEST_UNKNOWN"));
    assert_eq!(s["appStarted"], false);
    assert_eq!(processes(&lab, "img2"), 0);
}

#[test]
fn key_vault_references_try_public_then_the_integration() {
    let Some(lab) = Lab::start() else { return };
    let mut res = base();
    res.extend(vault(subnet_only()));
    let by_name = format!("@Microsoft.KeyVault(VaultName={VAULT};SecretName=db-password)");
    let by_uri = format!(
        "@Microsoft.KeyVault(SecretUri=https://{VAULT}.vault.azure.net/secrets/db-password/)"
    );
    let missing = format!("@Microsoft.KeyVault(VaultName={VAULT};SecretName=nope)");
    res.push(site(
        "kv1",
        json!([ { "name": "DB_PASSWORD", "value": by_name },
                { "name": "DB_PASSWORD2", "value": by_uri },
                { "name": "MISSING", "value": missing },
                { "name": "BROKEN", "value": "@Microsoft.KeyVault(VaultName=x)" } ]),
        json!({}),
        true,
    ));
    // No managed identity: nothing is fetched.
    res.push(site(
        "kv2",
        json!([ { "name": "DB_PASSWORD", "value": by_name } ]),
        json!({}),
        false,
    ));
    lab.deploy(RG, &template(res));

    let refs = references(&lab, "kv1");
    let status = |name: &str| -> Value {
        refs["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["properties"].clone())
            .unwrap_or_else(|| panic!("{name} in {refs:#}"))
    };
    let p = status("DB_PASSWORD");
    assert_eq!(p["status"], "Resolved", "{p:#}");
    assert_eq!(
        p["route"], "VirtualNetwork",
        "public first, refused, then the integration: {p:#}"
    );
    let contacts = p["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 2, "{p:#}");
    assert_eq!(contacts[0]["route"], "Public");
    assert_eq!(contacts[0]["error"], "ForbiddenByFirewall");
    assert_eq!(contacts[1]["sourceAddress"], "10.0.1.4");
    assert!(p.get("value").is_none(), "the API never shows the secret");
    assert_eq!(status("DB_PASSWORD2")["status"], "Resolved");
    assert_eq!(status("MISSING")["status"], "SecretNotFound");
    assert_eq!(status("BROKEN")["status"], "InvalidSyntax");

    // The app's environment holds the secret; an unresolved reference keeps its text.
    let env = lab.exec_ok(
        &["--app", "kv1"],
        &["sh", "-c", "echo \"$DB_PASSWORD|$DB_PASSWORD2|$MISSING\""],
    );
    assert_eq!(
        env.trim(),
        format!("s3cret|s3cret|@Microsoft.KeyVault(VaultName={VAULT};SecretName=nope)")
    );
    let pid = lab.app_pid("kv1", 0);
    assert_eq!(process_env(pid)["DB_PASSWORD"], "s3cret");

    let refs2 = references(&lab, "kv2");
    assert_eq!(
        refs2["value"][0]["properties"]["status"], "MSINotEnabled",
        "{refs2:#}"
    );

    // A vault open to the internet answers on the public route already.
    lab.deploy(RG, &template(vault(json!({ "defaultAction": "Allow" }))));
    restart_until(&lab, "kv1", |s| {
        s["keyVaultReferences"]["DB_PASSWORD"]["route"] == "Public"
    });
    let refs = references(&lab, "kv1");
    let p = refs["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "DB_PASSWORD")
        .unwrap()["properties"]
        .clone();
    assert_eq!(p["route"], "Public", "{p:#}");
    assert_eq!(p["contacts"].as_array().unwrap().len(), 1);
}

#[test]
fn backup_and_restore_follow_vnet_backup_restore_enabled() {
    let Some(lab) = Lab::start() else { return };
    let mut res = base();
    res.push(storage(subnet_only()));
    res.push(site("web1", json!([]), json!({}), false));
    lab.deploy(RG, &template(res));
    let url = format!("https://{STORE}.blob.core.windows.net/backups?sv=2022-11-02&sig=x");
    // `webapp config backup VERB ... --backup-name NAME EXTRA...`
    let args = |verb: &'static str, name: &'static str, extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = ["webapp", "config", "backup", verb, "-g", RG]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(
            [
                "--webapp-name",
                "web1",
                "--container-url",
                &url,
                "--backup-name",
                name,
            ]
            .map(String::from),
        );
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| lab.cli(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // Public route: the account admits only the subnet.
    let out = run(args("create", "nightly", &[]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BackupFailed") && err.contains("AuthorizationFailure"),
        "{err}"
    );

    set(&lab, "web1", "--vnet-backup-restore-enabled", true);
    let out = run(args("create", "nightly", &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["properties"]["route"], "VirtualNetwork");
    assert_eq!(v["properties"]["contact"]["sourceAddress"], "10.0.1.4");
    let out = run(args("restore", "nightly", &[]));
    let restored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        restored["properties"]["restoredBytes"].as_u64().unwrap() > 0,
        "{restored:#}"
    );

    // Database backup over the integration: refused with the seed's reason.
    let a = args("create", "withdb", &["--db-name", "orders"]);
    lab.refused(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        "DatabaseBackupNotSupportedOverVirtualNetwork",
    );
}

#[test]
fn private_vault_certificates_and_logs_to_private_storage_are_refused() {
    let Some(lab) = Lab::start() else { return };
    let mut res = base();
    res.extend(vault(subnet_only()));
    res.push(storage(subnet_only()));
    res.push(site("web1", json!([]), json!({}), false));
    lab.deploy(RG, &template(res));
    let cert = json!({ "type": "Microsoft.Web/certificates", "name": "cert1", "location": "westeurope",
        "properties": { "keyVaultId": id(RG, "Microsoft.KeyVault/vaults", VAULT), "keyVaultSecretName": "tls" } });
    let msg = lab.deploy_refused(
        RG,
        &template(vec![cert]),
        "KeyVaultCertificateFromPrivateVaultNotSupported",
    );
    assert!(
        msg.contains("private key vaults is currently not supported"),
        "{msg}"
    );
    let logs = json!({ "type": "Microsoft.Web/sites/config", "name": "web1/logs",
        "properties": { "httpLogs": { "azureBlobStorage": {
            "sasUrl": format!("https://{STORE}.blob.core.windows.net/logs?sv=x"), "enabled": true } } } });
    let msg = lab.deploy_refused(
        RG,
        &template(vec![logs]),
        "AppServiceLogsToPrivateStorageNotSupported",
    );
    assert!(
        msg.contains("private storage accounts are currently not supported"),
        "{msg}"
    );
}

/// A Key Vault reference to a vault reachable only through its private
/// endpoint: the public route is refused, the integration resolves the
/// vault's name through the linked privatelink zone to the endpoint.
/// `base()` plus subnet `endpoints` 10.0.2.0/24, the vault closed to the
/// public (Deny, access Disabled), and its endpoint `kv-pe` in `endpoints`
/// (at `pe_ip` when given).
fn closed_vault_with_endpoint(pe_ip: Option<&str>) -> Vec<Value> {
    let mut res = base();
    res[0]["properties"]["subnets"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "endpoints", "properties": { "addressPrefix": "10.0.2.0/24" } }));
    let mut kv = vault(json!({ "defaultAction": "Deny" }));
    kv[0]["properties"]["publicNetworkAccess"] = json!("Disabled");
    res.extend(kv);
    let mut pe = private_endpoint(
        "kv-pe",
        &subnet_of("endpoints"),
        &id(RG, "Microsoft.KeyVault/vaults", VAULT),
        "vault",
    );
    if let Some(ip) = pe_ip {
        pe["properties"]["ipConfigurations"] = json!([{ "name": "ip", "properties": {
            "groupId": "vault", "memberName": "default", "privateIPAddress": ip } }]);
    }
    res.push(pe);
    res
}

/// App `kv1` (with a managed identity) whose DB_PASSWORD references the
/// vault's secret by name.
fn kv1_with_a_reference_by_name() -> Value {
    let by_name = format!("@Microsoft.KeyVault(VaultName={VAULT};SecretName=db-password)");
    site(
        "kv1",
        json!([{ "name": "DB_PASSWORD", "value": by_name }]),
        json!({}),
        true,
    )
}

#[test]
fn key_vault_references_reach_a_private_vault_over_its_private_endpoint() {
    let Some(lab) = Lab::start() else { return };
    let mut res = closed_vault_with_endpoint(None);
    let zone = "privatelink.vaultcore.azure.net";
    res.push(private_dns_zone(zone, &[(RG, "vnet1")], &[]));
    res.push(zone_group("kv-pe", "vault", zone));
    res.push(kv1_with_a_reference_by_name());
    lab.deploy(RG, &template(res));
    let s = startup(&lab, "kv1");
    let r = &s["keyVaultReferences"]["DB_PASSWORD"];
    assert_eq!(r["status"], "Resolved", "{s:#}");
    assert_eq!(r["route"], "VirtualNetwork");
    let contacts = r["contacts"].as_array().unwrap();
    assert_eq!(contacts[0]["error"], "ForbiddenByFirewall", "{r:#}");
    assert_eq!(contacts[1]["path"], "privateEndpoint", "{r:#}");
    assert_eq!(contacts[1]["sourceAddress"], "10.0.1.4");
    assert!(
        contacts[1]["address"]
            .as_str()
            .unwrap()
            .starts_with("10.0.2."),
        "{r:#}"
    );
    let env = lab.exec_ok(&["--app", "kv1"], &["printenv", "DB_PASSWORD"]);
    assert_eq!(env.trim(), "s3cret");
}

/// Through the integration the platform asks the app's custom DNS servers
/// (here the VNet's `dhcpOptions.dnsServers`: a VM running dnsmasq with its
/// own A record for the vault, and no private zone linked): the reference
/// resolves to the private endpoint only because that server says so.
#[test]
fn key_vault_references_use_the_vnets_custom_dns_server() {
    let Some(lab) = Lab::start() else { return };
    let mut res = closed_vault_with_endpoint(Some("10.0.2.20"));
    res[0]["properties"]["dhcpOptions"] = json!({ "dnsServers": ["10.0.2.10"] });
    res.extend(vm_in(RG, "dns1", &subnet_of("endpoints"), "10.0.2.10"));
    res.push(dnsmasq_extension(
        "dns1",
        "10.0.2.10",
        &format!("{VAULT}.vault.azure.net"),
        "10.0.2.20",
    ));
    lab.deploy(RG, &template(res));
    let pe = lab.cli_json(&[
        "network",
        "private-endpoint",
        "show",
        "-g",
        RG,
        "-n",
        "kv-pe",
    ]);
    assert_eq!(
        pe["properties"]["customDnsConfigs"][0]["ipAddresses"][0], "10.0.2.20",
        "{pe:#}"
    );
    // The app comes after its DNS server runs (the platform asks it at start).
    lab.deploy(RG, &template(vec![kv1_with_a_reference_by_name()]));
    let s = restart_until(&lab, "kv1", |s| {
        s["keyVaultReferences"]["DB_PASSWORD"]["status"] == "Resolved"
    });
    let r = &s["keyVaultReferences"]["DB_PASSWORD"];
    assert_eq!(r["route"], "VirtualNetwork", "{r:#}");
    let last = r["contacts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["address"], "10.0.2.20", "{r:#}");
    assert_eq!(last["path"], "privateEndpoint", "{r:#}");
    assert_eq!(
        lab.exec_ok(&["--app", "kv1"], &["printenv", "DB_PASSWORD"])
            .trim(),
        "s3cret"
    );
}
