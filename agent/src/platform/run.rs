//! Carrying out a [`StartupSpec`]: real connections from the worker
//! namespace, by the route the spec chose.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::client::{self, Response};
use super::kv_ref::{KeyVaultReference, ResolveStatus};
use super::{
    Contact, InstanceStartup, KeyVaultReferenceStatus, PlatformRoute, StartupSpec, Step,
    StorageMountStatus,
};
use crate::dataplane::in_netns_async;
use crate::dns::{self, QueryType, Rcode, RecordData, RecordType, Resolver, Tables};
use crate::model::{Inventory, LabState, ResourceId, StorageMount, StorageMountKind};
use crate::plan::startup::Integration;

/// What the platform needs besides the spec: the lab's names and the CA
/// the emulated services' certificates are signed with.
#[derive(Clone)]
pub struct Env {
    names: Arc<Names>,
    /// PEM of the lab CA (None: HTTPS is refused as untrusted).
    pub ca_pem: Option<Arc<Vec<u8>>>,
}

/// The lab's DNS answers for one run: the state's inventory is parsed once
/// and each resolver built once (the public one, and one per integrated
/// VNet on first use), not once per host name the platform looks up.
struct Names {
    state: LabState,
    inv: Inventory,
    tables: Tables,
    public: Resolver,
    vnets: Mutex<HashMap<ResourceId, Arc<Resolver>>>,
}

impl Env {
    pub fn new(state: LabState, ca_pem: Option<Arc<Vec<u8>>>) -> Env {
        let inv = Inventory::parse_lenient(&state.resources);
        let tables = Tables::new(&state, &inv);
        let public = tables.public();
        Env {
            names: Arc::new(Names {
                state,
                inv,
                tables,
                public,
                vnets: Mutex::new(HashMap::new()),
            }),
            ca_pem,
        }
    }

    /// Azure-provided DNS as `vnet` sees it.
    fn vnet_resolver(&self, vnet: &ResourceId) -> Arc<Resolver> {
        let n = &self.names;
        n.vnets
            .lock()
            .expect("resolver cache lock")
            .entry(vnet.clone())
            .or_insert_with(|| Arc::new(n.tables.for_vnet(&n.state, &n.inv, vnet)))
            .clone()
    }
}

/// Where a request goes.
struct Request<'a> {
    route: PlatformRoute,
    host: &'a str,
    port: u16,
    tls: bool,
    method: &'a str,
    path: &'a str,
    body: Vec<u8>,
}

impl<'a> Request<'a> {
    /// An HTTPS GET (what the platform mostly sends).
    fn get(route: PlatformRoute, host: &'a str, port: u16, path: &'a str) -> Self {
        Request {
            route,
            host,
            port,
            tls: true,
            method: "GET",
            path,
            body: Vec::new(),
        }
    }
}

/// Resolves `host` the way the route's resolver would: the public DNS of the
/// lab for the public route; through the integration, the app's custom DNS
/// servers when it has some (a real query from the worker, marked into the
/// vNIC, so a DNS server VM's own records and forwarding count), else
/// Azure-provided DNS of the integrated VNet (linked private zones first, so
/// a private endpoint's address wins).
async fn resolve(
    env: &Env,
    spec: &StartupSpec,
    route: PlatformRoute,
    host: &str,
) -> Result<Ipv4Addr, String> {
    let answer = match (route, &spec.integration) {
        (PlatformRoute::VirtualNetwork, Some(i)) if !spec.dns_servers.is_empty() => {
            let (servers, host, mark) = (spec.dns_servers.clone(), host.to_string(), i.mark);
            return in_netns_async(&spec.worker_netns, move || {
                Ok(dns::client::lookup_a(&servers, &host, Some(mark)))
            })
            .await
            .unwrap_or_else(|e| Err(format!("{e:#}")));
        }
        (PlatformRoute::VirtualNetwork, Some(i)) => env
            .vnet_resolver(&i.vnet)
            .answer(host, QueryType::Known(RecordType::A)),
        _ => env
            .names
            .public
            .answer(host, QueryType::Known(RecordType::A)),
    };
    match answer.rcode {
        Rcode::NxDomain => return Err(format!("{host}: NXDOMAIN")),
        Rcode::ServFail => return Err(format!("{host}: SERVFAIL")),
        Rcode::NoError => {}
    }
    answer
        .records
        .iter()
        .rev()
        .find_map(|r| match r.data {
            RecordData::A(a) => Some(a),
            _ => None,
        })
        .ok_or_else(|| format!("{host}: no A record"))
}

fn mark(spec: &StartupSpec, route: PlatformRoute) -> Option<u32> {
    match (route, &spec.integration) {
        (PlatformRoute::VirtualNetwork, Some(Integration { mark, .. })) => Some(*mark),
        _ => None,
    }
}

