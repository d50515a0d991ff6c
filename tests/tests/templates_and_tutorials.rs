//! The front door: real public templates and one of Azure's own CLI
//! tutorials, run unchanged against the lab, then real traffic through what
//! they built; and what-if, compared with what the apply then does.

use std::path::PathBuf;

use serde_json::{json, Value};
use vnet_e2e::fixtures::*;
use vnet_e2e::*;

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `curl` from `target` with the lab CA: (HTTP status, body, the address it
/// connected to).
fn curl(lab: &Lab, target: &[&str], url: &str) -> (u16, String, String) {
    let script = format!(
        "curl -sS --max-time 5 --cacert \"$VNET_LAB_CA_FILE\" -o /dev/stdout -w '\\n%{{remote_ip}} %{{http_code}}' '{url}'"
    );
    let out = lab.exec(target, &["sh", "-c", &script]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", "- 0"));
    let (ip, code) = tail.split_once(' ').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
        ip.to_string(),
    )
}

/// A lab internet host `name` at public address `ip` (resource group `internet`).
fn internet_host(lab: &Lab, name: &str, ip: &str) {
    lab.deploy(
        "internet",
        &template(vec![
            json!({ "type": "Lab.Emulator/internetHosts", "name": name,
            "location": "westeurope", "properties": { "ipAddress": ip } }),
        ]),
    );
}

/// `vm create` of a VM without a public IP at `ip` in `vnet`/`subnet`, as a
/// user adds one beside what a template built.
fn add_vm(lab: &Lab, rg: &str, name: &str, vnet: &str, subnet: &str, ip: &str) {
    lab.cli_ok(&[
        "vm",
        "create",
        "-g",
        rg,
        "-n",
        name,
        "--image",
        "Ubuntu2204",
        "--vnet-name",
        vnet,
        "--subnet",
        subnet,
        "--private-ip-address",
        ip,
        "--public-ip-address",
        "",
    ]);
}

/// The source address VM `vm1` (at `vm_ip`) sees for a TCP connection from
/// app `app`.
fn source_seen_by_vm(lab: &mut Lab, app: &str, vm_ip: &str) -> String {
    lab.spawn(&["--vm", "vm1"], &[&probe_bin(), "serve-tcp", "9000"]);
    let line = lab.exec_ok(&["--app", app], &[&probe_bin(), "tcp", vm_ip, "9000"]);
    peer_ip(&line)
}

/// Azure's "Isolate back-end communication with Virtual Network
/// integration" tutorial (tests/tutorials/isolate-backend-vnet.sh, `az`
/// renamed): afterwards the app reaches its vault over the private endpoint
/// by the vault's own name, and the internet is refused by the vault.
#[test]
fn azures_isolate_backend_tutorial_gets_the_traffic_it_promises() {
    let Some(lab) = Lab::start() else { return };
    // The tutorial's user browses from the internet: a host there.
    internet_host(&lab, "browser", "203.0.113.50");
    let out = lab.run_script(
        &repo_file("tutorials/isolate-backend-vnet.sh"),
        &[("appName", "tutorialapp1"), ("vaultName", "tutorialvault1")],
    );
    assert!(out.contains("securekeyvault-pe"), "{out}");
    let vault = "https://tutorialvault1.vault.azure.net/secrets/csresource?api-version=7.4";
    // From the app: the private endpoint's address, by the vault's name.
    let (code, body, ip) = curl(&lab, &["--app", "tutorialapp1"], vault);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        ip, "10.0.1.4",
        "the private endpoint in private-endpoint-subnet"
    );
    let secret: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(secret["value"], "https://lab.cognitiveservices.azure.com/");
    // From the internet: the vault's public address, refused by its rules
    // (the tutorial's last step, `--default-action Deny`: the vault's host
    // re-reads its configuration within its poll interval of the change).
    let mut last = (0, String::new(), String::new());
    for _ in 0..50 {
        last = curl(&lab, &["--host", "browser"], vault);
        if last.0 == 403 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, body, ip) = last;
    assert!(!ip.starts_with("10."), "{ip}");
    assert_eq!(code, 403, "{body}");
    // The app's own outbound traffic into the VNet leaves from the integration subnet.
    let integration = lab.show(&format!(
        "/subscriptions/{SUB}/resourceGroups/myKVResourceGroup/providers/Microsoft.Web/sites/tutorialapp1"
    ));
    assert_eq!(
        integration["properties"]["virtualNetworkSubnetId"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some("vnet-integration-subnet")
    );
    // And `group delete` takes it all down again.
    lab.cli_ok(&["group", "delete", "--name", "myKVResourceGroup", "--yes"]);
    let left = lab.cli_json(&["resource", "list", "-g", "myKVResourceGroup"]);
    assert_eq!(left, json!([]), "{left}");
}

/// The quickstart gallery's "App Service regional VNet integration"
/// template, unchanged: its app's traffic leaves from the subnet the
/// template made, to a VM added beside it.
#[test]
fn the_regional_vnet_integration_quickstart_carries_traffic() {
    let Some(lab) = Lab::start() else { return };
    let file = repo_file("templates/app-service-regional-vnet-integration/azuredeploy.json");
    let d = lab.deploy_file("quickstart", &file, &["appName=qsapp1"]);
    assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
    // A VM in a second subnet of the template's VNet (CLI, as a user adds one).
    lab.cli_ok(&[
        "network",
        "vnet",
        "subnet",
        "create",
        "-g",
        "quickstart",
        "--vnet-name",
        "qsapp1vnet",
        "-n",
        "vms",
        "--address-prefixes",
        "10.0.1.0/24",
    ]);
    add_vm(&lab, "quickstart", "vm1", "qsapp1vnet", "vms", "10.0.1.10");
    let mut lab = lab;
    let ip = source_seen_by_vm(&mut lab, "qsapp1", "10.0.1.10");
    assert!(
        ip.starts_with("10.0.0."),
        "the app's integration subnet (10.0.0.0/24), got {ip}"
    );
    let history = lab.cli_json(&["deployment", "group", "list", "-g", "quickstart"]);
    assert_eq!(history[0]["name"], "azuredeploy", "{history}");
    let shown = lab.cli_json(&[
        "deployment",
        "group",
        "show",
        "-g",
        "quickstart",
        "-n",
        "azuredeploy",
        "--query",
        "properties.provisioningState",
    ]);
    assert_eq!(shown, json!("Succeeded"));
}

/// what-if on a running lab lists exactly the kernel changes the apply then
/// makes (counted by the apply's reconcile report).
#[test]
fn what_if_predicts_the_kernel_changes_of_the_apply() {
    let Some(lab) = Lab::start() else { return };
    let base = small_lab(1, "integration");
    lab.deploy(RG, &base);
    let mut t = base.clone();
    for r in vm_in(RG, "vm9", &subnet_id("vnet1", "vms"), "10.0.3.9") {
        t["resources"].as_array_mut().unwrap().push(r);
    }
    let path = lab.write_json("whatif.json", &t);
    let w = lab.cli_json(&[
        "deployment",
        "group",
        "what-if",
        "-g",
        RG,
        "-f",
        path.to_str().unwrap(),
        "--no-pretty-print",
    ]);
    let changes = w["properties"]["changes"].as_array().unwrap();
    let created: Vec<&str> = changes
        .iter()
        .filter(|c| c["changeType"] == "Create")
        .map(|c| c["resourceId"].as_str().unwrap())
        .collect();
    assert_eq!(created.len(), 2, "the NIC and the VM: {w:#}");
    assert!(
        changes
            .iter()
            .filter(|c| c["changeType"] == "NoChange")
            .count()
            >= 3,
        "{w:#}"
    );
    let k = &w["properties"]["kernelChanges"]["summary"];
    // Nothing was applied by what-if.
    assert!(!lab
        .cli(&["resource", "show", "--ids", created[0]])
        .status
        .success());
    let applied = lab.cli_json(&[
        "deployment",
        "group",
        "create",
        "-g",
        RG,
        "-f",
        path.to_str().unwrap(),
    ]);
    let r = &applied["properties"]["reconcile"];
    for key in [
        "namespacesCreated",
        "namespacesDeleted",
        "linksCreated",
        "linksDeleted",
        "addressesAdded",
        "addressesDeleted",
        "routesAdded",
        "routesDeleted",
        "rulesChanged",
        "nftBatches",
    ] {
        assert_eq!(k[key], r[key], "{key}: what-if {k} apply {r}");
    }
    assert!(k["namespacesCreated"].as_u64().unwrap() >= 1, "{k}");
}

/// The gallery's "Function app with a deployment slot" template, unchanged:
/// the slot is an app of its site's plan, with a sandbox of its own; a slot
/// of an integrated app shares the integration (its traffic leaves from the
/// same subnet).
#[test]
fn deployment_slots_are_apps_that_share_the_integration() {
    let Some(mut lab) = Lab::start() else { return };
    let file = repo_file("templates/function-app-deployment-slot/azuredeploy.json");
    let d = lab.deploy_file("slots", &file, &["functionAppName=funcslot1"]);
    assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
    let noted: Vec<&str> = d["properties"]["emulator"]["notEmulated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(
        noted.contains(&"Microsoft.Insights/components"),
        "{noted:?}"
    );
    let host = lab.exec_ok(&["--app", "funcslot1-deployment"], &["hostname"]);
    assert!(!host.trim().is_empty());
    // An integrated app and its slot.
    let mut t = small_lab(1, "integration");
    let slot = json!({ "type": "Microsoft.Web/sites/slots", "name": "web1/staging", "location": "westeurope",
        "kind": "app,linux", "properties": { "siteConfig": { "appCommandLine": "sleep 100000" } } });
    t["resources"].as_array_mut().unwrap().push(slot);
    lab.deploy(RG, &t);
    let ip = source_seen_by_vm(&mut lab, "web1-staging", "10.0.3.4");
    assert!(
        ip.starts_with("10.0.1."),
        "the site's integration subnet 10.0.1.0/28, got {ip}"
    );
}

/// `--mode Complete` deletes what the template no longer names, under the
/// rules of a delete: a VNet an app is integrated with is refused (as a
/// DeploymentFailed with the delete's own error), and nothing changes.
#[test]
fn complete_mode_deletes_what_the_template_dropped_under_delete_rules() {
    let Some(lab) = Lab::start() else { return };
    let full = small_lab(1, "integration");
    lab.deploy(RG, &full);
    let without_vm: Vec<Value> = full["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            !matches!(
                r["type"].as_str(),
                Some("Microsoft.Compute/virtualMachines" | "Microsoft.Network/networkInterfaces")
            )
        })
        .cloned()
        .collect();
    let path = lab.write_json("complete.json", &template(without_vm.clone()));
    let d = lab.cli_json(&[
        "deployment",
        "group",
        "create",
        "-g",
        RG,
        "-f",
        path.to_str().unwrap(),
        "--mode",
        "Complete",
    ]);
    assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
    assert!(!lab
        .cli(&[
            "resource",
            "show",
            "--ids",
            &id(RG, "Microsoft.Compute/virtualMachines", "vm1")
        ])
        .status
        .success());
    assert!(
        kernel_writes(&d["properties"]["reconcile"]) > 0,
        "the VM's namespace went: {d}"
    );
    // Dropping the VNet too: the app is integrated with it.
    let only_apps: Vec<Value> = without_vm
        .into_iter()
        .filter(|r| r["type"] != "Microsoft.Network/virtualNetworks")
        .collect();
    let path = lab.write_json("complete2.json", &template(only_apps));
    let err = lab.refused(
        &[
            "deployment",
            "group",
            "create",
            "-g",
            RG,
            "-f",
            path.to_str().unwrap(),
            "--mode",
            "Complete",
        ],
        "DeploymentFailed",
    );
    assert!(
        err.contains("(InUseVirtualNetworkCannotBeDeleted)")
            || err.contains("InUseSubnetCannotBeDeleted"),
        "{err}"
    );
    // The failed attempt is in the history, with its error.
    let shown = lab.cli_json(&["deployment", "group", "show", "-g", RG, "-n", "complete2"]);
    assert_eq!(
        shown["properties"]["provisioningState"], "Failed",
        "{shown}"
    );
    assert_eq!(
        shown["properties"]["error"]["code"], "DeploymentFailed",
        "{shown}"
    );
}

