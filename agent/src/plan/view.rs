//! What `show`/`list` return: the resource as ARM stores it, plus the
//! properties Azure computes (outbound IPs, private IPs, service association
//! links ...) and, under a top-level `"emulator"` key, where it lives in the lab.

use serde_json::{json, Map, Value};

use super::layout::{Layout, SandboxL};
use super::names;
use crate::model::{
    AzureError, GenericResource, LabConfig, LabState, ResourceId, ResourceKind, Subnet,
};

/// ARM's 404 for a resource id the lab does not hold.
pub fn not_found(id: &ResourceId) -> AzureError {
    AzureError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource '{}' under resource group '{}' was not found.",
            id.full_type_and_name(),
            id.resource_group
        ),
    )
}

trait TypeAndName {
    fn full_type_and_name(&self) -> String;
}

impl TypeAndName for ResourceId {
    fn full_type_and_name(&self) -> String {
        let names: Vec<&str> = self.segments.iter().map(|s| s.1.as_str()).collect();
        format!("{}/{}", self.full_type(), names.join("/"))
    }
}

/// One resource as ARM shows it, with computed properties and an `emulator` object.
pub fn resource_view(
    state: &LabState,
    lab: &LabConfig,
    id: &ResourceId,
) -> Result<Value, AzureError> {
    Viewer::new(state, lab).view(id)
}

/// Views of many resources of one state, laid out once (what-if and a
/// template's `reference()`s ask for one view per resource).
pub struct Viewer<'a> {
    l: Layout,
    state: &'a LabState,
}

impl<'a> Viewer<'a> {
    pub fn new(state: &'a LabState, lab: &LabConfig) -> Self {
        Viewer {
            l: Layout::new(state, lab),
            state,
        }
    }

    pub fn view(&self, id: &ResourceId) -> Result<Value, AzureError> {
        let mut v = view_in(&self.l, self.state, id)?;
        with_etag(self.state, id, &mut v);
        Ok(v)
    }
}

/// ARM's `etag` of a resource: a digest of what is stored for it. A child
/// (a subnet, a peering, a rule) shares its top-level resource's, as
/// Azure's network resources do. Changes with every write that changes the
/// resource, never with what the platform observes.
pub fn etag(state: &LabState, id: &ResourceId) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut top = id.clone();
    while let Some(parent) = top.parent() {
        top = parent;
    }
    let stored = serde_json::to_vec(state.get(&top)?).ok()?;
    let d = Sha256::digest(&stored);
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "W/\"{}-{}-{}-{}-{}\"",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Adds `etag` to a resource's view.
pub fn with_etag(state: &LabState, id: &ResourceId, view: &mut Value) {
    if let (Some(tag), Some(obj)) = (etag(state, id), view.as_object_mut()) {
        obj.insert("etag".into(), Value::String(tag));
    }
}