impl Contact {
    /// A contact not made yet: no address, no answer.
    fn new(host: &str, port: u16, route: PlatformRoute) -> Contact {
        Contact {
            host: host.to_string(),
            address: String::new(),
            port,
            route,
            ok: false,
            source_address: None,
            path: None,
            error: None,
        }
    }
}

/// Outcome of one request: the contact record and, when the service
/// answered, its response.
async fn request(env: &Env, spec: &StartupSpec, req: Request<'_>) -> (Contact, Option<Response>) {
    let mut contact = Contact::new(req.host, req.port, req.route);
    let addr = match resolve(env, spec, req.route, req.host).await {
        Ok(a) => a,
        Err(e) => {
            contact.error = Some(e);
            return (contact, None);
        }
    };
    contact.address = addr.to_string();
    let to = SocketAddrV4::new(addr, req.port);
    let m = mark(spec, req.route);
    let (host, method, path, body) = (
        req.host.to_string(),
        req.method.to_string(),
        req.path.to_string(),
        req.body,
    );
    let ca = if req.tls { env.ca_pem.clone() } else { None };
    let tls = req.tls;
    let result = in_netns_async(&spec.worker_netns, move || {
        let tcp = client::connect(to, m)?;
        let resp = if tls {
            client::https(
                tcp,
                ca.as_deref().map(|v| v.as_slice()),
                &host,
                &method,
                &path,
                &body,
            )?
        } else {
            client::http(tcp, &method, &host, &path, &body)?
        };
        Ok(resp)
    })
    .await;
    match result {
        Ok(resp) => {
            note_answer(&mut contact, &resp.json());
            if contact.source_address.is_none() {
                contact.source_address = resp.source_address.clone();
            }
            contact.ok = (200..300).contains(&resp.status);
            if !contact.ok && contact.error.is_none() {
                contact.error = Some(format!("HTTP {}", resp.status));
            }
            (contact, Some(resp))
        }
        Err(e) => {
            contact.error = Some(format!("{e:#}"));
            (contact, None)
        }
    }
}

/// Copies what every emulated service reports (source address, path, error
/// code) into the contact.
fn note_answer(contact: &mut Contact, v: &Value) {
    let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    contact.source_address = text("/sourceAddress");
    contact.path = text("/path");
    contact.error = text("/error/innererror/code")
        .or_else(|| text("/error/code"))
        .or_else(|| text("/errors/0/code"));
}

/// An SMB (TCP 445) connection to `host` by `route`: the emulated service
/// writes one JSON line (who it saw, and its decision) and closes.
async fn smb_contact(env: &Env, spec: &StartupSpec, route: PlatformRoute, host: &str) -> Contact {
    let mut c = Contact::new(host, 445, route);
    match resolve(env, spec, route, host).await {
        Err(e) => c.error = Some(e),
        Ok(addr) => {
            c.address = addr.to_string();
            let m = mark(spec, route);
            let r = in_netns_async(&spec.worker_netns, move || {
                let mut s = client::connect(SocketAddrV4::new(addr, 445), m)?;
                Ok(client::smb_greeting(&mut s)?)
            })
            .await;
            match r {
                Ok(v) => {
                    note_answer(&mut c, &v);
                    c.ok = v.get("error").is_none();
                }
                Err(e) => c.error = Some(format!("{e:#}")),
            }
        }
    }
    c
}

/// One of the app's own storage mounts (seed: integration "doesn't support
/// ... Mounting a drive"): always over the public route, from the app's
/// outbound IPs, whatever Route All or `vnetContentShareEnabled` say. An
/// Azure Files share is mounted over SMB (445), a blob container over HTTPS
/// (443). The app starts either way; the mount's state says how it went.
async fn storage_mount(env: &Env, spec: &StartupSpec, m: &StorageMount) -> StorageMountStatus {
    let route = PlatformRoute::Public;
    let (host, contact) = match m.kind {
        StorageMountKind::AzureFiles => {
            let host = format!("{}.file.core.windows.net", m.account_name);
            let c = smb_contact(env, spec, route, &host).await;
            (host, c)
        }
        StorageMountKind::AzureBlob => {
            let host = format!("{}.blob.core.windows.net", m.account_name);
            let (c, _) = request(env, spec, Request::get(route, &host, 443, "/")).await;
            (host, c)
        }
    };
    let ok = contact.ok;
    let target = format!("{host}/{}", m.share_name);
    let message = if ok {
        format!("{target} mounted at {} over the public route", m.mount_path)
    } else {
        format!(
            "{target} could not be mounted: {} (TCP {}). Storage mounts are made over the public route from the \
             app's outbound IPs, never through the virtual network integration (mounting a drive is not \
             supported over it): a storage firewall must admit those addresses",
            contact.error.as_deref().unwrap_or("failed"),
            contact.port
        )
    };
    StorageMountStatus {
        state: if ok { "Ok" } else { "InvalidShare" }.into(),
        mount_path: m.mount_path.clone(),
        step: Step {
            status: if ok { "Succeeded" } else { "Failed" }.into(),
            route,
            target,
            contacts: vec![contact],
            message,
        },
    }
}