/// The gallery's "Web App with VNet Injection and Private Endpoint"
/// template, unchanged: the front-end app (integrated, Route All) reaches
/// the back-end app by its own name at its private endpoint's address, in
/// the private DNS zone the template links.
#[test]
fn the_private_endpoint_quickstart_carries_the_front_ends_calls() {
    let Some(lab) = Lab::start() else { return };
    let file = repo_file("templates/webapp-privateendpoint-vnet-injection/azuredeploy.json");
    let d = lab.deploy_file("pe", &file, &[]);
    assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
    let names = lab.cli_json(&[
        "resource",
        "list",
        "-g",
        "pe",
        "--query",
        "sort([?type=='Microsoft.Web/sites'].name)",
    ]);
    let (back, front) = (names[0].as_str().unwrap(), names[1].as_str().unwrap());
    assert!(
        back.starts_with("webapp1-") && front.starts_with("webapp2-"),
        "{names}"
    );
    let (code, body, ip) = curl(
        &lab,
        &["--app", front],
        &format!("http://{back}.azurewebsites.net/"),
    );
    assert!(
        ip.starts_with("10.200.1."),
        "the private endpoint in Subnet1, got {ip}: {body}"
    );
    assert!(
        code >= 200,
        "the back end's front end answered: {code} {body}"
    );
}