fn view_in(l: &Layout, state: &LabState, id: &ResourceId) -> Result<Value, AzureError> {
    if id.segments.len() == 2 && id.segments[1].0.eq_ignore_ascii_case("subnets") {
        let vnet_res = state
            .get(&id.parent().expect("two segments"))
            .ok_or_else(|| not_found(id))?;
        let vnet = vnet_view(l, state, vnet_res);
        let name = id.name();
        return vnet["properties"]["subnets"]
            .as_array()
            .and_then(|s| {
                s.iter().find(|s| {
                    s["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
            })
            .cloned()
            .ok_or_else(|| not_found(id));
    }
    if id.segments.len() == 2
        && id.segments[0].0.eq_ignore_ascii_case("vaults")
        && id.segments[1].0.eq_ignore_ascii_case("secrets")
    {
        // ARM's view of a secret: never its value.
        let vault = state
            .get(&id.parent().expect("two segments"))
            .ok_or_else(|| not_found(id))?;
        let name = id.name();
        let exists = vault.properties["secrets"].as_array().is_some_and(|s| {
            s.iter().any(|x| {
                x["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        });
        if !exists {
            return Err(not_found(id));
        }
        return Ok(json!({
            "id": id.to_string(),
            "name": name,
            "type": "Microsoft.KeyVault/vaults/secrets",
            "properties": {
                "attributes": {"enabled": true},
                "secretUri": format!("https://{}.vault.azure.net/secrets/{name}", vault.name.to_ascii_lowercase()),
            }
        }));
    }
    if id.segments.len() == 2 && id.segments[0].0.eq_ignore_ascii_case("privateDnsZones") {
        let zone = state
            .get(&id.parent().expect("two segments"))
            .ok_or_else(|| not_found(id))?;
        return crate::dns::view::child_view(&view_of(l, state, zone), id)
            .ok_or_else(|| not_found(id));
    }
    let res = state.get(id).ok_or_else(|| not_found(id))?;
    Ok(view_of(l, state, res))
}

/// Every resource, optionally of one resource group, sorted by id.
pub fn list(state: &LabState, lab: &LabConfig, resource_group: Option<&str>) -> Vec<Value> {
    let l = Layout::new(state, lab);
    state
        .resources
        .values()
        .filter(|r| resource_group.is_none_or(|rg| r.id.resource_group.eq_ignore_ascii_case(rg)))
        .map(|r| {
            let mut v = view_of(&l, state, r);
            with_etag(state, &r.id, &mut v);
            v
        })
        .collect()
}

/// `az webapp show -g RG -n NAME`.
pub fn webapp_show(
    state: &LabState,
    lab: &LabConfig,
    subscription: &str,
    resource_group: &str,
    name: &str,
) -> Result<Value, AzureError> {
    resource_view(
        state,
        lab,
        &ResourceId::new(subscription, resource_group, "Microsoft.Web", "sites", name),
    )
}

fn base(res: &GenericResource) -> Value {
    let mut v = json!({
        "id": res.id.to_string(),
        "name": res.name,
        "type": res.type_,
        "location": res.location,
        "properties": res.properties,
    });
    let obj = v.as_object_mut().expect("object");
    if let Some(k) = &res.kind {
        obj.insert("kind".into(), json!(k));
    }
    if let Some(s) = &res.sku {
        obj.insert("sku".into(), s.clone());
    }
    if let Some(t) = &res.tags {
        obj.insert("tags".into(), t.clone());
    }
    if let Some(p) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("provisioningState".into(), json!("Succeeded"));
    }
    v
}

fn props(v: &mut Value) -> &mut Map<String, Value> {
    v["properties"]
        .as_object_mut()
        .expect("stored properties are objects")
}

fn view_of(l: &Layout, state: &LabState, res: &GenericResource) -> Value {
    match ResourceKind::from_type(&res.type_) {
        Some(ResourceKind::Site) => site_view(l, state, res),
        Some(ResourceKind::ServerFarm) => plan_view(l, state, res),
        Some(ResourceKind::VirtualNetwork) => vnet_view(l, state, res),
        Some(ResourceKind::NetworkInterface) => nic_view(l, state, res),
        Some(ResourceKind::VirtualMachine) => vm_view(l, res),
        Some(ResourceKind::InternetHost) => host_view(l, res),
        Some(ResourceKind::NetworkSecurityGroup) => super::nsg::nsg_view(l, base(res)),
        Some(ResourceKind::ApplicationSecurityGroup) => base(res),
        Some(ResourceKind::RouteTable) => route_table_view(l, res),
        Some(ResourceKind::NatGateway) => nat_gateway_view(l, state, res),
        Some(ResourceKind::PublicIpAddress) => public_ip_view(l, state, res),
        Some(
            ResourceKind::StorageAccount | ResourceKind::KeyVault | ResourceKind::ContainerRegistry,
        ) => service_view(l, res),
        Some(ResourceKind::PublicIpPrefix) => public_ip_prefix_view(l, state, res),
        Some(ResourceKind::PrivateDnsZone) => crate::dns::view::zone_view(
            crate::dns::zone_groups::overlay_view(base(res), &l.inv, state, res),
            res,
        ),
        Some(ResourceKind::PrivateEndpoint) => {
            super::private_endpoint::endpoint_view(&l.inv, state, res, base(res))
        }
        Some(ResourceKind::VirtualNetworkGateway) => {
            super::gateway::gateway_view(l, &res.id, base(res))
        }
        Some(ResourceKind::Connection) => super::gateway::connection_view(l, &res.id, base(res)),
        Some(ResourceKind::LocalNetworkGateway | ResourceKind::ExpressRouteCircuit) => {
            super::gateway::site_view(l, &res.id, base(res))
        }
        Some(ResourceKind::OnPremisesHost) => {
            super::gateway::onprem_host_view(l, &res.id, base(res))
        }
        None => record_view(res),
    }
}

/// A resource the lab keeps as a record: what was deployed, the read-only
/// properties Azure computes, and a note that it carries no traffic.
fn record_view(res: &GenericResource) -> Value {
    let mut v = base(res);
    let p = props(&mut v);
    for (k, x) in crate::model::record::computed_properties(&res.id, res.location.as_deref()) {
        p.entry(k).or_insert(x);
    }
    if let Some(identity) = &res.identity {
        v["identity"] = crate::model::record::identity_with_ids(&res.id, identity);
    }
    v["emulator"] = json!({
        "emulated": false,
        "note": "Stored as an ARM record: the lab does not emulate this type, so it carries no traffic."
    });
    v
}

fn plan_outbound(state: &LabState, plan: &ResourceId) -> String {
    let ips = state
        .allocations
        .plan_outbound
        .get(&plan.key())
        .cloned()
        .unwrap_or_default();
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn site_view(l: &Layout, state: &LabState, res: &GenericResource) -> Value {
    let mut v = base(res);
    let Some(site) = l.inv.site(&res.id) else {
        return v;
    };
    let outbound = plan_outbound(state, &site.server_farm_id);
    let p = props(&mut v);
    // Storage mounts' access keys are secrets: ARM returns them as null.
    if let Some(mounts) = p
        .get_mut("siteConfig")
        .and_then(|c| c.get_mut("azureStorageAccounts"))
        .and_then(Value::as_object_mut)
    {
        for m in mounts.values_mut().filter_map(Value::as_object_mut) {
            if m.contains_key("accessKey") {
                m.insert("accessKey".into(), Value::Null);
            }
        }
    }
    p.insert("state".into(), json!("Running"));
    p.insert(
        "serverFarmId".into(),
        json!(site.server_farm_id.to_string()),
    );
    p.insert("outboundIpAddresses".into(), json!(outbound));
    p.insert("possibleOutboundIpAddresses".into(), json!(outbound));
    // The stamp's front end (docs/datapath.md "Front end").
    let inbound = state
        .allocations
        .site_inbound(&l.inv, site)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    p.insert("inboundIpAddress".into(), json!(inbound));
    p.insert("possibleInboundIpAddresses".into(), json!(inbound));
    p.insert(
        "defaultHostName".into(),
        json!(format!(
            "{}.azurewebsites.net",
            site.name.to_ascii_lowercase()
        )),
    );
    p.insert(
        "virtualNetworkSubnetId".into(),
        json!(site.subnet_id.as_ref().map(ToString::to_string)),
    );
    p.insert("vnetRouteAllEnabled".into(), json!(site.route_all));
    // The effective configuration routing, whichever spelling set it.
    let cr = &site.config_routing;
    p.insert("vnetContentShareEnabled".into(), json!(cr.content_share));
    p.insert("vnetImagePullEnabled".into(), json!(cr.image_pull));
    p.insert("vnetBackupRestoreEnabled".into(), json!(cr.backup_restore));
    p.insert(
        "outboundVnetRouting".into(),
        json!({
            "allTraffic": site.route_all && cr.content_share && cr.image_pull && cr.backup_restore,
            "applicationTraffic": site.route_all,
            "contentShareTraffic": cr.content_share,
            "imagePullTraffic": cr.image_pull,
            "backupRestoreTraffic": cr.backup_restore,
        }),
    );
    let instances: Vec<Value> = l
        .workers_of(&site.server_farm_id)
        .filter_map(|w| {
            let sb = w.sandboxes.iter().find(|sb| sb.site.id == site.id)?;
            Some(json!({
                "instance": w.instance,
                "privateIpAddress": sb.vnic.map(|i| w.vnics[i].ip.to_string()),
                "outboundIpAddress": w.outbound.map(|a| a.to_string()),
                "workerNamespace": w.netns,
                "sandboxNamespace": sb.netns,
                "websiteInstanceId": names::website_instance_id(&site.id.key(), w.instance),
                "containers": containers_json(std::slice::from_ref(sb)),
            }))
        })
        .collect();
    v["emulator"] = json!({ "instances": instances });
    // Azure's portal lists a NAT gateway's addresses next to the app's own
    // outbound IPs (which stay the stamp's).
    let nat_ips = site.subnet_id.as_ref().and_then(|sid| {
        let (_, subnet, _) = l.inv.subnet(sid)?;
        let g = l.inv.nat_gateway(subnet.nat_gateway_id.as_ref()?)?;
        Some(crate::ipam::nat_gateway_addresses(&state.allocations, g))
    });
    if let Some(ips) = nat_ips {
        v["emulator"]["natGatewayIpAddresses"] =
            json!(ips.iter().map(ToString::to_string).collect::<Vec<_>>());
    }
    v
}

fn plan_view(l: &Layout, state: &LabState, res: &GenericResource) -> Value {
    let mut v = base(res);
    let Some(plan) = l.inv.plan(&res.id) else {
        return v;
    };
    let sites: Vec<String> = l
        .inv
        .sites_of_plan(&plan.id)
        .map(|s| s.name.clone())
        .collect();
    v["sku"] = json!({"name": plan.sku_name, "tier": plan.tier, "capacity": plan.capacity});
    let p = props(&mut v);
    p.insert("numberOfSites".into(), json!(sites.len()));
    p.insert("status".into(), json!("Ready"));
    p.insert("reserved".into(), json!(plan.is_linux));
    let workers: Vec<Value> = l
        .workers_of(&plan.id)
        .map(|w| {
            json!({
                "instance": w.instance,
                "namespace": w.netns,
                "stampNamespace": l.stamps[w.stamp].netns,
                "pub0Address": w.pub0.to_string(),
                "outboundIpAddress": w.outbound.map(|a| a.to_string()),
                "integrations": w.vnics.iter().map(|n| json!({
                    "interface": n.ifname,
                    "subnetId": n.subnet.to_string(),
                    "privateIpAddress": n.ip.to_string(),
                })).collect::<Vec<_>>(),
                "containers": containers_json(&w.sandboxes),
            })
        })
        .collect();
    let cooldown = l.cooldown_secs;
    let subnet_label = |key: &str| {
        l.inv
            .vnets
            .iter()
            .flat_map(|v| &v.subnets)
            .find(|s| s.id.key() == key)
            .map_or_else(|| key.to_string(), |s| s.id.to_string())
    };
    let releasing: Vec<Value> = state
        .allocations
        .releasing_of(&plan.id.key())
        .map(|r| {
            json!({
                "address": r.address.to_string(),
                "subnet": subnet_label(&r.subnet),
                "releasedAt": r.released_at,
                "reusableAt": r.reusable_at(cooldown),
            })
        })
        .collect();
    let usage: Vec<Value> = l
        .inv
        .plan_integrations(&plan.id)
        .iter()
        .filter_map(|id| {
            let (_, subnet, _) = l.inv.subnet(id)?;
            Some(subnet_usage_json(state, l, subnet))
        })
        .collect();
    v["emulator"] = json!({
        "sites": sites,
        "outboundIpAddresses": plan_outbound(state, &plan.id),
        "workers": workers,
        "releasingAddresses": releasing,
        "subnetUsage": usage,
    });
    v
}

/// `[{site, privateIpAddress}]`: the own subnet address of each Windows
/// container app among `sandboxes` (seed, "Subnet requirements": "Windows
/// Containers uses an additional IP address per app for each App Service plan
/// instance"). Azure names no environment variable for it; WEBSITE_PRIVATE_IP
/// stays the instance's address.
fn containers_json(sandboxes: &[SandboxL]) -> Vec<Value> {
    sandboxes
        .iter()
        .filter_map(|sb| {
            Some(json!({
                "site": sb.site.name,
                "privateIpAddress": sb.container_ip?.to_string(),
            }))
        })
        .collect()
}

/// How a subnet's addresses are used: `{subnetId, addressPrefix, usable, used,
/// coolingDown, free}`. Views have no clock: every released address still
/// listed counts as cooling down (the list is pruned at the next change).
fn subnet_usage_json(state: &LabState, l: &Layout, subnet: &Subnet) -> Value {
    let u = crate::ipam::subnet_usage(
        &state.allocations,
        &subnet.id.key(),
        subnet.address_prefix,
        l.cooldown_secs,
        None,
    );
    json!({
        "subnetId": subnet.id.to_string(),
        "addressPrefix": subnet.address_prefix.to_string(),
        "usable": u.usable,
        "used": u.used,
        "coolingDown": u.cooling_down,
        "free": u.free,
    })
}

fn vnet_view(l: &Layout, state: &LabState, res: &GenericResource) -> Value {
    let mut v = base(res);
    let Some(fi) = l.fabrics.iter().position(|f| f.vnet.id == res.id) else {
        return v;
    };
    let f = &l.fabrics[fi];
    // Peerings: Connected once the remote peers back, else Initiated.
    if let Some(list) = props(&mut v)
        .get_mut("virtualNetworkPeerings")
        .and_then(Value::as_array_mut)
    {
        for (entry, peering) in list.iter_mut().zip(&f.vnet.peerings) {
            let remote = l.inv.vnet(&peering.remote);
            let connected =
                remote.is_some_and(|r| r.peerings.iter().any(|b| b.remote == f.vnet.id));
            let Some(obj) = entry.as_object_mut() else {
                continue;
            };
            obj.insert(
                "id".into(),
                json!(format!(
                    "{}/virtualNetworkPeerings/{}",
                    f.vnet.id, peering.name
                )),
            );
            obj.insert(
                "type".into(),
                json!("Microsoft.Network/virtualNetworks/virtualNetworkPeerings"),
            );
            let pp = obj.entry("properties").or_insert_with(|| json!({}));
            if let Some(pp) = pp.as_object_mut() {
                pp.insert("provisioningState".into(), json!("Succeeded"));
                pp.insert(
                    "peeringState".into(),
                    json!(if connected { "Connected" } else { "Initiated" }),
                );
                // This side's view against the remote's space now, and the
                // remote side's view of this one.
                let remote_changed =
                    remote.is_some_and(|r| peering.remote_prefixes(r) != r.address_prefixes);
                let local_changed = remote
                    .and_then(|r| r.peerings.iter().find(|b| b.remote == f.vnet.id))
                    .is_some_and(|b| b.remote_prefixes(&f.vnet) != f.vnet.address_prefixes);
                let level = match (remote_changed, local_changed) {
                    (false, false) => "FullyInSync",
                    (true, _) => "RemoteNotInSync",
                    (false, true) => "LocalNotInSync",
                };
                pp.insert("peeringSyncLevel".into(), json!(level));
                pp.insert(
                    "allowVirtualNetworkAccess".into(),
                    json!(peering.allow_virtual_network_access),
                );
                pp.insert(
                    "allowForwardedTraffic".into(),
                    json!(peering.allow_forwarded_traffic),
                );
                pp.insert(
                    "allowGatewayTransit".into(),
                    json!(peering.allow_gateway_transit),
                );
                pp.insert(
                    "useRemoteGateways".into(),
                    json!(peering.use_remote_gateways),
                );
                if let Some(r) = remote {
                    pp.insert(
                        "remoteAddressSpace".into(),
                        json!({"addressPrefixes": peering.remote_prefixes(r).iter().map(ToString::to_string).collect::<Vec<_>>()}),
                    );
                    pp.insert(
                        "remoteVirtualNetworkAddressSpace".into(),
                        json!({"addressPrefixes": r.address_prefixes.iter().map(ToString::to_string).collect::<Vec<_>>()}),
                    );
                }
            }
        }
    }
    if let Some(list) = props(&mut v)
        .get_mut("subnets")
        .and_then(Value::as_array_mut)
    {
        for (entry, subnet) in list.iter_mut().zip(&f.vnet.subnets) {
            let Some(obj) = entry.as_object_mut() else {
                continue;
            };
            obj.insert("id".into(), json!(subnet.id.to_string()));
            let sp = obj.entry("properties").or_insert_with(|| json!({}));
            let Some(sp) = sp.as_object_mut() else {
                continue;
            };
            sp.insert("provisioningState".into(), json!("Succeeded"));
            sp.entry("delegations").or_insert_with(|| json!([]));
            if let Some(id) = &subnet.route_table_id {
                sp.insert("routeTable".into(), json!({"id": id.to_string()}));
            }
            if let Some(id) = &subnet.nat_gateway_id {
                sp.insert("natGateway".into(), json!({"id": id.to_string()}));
            }
            let plans: Vec<&ResourceId> = l
                .inv
                .sites
                .iter()
                .filter(|s| s.subnet_id.as_ref() == Some(&subnet.id))
                .map(|s| &s.server_farm_id)
                .collect();
            if let Some(plan) = plans.first() {
                sp.insert(
                    "serviceAssociationLinks".into(),
                    json!([{
                        "name": "AppServiceLink",
                        "id": format!("{}/serviceAssociationLinks/AppServiceLink", subnet.id),
                        "properties": {"linkedResourceType": "Microsoft.Web/serverfarms", "link": plan.to_string()},
                    }]),
                );
            }
            let mut ip_configs: Vec<Value> = l
                .inv
                .nics_in_subnet(&subnet.id)
                .flat_map(|n| {
                    n.ip_configurations
                        .iter()
                        .filter(|c| c.subnet_id == subnet.id)
                        .map(|c| json!({"id": n.id.child("ipConfigurations", &c.name).to_string()}))
                })
                .collect();
            ip_configs.sort_by_key(|c| c["id"].as_str().unwrap_or_default().to_ascii_lowercase());
            if !ip_configs.is_empty() {
                sp.insert("ipConfigurations".into(), Value::Array(ip_configs));
            }
            sp.insert(
                "privateEndpointNetworkPolicies".into(),
                json!(subnet.private_endpoint_network_policies.as_str()),
            );
            let endpoints: Vec<Value> = l
                .inv
                .private_endpoints
                .iter()
                .filter(|p| p.subnet_id == subnet.id)
                .map(|p| json!({"id": p.id.to_string()}))
                .collect();
            if !endpoints.is_empty() {
                sp.insert("privateEndpoints".into(), Value::Array(endpoints));
            }
        }
    }
    let subnets: Vec<Value> = f
        .vnet
        .subnets
        .iter()
        .zip(&f.subnets)
        .map(|(s, sl)| {
            let usage = subnet_usage_json(state, l, s);
            json!({
                "name": s.name,
                "gateway": sl.gateway.to_string(),
                "routeTable": sl.table,
                "usableAddresses": crate::ipam::usable_count(sl.prefix),
                "usedAddresses": usage["used"],
                "coolingDownAddresses": usage["coolingDown"],
                "freeAddresses": usage["free"],
                "routeTableId": s.route_table_id.as_ref().map(ToString::to_string),
                "natGatewayId": s.nat_gateway_id.as_ref().map(ToString::to_string),
                "effectiveRoutes": sl.routes.iter().map(|r| json!({
                    "source": r.source, "state": r.state, "addressPrefix": r.prefix.to_string(),
                    "nextHopType": r.next_hop_type,
                    "nextHopIpAddress": r.next_hop_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "name": r.name,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    v["emulator"] = json!({
        "fabricNamespace": f.netns,
        "defaultOutboundIp": state.allocations.vnet_outbound.get(&res.id.key()).map(|a| a.to_string()),
        "subnets": subnets,
        "privateDnsZones": crate::dns::view::linked_zone_names(&l.inv, &res.id),
    });
    v
}

fn nic_view(l: &Layout, state: &LabState, res: &GenericResource) -> Value {
    let mut v = base(res);
    let Some(nic) = l.inv.nic(&res.id) else {
        return v;
    };
    if let Some(list) = props(&mut v)
        .get_mut("ipConfigurations")
        .and_then(Value::as_array_mut)
    {
        for (entry, cfg) in list.iter_mut().zip(&nic.ip_configurations) {
            let Some(obj) = entry.as_object_mut() else {
                continue;
            };
            obj.insert(
                "id".into(),
                json!(nic.id.child("ipConfigurations", &cfg.name).to_string()),
            );
            let sp = obj.entry("properties").or_insert_with(|| json!({}));
            if let Some(sp) = sp.as_object_mut() {
                let addr = state.allocations.nic_addresses.get(&cfg.key(&nic.id));
                sp.insert(
                    "privateIPAddress".into(),
                    json!(addr.map(ToString::to_string)),
                );
                sp.insert(
                    "privateIPAllocationMethod".into(),
                    json!(format!("{:?}", cfg.method)),
                );
                sp.insert("primary".into(), json!(cfg.primary));
            }
        }
    }
    let vm = l.inv.vm_of_nic(&nic.id);
    if let Some(vm) = vm {
        props(&mut v).insert("virtualMachine".into(), json!({"id": vm.id.to_string()}));
    }
    let place = l.vms.iter().find_map(|vm| {
        let n = vm.nics.iter().find(|n| n.nic == nic.id)?;
        Some(json!({"namespace": vm.netns, "interface": n.ifname, "fabricNamespace": l.fabrics[n.fabric].netns}))
    });
    v["emulator"] = place.unwrap_or_else(|| json!({"namespace": null}));
    v
}

fn vm_view(l: &Layout, res: &GenericResource) -> Value {
    let mut v = base(res);
    if let Some(vm) = l.vms.iter().find(|vm| vm.id == res.id) {
        let interfaces: Vec<Value> = vm
            .nics
            .iter()
            .map(|n| {
                json!({
                    "name": n.ifname,
                    "networkInterfaceId": n.nic.to_string(),
                    "addresses": n.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "primary": n.primary,
                })
            })
            .collect();
        v["emulator"] = json!({"namespace": vm.netns, "interfaces": interfaces});
    }
    v
}

fn host_view(l: &Layout, res: &GenericResource) -> Value {
    let mut v = base(res);
    if let Some(h) = l.hosts.iter().find(|h| h.id == res.id) {
        props(&mut v).insert("ipAddress".into(), json!(h.ip.to_string()));
        v["emulator"] = json!({"namespace": h.netns});
    }
    v
}

fn id_list<'a>(ids: impl Iterator<Item = &'a ResourceId>) -> Vec<Value> {
    ids.map(|id| json!({"id": id.to_string()})).collect()
}

fn route_table_view(l: &Layout, res: &GenericResource) -> Value {
    let mut v = base(res);
    let subnets = id_list(l.inv.subnets_with_route_table(&res.id).map(|(_, s)| &s.id));
    let p = props(&mut v);
    p.insert("subnets".into(), Value::Array(subnets));
    p.entry("disableBgpRoutePropagation")
        .or_insert(json!(false));
    if let Some(routes) = p.get_mut("routes").and_then(Value::as_array_mut) {
        for r in routes {
            let Some(name) = r.get("name").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if let Some(obj) = r.as_object_mut() {
                obj.insert(
                    "id".into(),
                    json!(res.id.child("routes", &name).to_string()),
                );
                if let Some(rp) = obj.get_mut("properties").and_then(Value::as_object_mut) {
                    rp.insert("provisioningState".into(), json!("Succeeded"));
                }
            }
        }
    }
    v
}

fn nat_gateway_view(l: &Layout, state: &LabState, res: &GenericResource) -> Value {
    let mut v = base(res);
    let Some(g) = l.inv.nat_gateway(&res.id) else {
        return v;
    };
    let subnets = id_list(l.inv.subnets_with_nat_gateway(&g.id).map(|(_, s)| &s.id));
    let addresses: Vec<String> = crate::ipam::nat_gateway_addresses(&state.allocations, g)
        .iter()
        .map(ToString::to_string)
        .collect();
    if v.get("sku").is_none() {
        v["sku"] = json!({"name": g.sku.as_str()});
    }
    let p = props(&mut v);
    p.insert("subnets".into(), Value::Array(subnets));
    p.insert("idleTimeoutInMinutes".into(), json!(g.idle_timeout_minutes));
    p.insert(
        "publicIpAddresses".into(),
        Value::Array(id_list(g.public_ip_ids.iter())),
    );
    p.insert(
        "publicIpPrefixes".into(),
        Value::Array(id_list(g.public_ip_prefix_ids.iter())),
    );
    let fabric = l
        .inv
        .subnets_with_nat_gateway(&g.id)
        .next()
        .and_then(|(vnet, _)| l.fabrics.iter().find(|f| f.vnet.id == vnet.id))
        .map(|f| f.netns.clone());
    v["emulator"] = json!({"ipAddresses": addresses, "fabricNamespace": fabric});
    v
}

fn public_ip_view(l: &Layout, state: &LabState, res: &GenericResource) -> Value {
    let mut v = base(res);
    let Some(pip) = l.inv.public_ip(&res.id) else {
        return v;
    };
    let addr = state.allocations.public_ips.get(&pip.id.key());
    let (nics, nats) = l.inv.public_ip_users(&pip.id);
    if v.get("sku").is_none() {
        v["sku"] = json!({"name": pip.sku.as_str()});
    }
    let p = props(&mut v);
    p.insert("ipAddress".into(), json!(addr.map(ToString::to_string)));
    p.insert("publicIPAddressVersion".into(), json!("IPv4"));
    p.insert(
        "publicIPAllocationMethod".into(),
        json!(if pip.static_allocation {
            "Static"
        } else {
            "Dynamic"
        }),
    );
    p.insert(
        "idleTimeoutInMinutes".into(),
        json!(pip.idle_timeout_minutes),
    );
    if let Some((nic, cfg)) = nics.first() {
        p.insert(
            "ipConfiguration".into(),
            json!({"id": nic.id.child("ipConfigurations", cfg).to_string()}),
        );
    }
    if let Some(g) = nats.first() {
        p.insert("natGateway".into(), json!({"id": g.id.to_string()}));
    }
    v
}

fn public_ip_prefix_view(l: &Layout, state: &LabState, res: &GenericResource) -> Value {
    let mut v = base(res);
    let Some(prefix) = l.inv.public_ip_prefix(&res.id) else {
        return v;
    };
    let block = state.allocations.public_ip_prefixes.get(&prefix.id.key());
    let users: Vec<Value> = l
        .inv
        .nat_gateways
        .iter()
        .filter(|g| g.public_ip_prefix_ids.contains(&prefix.id))
        .map(|g| json!({"id": g.id.to_string()}))
        .collect();
    let p = props(&mut v);
    p.insert("ipPrefix".into(), json!(block.map(ToString::to_string)));
    p.insert("prefixLength".into(), json!(prefix.prefix_length));
    if let Some(g) = users.into_iter().next() {
        p.insert("natGateway".into(), g);
    }
    v
}

/// A storage account, vault or registry: its endpoints as Azure shows them
/// (`primaryEndpoints.blob/file`, `vaultUri`, `loginServer`) and, under
/// `emulator`, its namespace, public address and service-endpoint links.
/// A vault's secrets are child resources and not shown (as in Azure).
fn service_view(l: &Layout, res: &GenericResource) -> Value {
    use crate::model::ServiceKind;
    let mut v = base(res);
    let p = props(&mut v);
    // The public host names come from the model, as DNS and TLS use them.
    let kind = ServiceKind::from_type(&res.type_).unwrap_or(ServiceKind::ContainerRegistry);
    let host = |i: usize| kind.endpoints()[i].host(&res.name);
    match kind {
        ServiceKind::Storage => {
            p.insert(
                "primaryEndpoints".into(),
                json!({
                    "blob": format!("https://{}/", host(0)),
                    "file": format!("https://{}/", host(1)),
                }),
            );
        }
        ServiceKind::KeyVault => {
            p.remove("secrets");
            p.insert("vaultUri".into(), json!(format!("https://{}/", host(0))));
        }
        ServiceKind::ContainerRegistry => {
            p.insert("loginServer".into(), json!(host(0)));
        }
    }
    if let Some(s) = super::services::find(l, &res.id) {
        v["emulator"] = json!({
            "namespace": s.netns,
            "publicIpAddress": s.ip.to_string(),
            "hostNames": s.svc.host_names(),
            "serviceEndpointVirtualNetworks": id_list(s.fabrics.iter().map(|fi| &l.fabrics[*fi].vnet.id)),
        });
    }
    v
}