/// The content share: SMB (445) and the Files REST endpoint (443), both
/// must work for the share to mount.
async fn content_share(env: &Env, spec: &StartupSpec) -> Option<Step> {
    let cs = spec.content_share.as_ref()?;
    let host = cs.host();
    let mut contacts = vec![smb_contact(env, spec, cs.route, &host).await];
    // The Files REST endpoint on 443: the emulated account answers its
    // identity at `/` (it keeps no share metadata).
    let path = "/";
    let (rest, _) = request(env, spec, Request::get(cs.route, &host, 443, path)).await;
    contacts.push(rest);
    let ok = contacts.iter().all(|c| c.ok);
    let message = if ok {
        format!("content share {} mounted from {host}", cs.share)
    } else {
        let failed: Vec<String> = contacts
            .iter()
            .filter(|c| !c.ok)
            .map(|c| {
                format!(
                    "TCP {} ({})",
                    c.port,
                    c.error.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        let hint = match cs.route {
            PlatformRoute::VirtualNetwork => {
                "; the content share goes through the virtual network integration: \
                 the subnet's NSG, route table and firewall must allow TCP 443 and 445 to the storage account"
            }
            PlatformRoute::Public => "",
        };
        format!(
            "the content share {} on {host} is unreachable: {}{hint}",
            cs.share,
            failed.join(", ")
        )
    };
    Some(Step {
        status: if ok { "Succeeded" } else { "Failed" }.into(),
        route: cs.route,
        target: format!("{host}/{}", cs.share),
        contacts,
        message,
    })
}

async fn image_pull(env: &Env, spec: &StartupSpec) -> Option<Step> {
    let img = spec.image.as_ref()?;
    let (host, port) = match img.registry.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(443)),
        None => (img.registry.clone(), 443),
    };
    let path = format!("/v2/{}/manifests/{}", img.repository, img.tag);
    let (contact, resp) = request(env, spec, Request::get(img.route, &host, port, &path)).await;
    let target = format!("{}/{}:{}", img.registry, img.repository, img.tag);
    let ok = contact.ok;
    let message = if ok {
        format!("pulled {target}")
    } else {
        let why = match resp.map(|r| r.status) {
            Some(404) => "the image or tag does not exist (MANIFEST_UNKNOWN)".to_string(),
            Some(403) => "the registry's network rules deny this client (DENIED)".to_string(),
            _ => contact.error.clone().unwrap_or_default(),
        };
        format!("image pull of {target} failed: {why}")
    };
    Some(Step {
        status: if ok { "Succeeded" } else { "Failed" }.into(),
        route: img.route,
        target,
        contacts: vec![contact],
        message,
    })
}

/// Key Vault references: over the public route first; when the vault
/// blocks public traffic (403) and the app is integrated, through the
/// integration (seed, "App settings using Key Vault references").
async fn key_vault_reference(
    env: &Env,
    spec: &StartupSpec,
    raw: &str,
    reference: &Result<KeyVaultReference, String>,
) -> KeyVaultReferenceStatus {
    let mut st = KeyVaultReferenceStatus {
        reference: raw.to_string(),
        status: ResolveStatus::Initialized,
        vault_name: None,
        secret_name: None,
        secret_version: None,
        identity_type: if spec.managed_identity {
            "SystemAssigned"
        } else {
            "None"
        }
        .into(),
        details: String::new(),
        source: "KeyVault".into(),
        route: None,
        contacts: Vec::new(),
        value: None,
    };
    let r = match reference {
        Err(why) => {
            st.status = ResolveStatus::InvalidSyntax;
            st.details = why.clone();
            return st;
        }
        Ok(r) => r,
    };
    st.vault_name = Some(r.vault_name.clone());
    st.secret_name = Some(r.secret_name.clone());
    st.secret_version = r.secret_version.clone();
    if !spec.managed_identity {
        st.status = ResolveStatus::MsiNotEnabled;
        st.details = "the app has no managed identity: set identity.type to SystemAssigned \
                      (or UserAssigned) so it can read the vault"
            .into();
        return st;
    }
    let host = r.vault_host();
    let path = r.secret_path();
    let mut routes = vec![PlatformRoute::Public];
    if spec.integration.is_some() {
        routes.push(PlatformRoute::VirtualNetwork);
    }
    for route in routes {
        let (contact, resp) = request(env, spec, Request::get(route, &host, 443, &path)).await;
        let code = contact.error.clone();
        st.contacts.push(contact);
        let Some(resp) = resp else {
            let e = code.unwrap_or_default();
            (st.status, st.details) = if e.contains("NXDOMAIN") || e.contains("no A record") {
                (
                    ResolveStatus::VaultNotFound,
                    format!("the vault {host} does not resolve: {e}"),
                )
            } else if e.contains("timed out") {
                (ResolveStatus::FetchTimedOut, format!("{host}: {e}"))
            } else {
                (ResolveStatus::OtherReasons, format!("{host}: {e}"))
            };
            // A dead public route is not a firewall denial: no retry.
            return st;
        };
        st.route = Some(route);
        match resp.status {
            200..=299 => {
                st.status = ResolveStatus::Resolved;
                st.value = resp
                    .json()
                    .get("value")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                st.details = format!("resolved over the {} route", route_name(route));
                return st;
            }
            403 => {
                st.status = ResolveStatus::AccessToKeyVaultDenied;
                st.details = format!(
                    "the vault's firewall denied the request over the {} route ({})",
                    route_name(route),
                    code.unwrap_or_else(|| "Forbidden".into())
                );
                // Try the integration next, if there is one.
            }
            404 => {
                st.status = if r.secret_version.is_some() {
                    ResolveStatus::SecretVersionNotFound
                } else {
                    ResolveStatus::SecretNotFound
                };
                st.details = format!("{} not found in the vault", r.secret_uri());
                return st;
            }
            s => {
                st.status = ResolveStatus::OtherReasons;
                st.details = format!("the vault answered HTTP {s}");
                return st;
            }
        }
    }
    st
}

fn route_name(r: PlatformRoute) -> &'static str {
    match r {
        PlatformRoute::Public => "public",
        PlatformRoute::VirtualNetwork => "virtual network integration",
    }
}

