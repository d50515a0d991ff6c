//! Issue 5, end to end: emulated storage accounts, key vaults and registries
//! in their own namespaces, reached from an app and a VM with curl (HTTP and
//! HTTPS with the lab CA) and vnet-probe (SMB 445), on the public path and
//! over service endpoints, with their network rules deciding.

use serde_json::{json, Value};
use vnet_e2e::fixtures::{
    net, plan1_and_integrated_web1, storage_account, subnet_id as subnet_of, template, vm_in, RG,
};
use vnet_e2e::*;

const STORE: &str = "labstore1";
const VAULT: &str = "kv-lab-1";
const REGISTRY: &str = "labregistry1";

fn storage_id() -> String {
    id(RG, "Microsoft.Storage/storageAccounts", STORE)
}

/// A storage account with these `networkAcls` and `publicNetworkAccess`.
fn storage(acls: Value, public_access: &str) -> Value {
    storage_account(STORE, public_access, Some(acls))
}

fn vm(name: &str, vnet: &str, subnet: &str, ip: &str) -> Vec<Value> {
    vm_in(RG, name, &subnet_of(vnet, subnet), ip)
}

/// VNet `vnet1` 10.0.0.0/16 with `integration` 10.0.1.0/24 and `vms`
/// 10.0.2.0/24 (each with `endpoints` as its serviceEndpoints) and `plain`
/// 10.0.3.0/24 (none); `web1` (route-all off) integrated; `vm1` 10.0.2.4,
/// `vm2` 10.0.3.4; the storage account; a vault with one secret; a
/// registry with one image.
fn services_lab(endpoints: Value, storage_res: Value, extra: Vec<Value>) -> Value {
    let sub = |name: &str, prefix: &str, se: &Value| json!({ "name": name, "properties": { "addressPrefix": prefix, "serviceEndpoints": se } });
    let mut resources = vec![
        json!({ "type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "location": "westeurope",
                "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": [
                    sub("integration", "10.0.1.0/24", &endpoints),
                    sub("vms", "10.0.2.0/24", &endpoints),
                    sub("plain", "10.0.3.0/24", &json!([])) ] } }),
    ];
    // Kept in this order: tests edit the vault (4) and the registry (6) by index.
    resources.extend(plan1_and_integrated_web1(
        json!({ "vnetRouteAllEnabled": false }),
    ));
    resources.extend([
        storage_res,
        json!({ "type": "Microsoft.KeyVault/vaults", "name": VAULT, "location": "westeurope",
                "properties": { "sku": { "family": "A", "name": "standard" },
                                "tenantId": "00000000-0000-0000-0000-000000000000" } }),
        json!({ "type": "Microsoft.KeyVault/vaults/secrets", "name": format!("{VAULT}/db-password"),
                "properties": { "value": "s3cret" } }),
        json!({ "type": "Microsoft.ContainerRegistry/registries", "name": REGISTRY, "location": "westeurope",
                "sku": { "name": "Premium" }, "properties": { "lab": { "images": ["app/web:1.0"] } } }),
    ]);
    resources.extend(vm("vm1", "vnet1", "vms", "10.0.2.4"));
    resources.extend(vm("vm2", "vnet1", "plain", "10.0.3.4"));
    resources.extend(extra);
    template(resources)
}

fn allow_all() -> Value {
    json!({ "defaultAction": "Allow" })
}

/// The service's public IP, from `resource show`.
fn service_ip(lab: &Lab, ty: &str, name: &str) -> String {
    lab.show(&id(RG, ty, name))["emulator"]["publicIpAddress"]
        .as_str()
        .expect("publicIpAddress")
        .to_string()
}