/// The gallery's "NAT gateway" template, unchanged: a VM added to its
/// subnet reaches the internet from the NAT gateway's public IP.
#[test]
fn the_nat_gateway_quickstart_gives_the_subnet_its_public_ip() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(
        "internet",
        &template(vec![
            json!({ "type": "Lab.Emulator/internetHosts", "name": "echo", "location": "westeurope",
            "properties": { "ipAddress": "203.0.113.60" } }),
        ]),
    );
    let file = repo_file("templates/nat-gateway-vnet/azuredeploy.json");
    let d = lab.deploy_file("nat", &file, &[]);
    assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
    let pip = lab.cli_json(&[
        "resource",
        "list",
        "-g",
        "nat",
        "--query",
        "[?type=='Microsoft.Network/publicIPAddresses'].properties.ipAddress | [0]",
    ]);
    let pip = pip
        .as_str()
        .expect("the NAT gateway's public IP has an address")
        .to_string();
    add_vm(&lab, "nat", "natvm", "myVnet", "mySubnet", "192.168.0.10");
    lab.spawn(&["--host", "echo"], &[&probe_bin(), "serve-tcp", "9000"]);
    let line = lab.exec_ok(
        &["--vm", "natvm"],
        &[&probe_bin(), "tcp", "203.0.113.60", "9000"],
    );
    assert_eq!(peer_ip(&line), pip, "{line}");
}