/// Runs the startup of one instance.
#[tracing::instrument(skip_all, fields(site = %spec.site_name, instance = spec.instance))]
pub async fn start_instance(env: &Env, spec: &StartupSpec) -> InstanceStartup {
    let content_share = content_share(env, spec).await;
    let image_pull = image_pull(env, spec).await;
    let mut key_vault_references = std::collections::BTreeMap::new();
    for kv in &spec.key_vault_references {
        key_vault_references.insert(
            kv.setting.clone(),
            key_vault_reference(env, spec, &kv.raw, &kv.reference).await,
        );
    }
    let mut storage_mounts = std::collections::BTreeMap::new();
    for m in &spec.storage_mounts {
        storage_mounts.insert(m.name.clone(), storage_mount(env, spec, m).await);
    }
    let blocker = [&content_share, &image_pull]
        .into_iter()
        .flatten()
        .find(|s| s.status != "Succeeded")
        .map(|s| s.message.clone());
    if let Some(why) = &blocker {
        tracing::warn!("the app does not start: {why}");
    }
    InstanceStartup {
        instance: spec.instance,
        content_share,
        image_pull,
        key_vault_references,
        storage_mounts,
        app_started: blocker.is_none(),
        reason: blocker,
    }
}

/// The outcome of a custom backup or restore.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupOutcome {
    pub status: String,
    pub route: PlatformRoute,
    pub contact: Contact,
    pub message: String,
}

/// Writes (backup) or reads (restore) a blob on a storage account from
/// instance 0's worker, by the route `vnetBackupRestoreEnabled` chose.
pub async fn backup(
    env: &Env,
    spec: &StartupSpec,
    route: PlatformRoute,
    account: &str,
    blob_path: &str,
    content: Option<Vec<u8>>,
) -> (BackupOutcome, Option<Vec<u8>>) {
    let host = format!("{account}.blob.core.windows.net");
    let restore = content.is_none();
    let (contact, resp) = request(
        env,
        spec,
        Request {
            route,
            host: &host,
            port: 443,
            tls: true,
            method: if restore { "GET" } else { "PUT" },
            path: blob_path,
            body: content.unwrap_or_default(),
        },
    )
    .await;
    let ok = contact.ok;
    let what = if restore { "restore from" } else { "backup to" };
    let message = if ok {
        format!(
            "{what} https://{host}{blob_path} succeeded over the {} route",
            route_name(route)
        )
    } else {
        format!(
            "{what} https://{host}{blob_path} failed over the {} route: {}",
            route_name(route),
            contact.error.as_deref().unwrap_or("failed")
        )
    };
    let body = resp.filter(|_| ok && restore).map(|r| r.body);
    (
        BackupOutcome {
            status: if ok { "Succeeded" } else { "Failed" }.into(),
            route,
            contact,
            message,
        },
        body,
    )
}