/// `curl` in a lab namespace; returns (HTTP status, body). HTTPS uses the lab
/// CA (`$VNET_LAB_CA_FILE`) and `--resolve` for the service's name.
fn curl(lab: &Lab, target: &[&str], url: &str, host: &str, ip: &str, extra: &str) -> (u16, String) {
    let port = if url.starts_with("https") { 443 } else { 80 };
    let script = format!(
        "curl -sS --max-time 5 --cacert \"$VNET_LAB_CA_FILE\" --resolve {host}:{port}:{ip} \
         -o /dev/stdout -w '\\n%{{http_code}}' {extra} '{url}'"
    );
    let out = lab.exec(target, &["sh", "-c", &script]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn blob_host() -> String {
    format!("{STORE}.blob.core.windows.net")
}

/// GET https://STORE.blob.core.windows.net/ from `target`: (status, answer).
fn blob_get(lab: &Lab, target: &[&str], ip: &str) -> (u16, Value) {
    let (code, body) = curl(
        lab,
        target,
        &format!("https://{}/", blob_host()),
        &blob_host(),
        ip,
        "",
    );
    assert!(code != 0, "curl failed: {body}");
    (code, json_of(&body))
}

/// Blob GETs until the answer has status `want` (a host re-reads its
/// configuration within a poll interval of the apply), for 5 s at most.
fn until_status(lab: &Lab, target: &[&str], ip: &str, want: u16) -> Value {
    let mut last = (0, Value::Null);
    for _ in 0..50 {
        last = blob_get(lab, target, ip);
        if last.0 == want {
            return last.1;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("still {} (not {want}) after 5 s: {}", last.0, last.1);
}

fn host_pid(lab: &Lab, id: &str) -> u64 {
    lab.show(id)["emulator"]["processes"][0]["pid"]
        .as_u64()
        .expect("service host pid")
}

fn outbound_ips(lab: &Lab, site: &str) -> Vec<String> {
    lab.show(&id(RG, "Microsoft.Web/sites", site))["properties"]["outboundIpAddresses"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect()
}

#[test]
fn services_on_the_public_path_with_tls_acls_secrets_and_manifests() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(
        RG,
        &services_lab(json!([]), storage(allow_all(), "Enabled"), vec![]),
    );
    let st = lab.show(&storage_id());
    assert_eq!(
        st["properties"]["primaryEndpoints"]["blob"],
        json!(format!("https://{STORE}.blob.core.windows.net/"))
    );
    let ip = service_ip(&lab, "Microsoft.Storage/storageAccounts", STORE);
    let app = ["--app", "web1"];
    let outbound = outbound_ips(&lab, "web1");

    // HTTP and HTTPS (the lab CA) from the app: the public path, with the
    // app's outbound IP as the source.
    let (code, body) = curl(&lab, &app, &format!("http://{ip}/"), &blob_host(), &ip, "");
    assert_eq!(code, 200, "{body}");
    let v = json_of(&body);
    assert_eq!(v["path"], "public", "{v}");
    assert!(
        outbound.contains(&v["sourceAddress"].as_str().unwrap().to_string()),
        "{v} {outbound:?}"
    );
    let (code, v) = blob_get(&lab, &app, &ip);
    assert_eq!((code, v["endpoint"].as_str()), (200, Some("blob")), "{v}");
    // PUT then GET a blob.
    let url = format!("https://{}/c1/hello.txt", blob_host());
    let (code, body) = curl(
        &lab,
        &app,
        &url,
        &blob_host(),
        &ip,
        "-X PUT --data-binary hello-blob",
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = curl(&lab, &app, &url, &blob_host(), &ip, "");
    assert_eq!((code, body.trim()), (200, "hello-blob"));

    // SMB 445 from the VM: one JSON line with its default outbound address.
    let line = lab.exec_ok(&["--vm", "vm1"], &[&probe_bin(), "tcp", &ip, "445"]);
    let smb = json_of(&line);
    assert_eq!(
        (smb["endpoint"].as_str(), smb["path"].as_str()),
        (Some("file"), Some("public")),
        "{smb}"
    );
    let vm_public = smb["sourceAddress"].as_str().unwrap().to_string();
    assert!(!vm_public.starts_with("10."), "{smb}");

    // Key vault secret and registry manifest over HTTPS.
    let kv_ip = service_ip(&lab, "Microsoft.KeyVault/vaults", VAULT);
    let kv_host = format!("{VAULT}.vault.azure.net");
    let (code, body) = curl(
        &lab,
        &app,
        &format!("https://{kv_host}/secrets/db-password?api-version=7.4"),
        &kv_host,
        &kv_ip,
        "",
    );
    assert_eq!(code, 200, "{body}");
    let secret = json_of(&body);
    assert_eq!(secret["value"], "s3cret", "{secret}");
    assert!(secret["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("https://{kv_host}/secrets/db-password/")));
    let (code, body) = curl(
        &lab,
        &app,
        &format!("https://{kv_host}/secrets/nope"),
        &kv_host,
        &kv_ip,
        "",
    );
    assert_eq!(
        (code, json_of(&body)["error"]["code"].as_str()),
        (404, Some("SecretNotFound"))
    );
    let acr_ip = service_ip(&lab, "Microsoft.ContainerRegistry/registries", REGISTRY);
    let acr_host = format!("{REGISTRY}.azurecr.io");
    let (code, body) = curl(
        &lab,
        &["--vm", "vm1"],
        &format!("https://{acr_host}/v2/app/web/manifests/1.0"),
        &acr_host,
        &acr_ip,
        "",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_of(&body)["schemaVersion"], 2, "{body}");
    let (code, body) = curl(
        &lab,
        &["--vm", "vm1"],
        &format!("https://{acr_host}/v2/app/web/manifests/2.0"),
        &acr_host,
        &acr_ip,
        "",
    );
    assert_eq!(
        (code, json_of(&body)["errors"][0]["code"].as_str()),
        (404, Some("MANIFEST_UNKNOWN"))
    );

    // A registry and a vault that deny by default answer with their own 403 bodies.
    let mut t = services_lab(json!([]), storage(allow_all(), "Enabled"), vec![]);
    t["resources"][4]["properties"]["networkAcls"] = json!({ "defaultAction": "Deny" });
    t["resources"][6]["properties"]["networkRuleSet"] = json!({ "defaultAction": "Deny" });
    lab.deploy(RG, &t);
    // The hosts poll their configuration files (every 300 ms).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (code, body) = curl(
        &lab,
        &["--vm", "vm1"],
        &format!("https://{acr_host}/v2/"),
        &acr_host,
        &acr_ip,
        "",
    );
    let v = json_of(&body);
    assert_eq!(
        (code, v["errors"][0]["code"].as_str()),
        (403, Some("DENIED")),
        "{v}"
    );
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&vm_public),
        "{v}"
    );
    let (code, body) = curl(
        &lab,
        &app,
        &format!("https://{kv_host}/secrets/db-password"),
        &kv_host,
        &kv_ip,
        "",
    );
    let v = json_of(&body);
    assert_eq!(
        (code, v["error"]["innererror"]["code"].as_str()),
        (403, Some("ForbiddenByFirewall")),
        "{v}"
    );
    lab.deploy(
        RG,
        &services_lab(json!([]), storage(allow_all(), "Enabled"), vec![]),
    );

    // ipRules admit the app's outbound IPs, not the VM: applied without
    // restarting the host.
    let pid = host_pid(&lab, &storage_id());
    let rules: Vec<Value> = outbound.iter().map(|o| json!({ "value": o })).collect();
    lab.deploy(
        RG,
        &template(vec![storage(
            json!({ "defaultAction": "Deny", "ipRules": rules }),
            "Enabled",
        )]),
    );
    let v = until_status(&lab, &["--vm", "vm1"], &ip, 403);
    assert_eq!(v["error"]["code"], "AuthorizationFailure", "{v}");
    assert_eq!(blob_get(&lab, &app, &ip).0, 200);
    let line = lab.exec_ok(&["--vm", "vm1"], &[&probe_bin(), "tcp", &ip, "445"]);
    assert_eq!(json_of(&line)["status"], 403, "{line}");
    assert_eq!(
        host_pid(&lab, &storage_id()),
        pid,
        "an ACL change must not restart the host"
    );

    // publicNetworkAccess Disabled refuses everyone.
    lab.deploy(RG, &template(vec![storage(allow_all(), "Disabled")]));
    until_status(&lab, &app, &ip, 403);
    lab.deploy(RG, &template(vec![storage(allow_all(), "Enabled")]));

    // An agent restart keeps the host (same PID) and its answers.
    lab.stop_daemon();
    lab.start_daemon();
    assert_eq!(host_pid(&lab, &storage_id()), pid);
    until_status(&lab, &app, &ip, 200);

    // down leaves no namespace and no host.
    lab.cli_ok(&["down"]);
    assert!(
        lab_namespaces(&lab.name).is_empty(),
        "{:?}",
        lab_namespaces(&lab.name)
    );
    assert!(!pid_alive(pid as u32), "service host {pid} still running");
}

fn storage_endpoint() -> Value {
    json!([{ "service": "Microsoft.Storage", "locations": ["westeurope"] }])
}

/// Deny by default; admit service-endpoint traffic from these subnets of vnet1.
fn vnet_rules(subnets: &[&str]) -> Value {
    let rules: Vec<Value> = subnets
        .iter()
        .map(|s| json!({ "id": subnet_of("vnet1", s), "action": "Allow" }))
        .collect();
    json!({ "defaultAction": "Deny", "virtualNetworkRules": rules })
}

#[test]
fn service_endpoints_carry_the_private_source_and_virtual_network_rules_admit_it() {
    let Some(lab) = Lab::start() else { return };
    // The `plain` subnet leaves the VNet through a NAT gateway.
    let pip = json!({ "type": "Microsoft.Network/publicIPAddresses", "name": "nat-pip", "location": "westeurope",
                      "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } });
    let nat = json!({ "type": "Microsoft.Network/natGateways", "name": "nat1", "location": "westeurope",
                      "sku": { "name": "Standard" },
                      "properties": { "publicIpAddresses": [{ "id": net("publicIPAddresses", "nat-pip") }] } });
    let mut t = services_lab(
        storage_endpoint(),
        storage(vnet_rules(&["vms"]), "Enabled"),
        vec![pip, nat],
    );
    t["resources"][0]["properties"]["subnets"][2]["properties"]["natGateway"] =
        json!({ "id": net("natGateways", "nat1") });
    lab.deploy(RG, &t);
    let nat_ip = lab.show(&net("publicIPAddresses", "nat-pip"))["properties"]["ipAddress"]
        .as_str()
        .expect("NAT gateway address")
        .to_string();
    let ip = service_ip(&lab, "Microsoft.Storage/storageAccounts", STORE);
    let vnet1 = net("virtualNetworks", "vnet1");
    // Level-triggered: a second reconcile writes nothing (service
    // namespaces, their links, rules and nft included).
    lab.assert_reconcile_writes_nothing();

    // The subnet's effective routes: one VirtualNetworkServiceEndpoint route
    // per storage public IP, source Default.
    let routes = lab.subnet_effective_routes(RG, "vnet1", "vms");
    let se: Vec<&Value> = routes["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["nextHopType"] == "VirtualNetworkServiceEndpoint")
        .collect();
    assert_eq!(se.len(), 1, "{routes}");
    assert_eq!(
        (se[0]["source"].as_str(), se[0]["state"].as_str()),
        (Some("Default"), Some("Active"))
    );
    assert_eq!(se[0]["addressPrefix"], json!([format!("{ip}/32")]));

    // vm1 (vms subnet, with the endpoint) arrives with its private address
    // over the service endpoint, and the virtualNetworkRules entry admits it.
    let (code, v) = blob_get(&lab, &["--vm", "vm1"], &ip);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (
            v["sourceAddress"].as_str(),
            v["path"].as_str(),
            v["virtualNetwork"].as_str()
        ),
        (
            Some("10.0.2.4"),
            Some("serviceEndpoint"),
            Some(vnet1.as_str())
        ),
        "{v}"
    );
    let line = lab.exec_ok(&["--vm", "vm1"], &[&probe_bin(), "tcp", &ip, "445"]);
    let smb = json_of(&line);
    assert_eq!(
        (smb["sourceAddress"].as_str(), smb["status"].as_u64()),
        (Some("10.0.2.4"), Some(200)),
        "{smb}"
    );

    // vm2 (plain subnet, no endpoint) leaves by the internet with its NAT
    // gateway's address: no ipRule admits it.
    let (code, v) = blob_get(&lab, &["--vm", "vm2"], &ip);
    assert_eq!(
        (code, v["path"].as_str(), v["sourceAddress"].as_str()),
        (403, Some("public"), Some(nat_ip.as_str())),
        "{v}"
    );

    // web1 (Route All off): the integration subnet's endpoint still takes
    // the traffic into the VNet, with the instance's private address; its
    // subnet is not in the rules yet.
    let private = lab
        .exec_ok(&["--app", "web1"], &["printenv", "WEBSITE_PRIVATE_IP"])
        .trim()
        .to_string();
    let (code, v) = blob_get(&lab, &["--app", "web1"], &ip);
    assert_eq!(
        (code, v["sourceAddress"].as_str(), v["path"].as_str()),
        (403, Some(private.as_str()), Some("serviceEndpoint")),
        "{v}"
    );
    lab.deploy(
        RG,
        &template(vec![storage(
            vnet_rules(&["vms", "integration"]),
            "Enabled",
        )]),
    );
    until_status(&lab, &["--app", "web1"], &ip, 200);

    // publicNetworkAccess Disabled refuses service-endpoint traffic too.
    lab.deploy(
        RG,
        &template(vec![storage(
            vnet_rules(&["vms", "integration"]),
            "Disabled",
        )]),
    );
    let v = until_status(&lab, &["--vm", "vm1"], &ip, 403);
    assert_eq!(v["path"].as_str(), Some("serviceEndpoint"), "{v}");

    // A rule naming a subnet without the endpoint is refused as Azure does.
    let bad = template(vec![storage(vnet_rules(&["plain"]), "Enabled")]);
    let msg = lab.deploy_refused(RG, &bad, "NetworkAclsValidationFailure");
    assert!(
        msg.contains("SubnetsHaveNoServiceEndpointsConfigured"),
        "{msg}"
    );
    // And an unknown service endpoint name.
    let bad = services_lab(
        json!([{ "service": "Microsoft.Nope" }]),
        storage(allow_all(), "Enabled"),
        vec![],
    );
    lab.deploy_refused(RG, &bad, "SubnetHasServiceEndpointWithInvalidServiceName");
}

#[test]
fn nsg_storage_tag_blocks_service_endpoint_traffic() {
    let Some(lab) = Lab::start() else { return };
    let nsg = json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg-vms", "location": "westeurope",
        "properties": { "securityRules": [{ "name": "deny-storage", "properties": {
            "priority": 100, "direction": "Outbound", "access": "Deny", "protocol": "Tcp",
            "sourceAddressPrefix": "*", "sourcePortRange": "*",
            "destinationAddressPrefix": "Storage.WestEurope", "destinationPortRange": "*" } }] } });
    let mut t = services_lab(
        storage_endpoint(),
        storage(allow_all(), "Enabled"),
        vec![nsg],
    );
    t["resources"][0]["properties"]["subnets"][1]["properties"]["networkSecurityGroup"] =
        json!({ "id": net("networkSecurityGroups", "nsg-vms") });
    lab.deploy(RG, &t);
    let ip = service_ip(&lab, "Microsoft.Storage/storageAccounts", STORE);
    let kv_ip = service_ip(&lab, "Microsoft.KeyVault/vaults", VAULT);
    let hits = || {
        let v = lab.cli_json(&["network", "nsg", "show", "-g", RG, "-n", "nsg-vms"]);
        v["properties"]["securityRules"][0]["emulator"]["hits"]["packets"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = hits();
    let out = lab.exec(&["--vm", "vm1"], &[&probe_bin(), "tcp", &ip, "445", "1000"]);
    assert!(!out.status.success(), "the Storage tag must drop it");
    assert!(hits() > before, "the deny rule's counter must move");
    // The vault is not Storage: the same VM reaches it (public path: no
    // key vault endpoint on the subnet).
    let kv_host = format!("{VAULT}.vault.azure.net");
    let (code, body) = curl(
        &lab,
        &["--vm", "vm1"],
        &format!("https://{kv_host}/"),
        &kv_host,
        &kv_ip,
        "",
    );
    assert_eq!(
        (code, json_of(&body)["path"].as_str()),
        (200, Some("public")),
        "{body}"
    );
}

#[test]
fn overlapping_vnets_reach_one_service_over_their_own_endpoints() {
    let Some(lab) = Lab::start() else { return };
    let vnet = |name: &str| {
        json!({ "type": "Microsoft.Network/virtualNetworks", "name": name, "location": "westeurope",
                "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": [
                    { "name": "vms", "properties": { "addressPrefix": "10.0.2.0/24", "serviceEndpoints": storage_endpoint() } } ] } })
    };
    let mut resources = vec![
        vnet("vneta"),
        vnet("vnetb"),
        storage(allow_all(), "Enabled"),
    ];
    resources.extend(vm("vma", "vneta", "vms", "10.0.2.4"));
    resources.extend(vm("vmb", "vnetb", "vms", "10.0.2.4"));
    lab.deploy(RG, &template(resources));
    let ip = service_ip(&lab, "Microsoft.Storage/storageAccounts", STORE);
    for (vm_name, vnet_name) in [("vma", "vneta"), ("vmb", "vnetb"), ("vma", "vneta")] {
        let line = lab.exec_ok(&["--vm", vm_name], &[&probe_bin(), "tcp", &ip, "445"]);
        let v = json_of(&line);
        assert_eq!(
            (v["sourceAddress"].as_str(), v["virtualNetwork"].as_str()),
            (
                Some("10.0.2.4"),
                Some(net("virtualNetworks", vnet_name).as_str())
            ),
            "{v}"
        );
    }
    // The same private address AND source port from both VNets at once: vma
    // opens its connection and holds it idle for 4 s; meanwhile vmb opens
    // one with the same address and port and must get its answer within 2 s.
    // The service keeps them apart (a conntrack zone and a local address per
    // link); one socket per 4-tuple would leave vmb unanswered until vma is done.
    let request = |hold: u32, max: u32| {
        format!(
            "(sleep {hold}; printf 'GET / HTTP/1.1\\r\\nHost: s\\r\\nConnection: close\\r\\n\\r\\n') | \
             curl -s --max-time {max} --local-port 40000 telnet://{ip}:80"
        )
    };
    let mut held = Vec::new();
    for vm_name in ["vma", "vmb"] {
        let mut c = std::process::Command::new(agent_bin());
        c.env("VNET_AGENT_LAB", &lab.name)
            .env("VNET_AGENT_SOCKET", lab.socket())
            .env("VNET_AGENT_STATE_DIR", lab.state_dir())
            .args(["exec", "--vm", vm_name, "--", "sh", "-c"])
            .arg(if vm_name == "vma" {
                request(4, 6)
            } else {
                request(0, 2)
            })
            .stdout(std::process::Stdio::piped());
        held.push((vm_name, c.spawn().expect("curl")));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    for (vm_name, child) in held {
        let out = child.wait_with_output().expect("curl output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let body = text
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("{vm_name}: no answer: {text:?}"));
        let v = json_of(body);
        let vnet_name = if vm_name == "vma" { "vneta" } else { "vnetb" };
        assert_eq!(
            (
                v["sourceAddress"].as_str(),
                v["sourcePort"].as_u64(),
                v["virtualNetwork"].as_str()
            ),
            (
                Some("10.0.2.4"),
                Some(40000),
                Some(net("virtualNetworks", vnet_name).as_str())
            ),
            "{v}"
        );
    }
}

/// Issue 10, item 4 (seed: integration "doesn't support ... Mounting a
/// drive"): a site's own storage mounts (`azureStorageAccounts`) are made
/// over the public route, never through the integration, even with Route
/// All and `vnetContentShareEnabled` on. A storage firewall that admits only
/// the integration subnet therefore fails the mount (`state: InvalidShare`,
/// the service saw the app's outbound IP, not the instance IP); an open
/// account mounts (`Ok`), and the app runs either way.
#[test]
fn storage_mounts_go_over_the_public_route_never_the_integration() {
    let Some(lab) = Lab::start() else { return };
    let open = storage_account("labopen1", "Enabled", None);
    let mut t = services_lab(
        storage_endpoint(),
        storage(vnet_rules(&["integration"]), "Enabled"),
        vec![open],
    );
    let web1 = &mut t["resources"][2]["properties"];
    web1["vnetContentShareEnabled"] = json!(true);
    web1["siteConfig"]["vnetRouteAllEnabled"] = json!(true);
    web1["siteConfig"]["appCommandLine"] = json!("sleep 100000");
    web1["siteConfig"]["azureStorageAccounts"] = json!({
        "files1": { "type": "AzureFiles", "accountName": STORE, "shareName": "data",
                    "accessKey": "a2V5", "mountPath": "/mounts/data" },
        "blob1": { "type": "AzureBlob", "accountName": "labopen1", "shareName": "media",
                   "accessKey": "a2V5", "mountPath": "/mounts/media" } });
    lab.deploy(RG, &t);
    let site_id = id(RG, "Microsoft.Web/sites", "web1");
    let outbound: Vec<String> = lab.show(&site_id)["properties"]["outboundIpAddresses"]
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let instance_ip = lab.exec_ok(&["--app", "web1"], &["printenv", "WEBSITE_PRIVATE_IP"]);
    let view = lab.show(&site_id);
    let mounts = &view["properties"]["siteConfig"]["azureStorageAccounts"];
    assert_eq!(mounts["files1"]["state"], "InvalidShare", "{view:#}");
    assert_eq!(mounts["blob1"]["state"], "Ok", "{view:#}");
    assert!(
        mounts["files1"]["accessKey"].is_null(),
        "access keys are not shown"
    );
    let startup = &view["emulator"]["startup"][0]["storageMounts"];
    for name in ["files1", "blob1"] {
        let m = &startup[name];
        assert_eq!(m["route"], "Public", "{m:#}");
        let seen = m["contacts"][0]["sourceAddress"]
            .as_str()
            .unwrap_or_default();
        assert!(
            outbound.iter().any(|o| o == seen),
            "{name}: the service saw {seen}, not an outbound IP {outbound:?} (instance {instance_ip})"
        );
    }
    assert_eq!(startup["files1"]["contacts"][0]["port"], 445);
    assert!(
        startup["files1"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("public route"),
        "{startup:#}"
    );
    // The app runs although a mount failed.
    lab.app_pid("web1", 0);
    // The subnet-only firewall does admit the same instance over the
    // integration (its service endpoint): only the mount's route differs.
    let ip = service_ip(&lab, "Microsoft.Storage/storageAccounts", STORE);
    let line = lab.exec_ok(&["--app", "web1"], &[&probe_bin(), "tcp", &ip, "445"]);
    let smb = json_of(&line);
    assert_eq!(
        smb["sourceAddress"].as_str(),
        Some(instance_ip.trim()),
        "{smb}"
    );
}