/// The gallery's "Function app with VNet integration" template, unchanged
/// (its `sites/networkConfig` integrates a Windows Elastic Premium app):
/// the function app reaches a VM added to its VNet from the subnet the
/// template made, and its storage account by name.
#[test]
fn the_function_app_vnet_integration_quickstart_carries_traffic() {
    let Some(mut lab) = Lab::start() else { return };
    let file = repo_file("templates/function-app-vnet-integration/azuredeploy.json");
    let d = lab.deploy_file(
        "func",
        &file,
        &[
            "functionAppName=funcvnet1",
            "vnetName=funcvnet",
            "subnetName=integration",
        ],
    );
    assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
    let app = lab.cli_json(&[
        "functionapp",
        "show",
        "-g",
        "func",
        "-n",
        "funcvnet1",
        "--query",
        "properties.virtualNetworkSubnetId",
    ]);
    assert!(
        app.as_str().unwrap().ends_with("/subnets/integration"),
        "{app}"
    );
    lab.cli_ok(&[
        "network",
        "vnet",
        "subnet",
        "create",
        "-g",
        "func",
        "--vnet-name",
        "funcvnet",
        "-n",
        "vms",
        "--address-prefixes",
        "10.0.1.0/24",
    ]);
    add_vm(&lab, "func", "vm1", "funcvnet", "vms", "10.0.1.10");
    let ip = source_seen_by_vm(&mut lab, "funcvnet1", "10.0.1.10");
    assert!(
        ip.starts_with("10.0.0."),
        "the template's integration subnet 10.0.0.0/24, got {ip}"
    );
}

/// The gallery's "Add an NSG to an existing subnet" template, unchanged,
/// after its prerequisite (whose outputs are its parameters, as the
/// gallery's harness passes them; its nested deployment updates the
/// subnet in the VNet's group): SSH from the internet reaches a VM of the
/// subnet, any other port is dropped by the NSG's default rules.
#[test]
fn the_nsg_quickstart_filters_real_traffic() {
    let Some(mut lab) = Lab::start() else { return };
    internet_host(&lab, "client", "203.0.113.70");
    let pre = lab.deploy_file(
        "nsgrg",
        &repo_file("templates/nsg-add-to-existing-subnet/prereqs/prereq.azuredeploy.json"),
        &["vNetName=prereqvnet"],
    );
    let out = &pre["properties"]["outputs"];
    let params: Vec<String> = [
        "virtualNetworkResourceGroupName",
        "virtualNetworkName",
        "subnetName",
    ]
    .iter()
    .map(|k| format!("{k}={}", out[k]["value"].as_str().unwrap()))
    .collect();
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    let d = lab.deploy_file(
        "nsgrg",
        &repo_file("templates/nsg-add-to-existing-subnet/azuredeploy.json"),
        &params,
    );
    assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
    let vnet = out["virtualNetworkName"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let subnet = lab.cli_json(&[
        "network",
        "vnet",
        "subnet",
        "show",
        "-g",
        "nsgrg",
        "--vnet-name",
        &vnet,
        "-n",
        "default",
        "--query",
        "properties.networkSecurityGroup.id",
    ]);
    assert!(
        subnet
            .as_str()
            .is_some_and(|s| s.ends_with("/networkSecurityGroups/new-nsg")),
        "{subnet}"
    );
    let vm = lab.cli_json(&[
        "vm",
        "create",
        "-g",
        "nsgrg",
        "-n",
        "vm1",
        "--vnet-name",
        &vnet,
        "--subnet",
        "default",
        "--private-ip-address",
        "10.0.0.10",
    ]);
    let public = vm["publicIpAddress"]
        .as_str()
        .expect("the VM's public IP")
        .to_string();
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "22"]);
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    let ssh = lab.exec_ok(&["--host", "client"], &[&probe, "tcp", &public, "22"]);
    assert_eq!(peer_ip(&ssh), "203.0.113.70", "{ssh}");
    let denied = lab.exec(
        &["--host", "client"],
        &[&probe, "tcp", &public, "9000", "1000"],
    );
    assert!(
        !denied.status.success(),
        "DenyAllInBound must drop TCP 9000"
    );
}

/// The gallery's "VNet peering" template, unchanged, after its
/// prerequisite (two VNets), deployed once for each side as a user peers
/// two VNets (with `allowVirtualNetworkAccess=true`; the template's default
/// is false): a VM of each reaches the other across the peering.
#[test]
fn the_vnet_peering_quickstart_carries_traffic_once_both_sides_exist() {
    let Some(mut lab) = Lab::start() else { return };
    let pre = lab.deploy_file(
        "peer",
        &repo_file("templates/vnet-peering-create/prereqs/prereq.azuredeploy.json"),
        &[
            "sourceVirtualNetworkName=src",
            "sourceVirtualNetworkSubnetName=default",
            "remoteVirtualNetworkName=dst",
            "remoteVirtualNetworkSubnetName=default",
        ],
    );
    let out = &pre["properties"]["outputs"];
    let (src_id, dst_id) = (
        out["existingSourceVirtualNetworkId"]["value"]
            .as_str()
            .unwrap()
            .to_string(),
        out["existingRemoteVirtualNetworkId"]["value"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let file = repo_file("templates/vnet-peering-create/azuredeploy.json");
    let one = lab.deploy_file(
        "peer",
        &file,
        &[
            "vnetName=src",
            &format!("remoteVirtualNetworkId={dst_id}"),
            "peerName=src-to-dst",
            "allowVirtualNetworkAccess=true",
        ],
    );
    assert_eq!(one["properties"]["provisioningState"], "Succeeded", "{one}");
    lab.deploy_file(
        "peer",
        &file,
        &[
            "vnetName=dst",
            &format!("remoteVirtualNetworkId={src_id}"),
            "peerName=dst-to-src",
            "allowVirtualNetworkAccess=true",
        ],
    );
    add_vm(&lab, "peer", "vm1", "src", "default", "10.0.0.10");
    add_vm(&lab, "peer", "vm2", "dst", "default", "172.0.0.10");
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm2"], &[&probe, "serve-tcp", "9000"]);
    let line = lab.exec_ok(&["--vm", "vm1"], &[&probe, "tcp", "172.0.0.10", "9000"]);
    assert_eq!(peer_ip(&line), "10.0.0.10", "{line}");
}
