//! The daemon: validate -> commit -> plan -> reconcile, one request at a time,
//! and a level-triggered resync loop that keeps the kernel on the plan.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::sync::{Mutex, Notify};

use crate::dataplane::{Dataplane, ReconcileReport, Scope};
use crate::dnsd::DnsServers;
use crate::model::LAB_OWNER as DEFAULT_PRINCIPAL;
use crate::model::{AzureError, GenericResource, LabConfig, LabState, ResourceId};
use crate::plan::{self, ExecTarget, ProcessPlan};
use crate::store::Store;
use crate::supervisor::Supervisor;
use crate::validate::{self, RequestContext};

tokio::task_local! {
    /// The principal the current request acts as (from the request's header).
    pub static PRINCIPAL: String;
}

/// How the daemon was started.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub lab: LabConfig,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    /// How often the kernel is checked against the plan (level-triggered).
    pub resync_interval: Duration,
    /// How often VNet flow logs write their records (Azure: about a minute).
    pub flow_log_interval: Duration,
    /// Also serve `GET /metrics` on 127.0.0.1:PORT (opt-in).
    pub metrics_port: Option<u16>,
    /// The group that may use the API socket (0660); `None`: root only (0600).
    pub socket_group: Option<String>,
    /// Which principal each Unix user acts as (`caller.rs`); `None`: only
    /// root chooses, the socket's group acts as the lab owner.
    pub principal_map: Option<super::caller::PrincipalMap>,
}

/// An error answered to a client: Azure's own, or an internal failure.
#[derive(Debug)]
pub enum ApiError {
    Azure(AzureError),
    Internal(anyhow::Error),
}

impl From<AzureError> for ApiError {
    fn from(e: AzureError) -> Self {
        ApiError::Azure(e)
    }
}
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Totals {
    pub reconciles: u64,
    pub kernel_writes: u64,
    /// Seconds spent reconciling, all reconciles together, and the last one.
    pub reconcile_seconds: f64,
    pub last_reconcile_seconds: f64,
    pub last: Option<ReconcileReport>,
    pub last_error: Option<String>,
    /// The first reconcile after the start has ended (the API answers
    /// reads before it does).
    pub ready: bool,
}

/// The running daemon's shared state.
pub struct Daemon {
    pub config: DaemonConfig,
    pub(super) store: Store,
    /// The committed desired state. Holding this lock serialises every apply.
    pub(super) state: Mutex<LabState>,
    /// The same state as last committed, for reads: a GET, an authorization
    /// check or a progress poll never waits for an apply to end.
    pub(super) committed: std::sync::RwLock<Arc<LabState>>,
    pub(super) dataplane: Dataplane,
    pub(super) supervisor: Supervisor,
    /// Azure-provided DNS in every VNet and the lab's public DNS.
    pub(super) dns: DnsServers,
    pub(super) processes: std::sync::Mutex<Vec<ProcessPlan>>,
    /// What the platform did when each app instance started.
    pub(super) startups: std::sync::Mutex<super::platform::Startups>,
    pub(super) totals: std::sync::Mutex<Totals>,
    /// The lab CA (certificate, key) the services' certificates are signed with.
    pub lab_ca: (PathBuf, PathBuf),
    /// Every deployment, failed ones too (`deployments.json`).
    pub(super) history: super::deployments::History,
    /// This program, which service hosts run as (`vnet-agent service-host`).
    service_exe: PathBuf,
    /// What each gateway's BGP speaker learned, as the route watches report it.
    pub(super) bgp_watches: super::bgp::BgpWatches,
    /// The readers of the lab's VNet flow logs.
    pub(super) flow_logs: super::flow_logs::FlowLogs,
    /// Running Network Watcher packet captures.
    pub(super) packet_captures: super::packet_captures::PacketCaptures,
    bgp_tx: tokio::sync::mpsc::UnboundedSender<super::bgp::Learned>,
    bgp_rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<super::bgp::Learned>>>,
    /// Set by `down`: nothing may rebuild the lab any more.
    stopping: std::sync::atomic::AtomicBool,
    pub shutdown: Notify,
}

impl Daemon {
    /// Opens the state directory (locking it), adopts running app processes and
    /// reconciles the kernel to the committed state once.
    pub async fn start(config: DaemonConfig) -> Result<Arc<Daemon>> {
        let store = Store::open(&config.state_dir)?;
        let state = store.load()?;
        let supervisor = Supervisor::open(&config.state_dir, &config.lab.name)?;
        let dataplane = Dataplane::new(&config.lab.name, &config.state_dir);
        let dns = DnsServers::new(&config.state_dir);
        let startups = super::platform::Startups::open(&config.state_dir);
        let lab_ca = crate::services::ca::ensure(&config.state_dir).context("the lab CA")?;
        let history = super::deployments::History::open(&config.state_dir);
        let (bgp_tx, bgp_rx) = tokio::sync::mpsc::unbounded_channel();
        let daemon = Arc::new(Daemon {
            bgp_watches: Default::default(),
            flow_logs: Default::default(),
            packet_captures: Default::default(),
            bgp_tx,
            bgp_rx: std::sync::Mutex::new(Some(bgp_rx)),
            history,
            lab_ca,
            service_exe: current_exe()?,
            dns,
            config,
            store,
            committed: std::sync::RwLock::new(Arc::new(state.clone())),
            state: Mutex::new(state),
            dataplane,
            supervisor,
            processes: std::sync::Mutex::new(Vec::new()),
            startups: std::sync::Mutex::new(startups),
            totals: Default::default(),
            stopping: Default::default(),
            shutdown: Notify::new(),
        });
        {
            let mut state = daemon.state.lock().await;
            // What running speakers learned before this start: planned from
            // the first reconcile, so a restart does not take their routes
            // away from established flows.
            state.learned_routes = super::bgp::observe_learned(&state, &daemon.config.lab).await;
            daemon.publish(&state);
        }
        Ok(daemon)
    }

    /// The first reconcile after a start: an audit of every namespace
    /// against the committed state. It holds the state lock, so writes wait
    /// for it; reads are answered from the committed state meanwhile (a
    /// restart of a big lab does not leave the API silent). A failure is
    /// reported in `lab status` and retried by the resync loop, as any
    /// reconcile's.
    pub async fn initial_reconcile(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let (held, is_held) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(async move {
            let state = self.state.lock().await;
            let _ = held.send(());
            match self.reconcile(&state, Scope::Audit).await {
                Ok(r) => tracing::info!(kernel_writes = r.kernel_writes, "initial reconcile done"),
                Err(e) => tracing::error!("initial reconcile: {e:#}"),
            }
            self.totals.lock().unwrap().ready = true;
        });
        // The lock is taken before the socket answers: no write goes first.
        let _ = is_held.await;
        handle
    }

    /// `principal` may do `action` at `scope` in the committed state (the
    /// lab's own routes; resource routes check inside `validate`).
    /// The last committed state (see `committed`).
    pub(super) fn snapshot(&self) -> Arc<LabState> {
        self.committed.read().unwrap().clone()
    }

    /// Makes `state` what reads see; called with the state lock held, after
    /// every change to it.
    pub(super) fn publish(&self, state: &LabState) {
        *self.committed.write().unwrap() = Arc::new(state.clone());
    }

    pub async fn authorize(
        &self,
        principal: &str,
        action: &str,
        scope: &str,
    ) -> Result<(), ApiError> {
        let state = self.snapshot();
        Ok(crate::authz::require(&state, principal, action, scope)?)
    }

    /// Who is asking, and when: what validation needs beyond the state.
    pub(super) fn context(&self) -> RequestContext {
        let principal = PRINCIPAL
            .try_with(|p| p.clone())
            .unwrap_or_else(|_| DEFAULT_PRINCIPAL.to_string());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        RequestContext { principal, now }
    }

    /// Plans `state` and makes the kernel and the app processes match it.
    #[tracing::instrument(skip_all, fields(generation = state.generation))]
    pub(super) async fn reconcile(
        &self,
        state: &LabState,
        scope: Scope,
    ) -> Result<ReconcileReport> {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("the lab is being taken down");
        }
        let started = std::time::Instant::now();
        let progress = &self.dataplane.progress;
        let _finish = progress.guard();
        progress.step("planning", 0);
        let plan = plan::build(state, &self.config.lab);
        // Before namespaces go: a socket of ours would keep one alive.
        self.dns.stop_gone(&plan);
        let result = self.dataplane.reconcile(&plan, scope).await;
        {
            let mut t = self.totals.lock().unwrap();
            t.reconciles += 1;
            let took = started.elapsed().as_secs_f64();
            t.reconcile_seconds += took;
            t.last_reconcile_seconds = took;
            match &result {
                Ok(r) => {
                    t.kernel_writes += r.kernel_writes;
                    t.last = Some(r.clone());
                    t.last_error = None;
                }
                Err(e) => t.last_error = Some(format!("{e:#}")),
            }
        }
        let report = result?;
        // resolv.conf files first: a process started now mounts its file.
        self.dns.write_resolv_confs(&plan)?;
        // Services and every app instance whose startup is settled run
        // first; then the platform's startup work (configuration routing:
        // content share, image pull, Key Vault references) runs for the
        // instances whose spec changed, against running services, and
        // decides whether those apps start and with which settings.
        let specs = &plan.startups;
        let services = self.service_processes(&plan.services)?;
        let desired = |d: &Self| {
            let ca = d.lab_ca.0.to_string_lossy().into_owned();
            let mut processes = d.started_processes(&plan.processes, specs);
            for p in &mut processes {
                p.env.insert(LAB_CA_ENV.into(), ca.clone());
            }
            processes.extend(services.iter().cloned());
            processes
        };
        let first = desired(self);
        progress.step("starting processes", 0);
        *self.processes.lock().unwrap() = first.clone();
        self.supervisor.sync(&first)?;
        progress.step("platform startup (configuration routing)", 0);
        if self.run_startups(state, specs).await {
            let second = desired(self);
            *self.processes.lock().unwrap() = second.clone();
            self.supervisor.sync(&second)?;
        }
        self.dns.sync(&plan, state).await?;
        self.bgp_watches.sync(&plan, &self.bgp_tx);
        self.flow_logs.sync(
            state,
            &self.config.lab,
            &self.config.state_dir,
            self.config.flow_log_interval,
        );
        Ok(report)
    }

    /// The receiving end of the route watches (taken once, by `serve`).
    pub fn take_bgp_events(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<super::bgp::Learned>> {
        self.bgp_rx.lock().unwrap().take()
    }

    /// Writes each service host's configuration (only when it changed: the
    /// host re-reads the file when its modification time moves) and returns
    /// the host processes. The command line never changes with the
    /// configuration, so a rule change does not restart the host.
    fn service_processes(&self, services: &[plan::ServiceHostPlan]) -> Result<Vec<ProcessPlan>> {
        let dir = self.config.state_dir.join("services");
        std::fs::create_dir_all(&dir)?;
        let mut out = Vec::new();
        for s in services {
            let mut config = s.config.clone();
            config["ca"] = json!([self.lab_ca.0, self.lab_ca.1]);
            let bytes = serde_json::to_vec_pretty(&config)?;
            let path = dir.join(format!(
                "{}.json",
                &crate::plan::names::sha256_hex(&s.key)[..16]
            ));
            if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
                crate::store::write_atomic(&path, &bytes)?;
            }
            out.push(ProcessPlan {
                key: s.key.clone(),
                netns: s.netns.clone(),
                argv: vec![
                    self.service_exe.to_string_lossy().into_owned(),
                    s.command.clone(),
                    "--config".into(),
                    path.to_string_lossy().into_owned(),
                ],
                env: BTreeMap::new(),
                cgroup: None,
            });
        }
        // The configurations of services that are gone, and the files their
        // hosts made beside them (`<hash>.*`: a BGP speaker's BIRD
        // configuration and control socket).
        let stem = |p: &std::path::Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('.').next())
                .map(str::to_string)
        };
        let keep: Vec<Option<String>> = out
            .iter()
            .map(|p| stem(std::path::Path::new(&p.argv[3])))
            .collect();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if !keep.contains(&stem(&path)) {
                // `<hash>.blobs/`: the platform's blobs of a deleted account.
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
            }
        }
        Ok(out)
    }

    /// Validates the whole change, commits it, then applies it. An invalid
    /// request changes neither the store nor the kernel.
    pub(super) async fn commit_and_apply(
        &self,
        change: impl FnOnce(&LabState) -> Result<LabState, AzureError>,
    ) -> Result<(LabState, ReconcileReport), ApiError> {
        let mut state = self.state.lock().await;
        let _finish = self.dataplane.progress.guard();
        self.dataplane.progress.step("validating", 0);
        // If-Match / If-None-Match, under the lock: nothing can change the
        // resource between this check and the commit.
        if let Some(pc) = super::etag::current() {
            pc.check(&state)?;
        }
        let mut next = change(&state)?;
        next.generation = state.generation;
        if next != *state {
            next.generation += 1;
            self.store.commit(&next).map_err(|e| {
                ApiError::Azure(AzureError::new(
                    500,
                    "StateNotCommitted",
                    format!(
                        "The change was not saved, so nothing of it was applied: {e:#}. \
                         Free space in (or make writable) the state directory {} and send the request again.",
                        self.config.state_dir.display()
                    ),
                ))
            })?;
            *state = next;
            self.publish(&state);
        }
        let report = self.reconcile(&state, Scope::Changed).await.map_err(|e| {
            ApiError::Internal(e.context(
                "the change was committed but applying it to the kernel failed; \
                 the agent retries on its next reconcile",
            ))
        })?;
        Ok((state.clone(), report))
    }

    /// `az resource create`-style PUT of one resource.
    pub async fn put_resource(&self, id: ResourceId, body: Value) -> Result<Value, ApiError> {
        let resource = resource_from_body(&id, &body);
        let lab = self.config.lab.clone();
        let ctx = self.context();
        let (state, _) = self
            .commit_and_apply(|s| validate::apply_resources(s, vec![resource], &lab, &ctx))
            .await?;
        Ok(plan::view::resource_view(&state, &self.config.lab, &id)?)
    }

    pub async fn delete(&self, id: ResourceId) -> Result<Value, ApiError> {
        let lab = self.config.lab.clone();
        let ctx = self.context();
        let (_, report) = self
            .commit_and_apply(|s| validate::delete_resource(s, &id, &lab, &ctx))
            .await?;
        Ok(json!({ "id": id.to_string(), "deleted": true, "reconcile": report }))
    }

    pub async fn show(&self, id: &ResourceId) -> Result<Value, ApiError> {
        let state = self.snapshot();
        let mut view = plan::view::resource_view(&state, &self.config.lab, id)?;
        drop(state);
        self.annotate_processes(&mut view);
        self.annotate_failures(&mut view);
        if id
            .full_type()
            .eq_ignore_ascii_case("Microsoft.Network/networkSecurityGroups")
        {
            self.annotate_nsg_hits(id, &mut view).await;
        }
        Ok(view)
    }

    /// Adds the supervised processes of a site to its view.
    fn annotate_processes(&self, view: &mut Value) {
        let Some(id) = view
            .get("id")
            .and_then(|v| v.as_str())
            .map(|s| s.to_ascii_lowercase())
        else {
            return;
        };
        let prefix = format!("{id}/");
        let procs: Vec<_> = self
            .supervisor
            .status_where(|key| key.to_ascii_lowercase().starts_with(&prefix));
        let startups = self.site_startups(&id);
        // Each storage mount's `state`, as Azure shows it on
        // `azureStorageAccounts` (instance 0's mount, one per site as Azure).
        if let Some(first) = startups.iter().min_by_key(|s| s.instance) {
            if let Some(mounts) = view
                .pointer_mut("/properties/siteConfig/azureStorageAccounts")
                .and_then(Value::as_object_mut)
            {
                for (name, m) in mounts.iter_mut() {
                    if let (Some(status), Some(obj)) =
                        (first.storage_mounts.get(name), m.as_object_mut())
                    {
                        obj.insert("state".into(), json!(status.state));
                    }
                }
            }
        }
        if procs.is_empty() && startups.is_empty() {
            return;
        }
        if let Some(obj) = view.as_object_mut() {
            let em = obj.entry("emulator").or_insert_with(|| json!({}));
            if let Some(em) = em.as_object_mut() {
                if !procs.is_empty() {
                    em.insert("processes".into(), json!(procs));
                }
                if !startups.is_empty() {
                    em.insert("startup".into(), json!(startups));
                }
            }
        }
    }

    pub async fn list(&self, resource_group: Option<&str>) -> Value {
        let state = self.snapshot();
        let mut views = plan::view::list(&state, &self.config.lab, resource_group);
        drop(state);
        for v in &mut views {
            self.annotate_failures(v);
        }
        json!({ "value": views })
    }

    /// What failed to apply, by resource: each process that could not be
    /// started belongs to the resource whose id its key starts with
    /// (`<site>/instances/N`, `<vm>/extensions/<name>`, a service's id).
    fn failures_by_resource(&self) -> BTreeMap<String, Vec<(String, String)>> {
        let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (key, why) in self.supervisor.failures() {
            let lower = key.to_ascii_lowercase();
            let resource = ["/instances/", "/extensions/"]
                .iter()
                .find_map(|m| lower.find(m).map(|i| lower[..i].to_string()))
                .unwrap_or(lower);
            out.entry(resource).or_default().push((key, why));
        }
        out
    }

    /// A resource that failed to apply shows it, as ARM does:
    /// `provisioningState: Failed`, and why under `emulator.provisioningErrors`.
    fn annotate_failures(&self, view: &mut Value) {
        let Some(id) = view
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
        else {
            return;
        };
        let Some(errors) = self.failures_by_resource().remove(&id) else {
            return;
        };
        if let Some(props) = view.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("provisioningState".into(), json!("Failed"));
        }
        if let Some(obj) = view.as_object_mut() {
            let em = obj.entry("emulator").or_insert_with(|| json!({}));
            if let Some(em) = em.as_object_mut() {
                let list: Vec<Value> = errors
                    .iter()
                    .map(|(key, why)| json!({ "key": key, "message": why }))
                    .collect();
                em.insert("provisioningErrors".into(), json!(list));
            }
        }
    }

    pub async fn exec_target(&self, target: &ExecTarget) -> Result<Value, ApiError> {
        let state = self.snapshot();
        let mut spec = plan::exec_target(&state, &self.config.lab, target)?;
        let action = match target {
            ExecTarget::App { .. } => crate::authz::EXEC_APP.to_string(),
            ExecTarget::Vm { .. } => crate::authz::EXEC_VM.to_string(),
            ExecTarget::Host { .. } => crate::authz::EXEC_HOST.to_string(),
            // A site's router or a gateway: write on the resource.
            ExecTarget::OnPremisesHost { .. }
            | ExecTarget::Site { .. }
            | ExecTarget::Gateway { .. } => {
                format!("{}/write", spec.resource.full_type())
            }
        };
        crate::authz::require(
            &state,
            &self.context().principal,
            &action,
            &spec.resource.to_string(),
        )?;
        if let Some(key) = &spec.process_key {
            self.startup_env(key, &mut spec.env);
        }
        // `birdc -s "$VNET_BIRD_SOCKET" show route` talks to the speaker there.
        if let Some(owner) = &spec.speaker {
            spec.env.insert(
                BIRD_SOCKET_ENV.into(),
                self.speaker_socket(owner).to_string_lossy().into_owned(),
            );
        }
        spec.env.insert(
            LAB_CA_ENV.into(),
            self.lab_ca.0.to_string_lossy().into_owned(),
        );
        let resolv = crate::dnsd::resolv_conf_path(&self.config.state_dir, &spec.netns);
        let resolv = resolv
            .exists()
            .then(|| resolv.to_string_lossy().into_owned());
        Ok(json!({ "netns": spec.netns, "env": spec.env, "resolvConf": resolv }))
    }

    /// Reconciles now (what the resync loop does), returning what was written.
    pub async fn resync(&self) -> Result<ReconcileReport> {
        let state = self.state.lock().await;
        self.reconcile(&state, Scope::Audit).await
    }

    pub async fn status(&self) -> Value {
        let state = self.snapshot();
        let mut totals = self.totals.lock().unwrap().clone();
        let failed: Vec<Value> = self
            .failures_by_resource()
            .into_iter()
            .map(|(id, errors)| {
                let messages: Vec<String> = errors
                    .iter()
                    .map(|(k, why)| format!("{k}: {why}"))
                    .collect();
                json!({ "id": id, "provisioningState": "Failed", "errors": messages })
            })
            .collect();
        if totals.last_error.is_none() && !failed.is_empty() {
            totals.last_error = Some(format!(
                "{} resource(s) failed to apply (see failedResources); the rest of the lab is applied",
                failed.len()
            ));
        }
        json!({
            "failedResources": failed,
            "lab": self.config.lab,
            "stateDir": self.config.state_dir,
            "generation": state.generation,
            "resources": state.resources.len(),
            "totals": totals,
            "processes": self.supervisor.status(),
            "dnsServers": self.dns.status(),
        })
    }

    /// `down`: ends the app processes, removes every namespace of the lab and
    /// stops the daemon. The committed state stays (a later `serve` rebuilds
    /// the lab) unless `purge`.
    pub async fn down(&self, purge: bool) -> Result<Value> {
        // Hold the state lock so no reconcile rebuilds what we remove.
        let mut state = self.state.lock().await;
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.dataplane.progress.step("stopping processes", 0);
        self.processes.lock().unwrap().clear();
        self.supervisor.stop_all()?;
        self.dns.stop_all();
        self.flow_logs.stop_all();
        self.packet_captures.stop_all();
        self.dns.remove_resolv_confs();
        let report = self.dataplane.teardown().await?;
        if purge {
            *state = LabState::default();
            self.publish(&state);
            self.store.commit(&state)?;
        }
        self.shutdown.notify_waiters();
        Ok(json!({ "teardown": report, "purged": purge }))
    }

    /// Keeps the kernel on the plan and the app processes running.
    pub async fn resync_loop(self: Arc<Self>) {
        let mut net = tokio::time::interval(self.config.resync_interval);
        let mut procs = tokio::time::interval(Duration::from_secs(1));
        net.tick().await;
        loop {
            tokio::select! {
                _ = net.tick() => {
                    if let Err(e) = self.resync().await {
                        tracing::warn!("resync failed: {e:#}");
                    }
                }
                _ = procs.tick() => {
                    // Until the first reconcile has planned the processes,
                    // the list is empty: a check now would stop every app
                    // the previous daemon left running.
                    if !self.totals.lock().unwrap().ready {
                        continue;
                    }
                    let desired = self.processes.lock().unwrap().clone();
                    if let Err(e) = self.supervisor.sync(&desired) {
                        tracing::warn!("{e:#}");
                    }
                    // A namespace deleted from outside is rebuilt within a
                    // second, proportionally; other drift waits for the audit.
                    if self.dataplane.lost_namespace() {
                        if let Ok(state) = self.state.try_lock() {
                            tracing::warn!("a namespace of the lab was deleted from outside; rebuilding it");
                            if let Err(e) = self.reconcile(&state, Scope::Changed).await {
                                tracing::warn!("rebuilding: {e:#}");
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The environment variable that names the lab CA's certificate file in app
/// processes and `exec` (notes/service-api.md, "TLS").
pub const LAB_CA_ENV: &str = "VNET_LAB_CA_FILE";

/// The environment variable that names the BGP speaker's control socket in
/// `exec --site` and `exec --gateway` (`birdc -s "$VNET_BIRD_SOCKET" ...`).
pub const BIRD_SOCKET_ENV: &str = "VNET_BIRD_SOCKET";

/// This program's path, for the service hosts' command line. A binary
/// replaced on disk since it started reads as `<path> (deleted)`: the path is
/// what the next start will run.
fn current_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let text = exe.to_string_lossy();
    Ok(text
        .strip_suffix(" (deleted)")
        .map(PathBuf::from)
        .unwrap_or(exe))
}

/// Parameters of a deployment as ARM sends them: `{"name": {"value": ...}}`.
pub fn deployment_parameters(v: Option<&Value>) -> BTreeMap<String, Value> {
    v.and_then(|p| p.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.get("value").cloned().unwrap_or_else(|| v.clone()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The resource an ARM `PUT` body declares at `id` (`location`, `kind`,
/// `sku`, `properties`, `tags`, `identity`; the rest is ignored, as ARM does).
pub(crate) fn resource_from_body(id: &ResourceId, body: &Value) -> GenericResource {
    GenericResource {
        type_: id.full_type(),
        name: id.name().to_string(),
        location: body
            .get("location")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        kind: body
            .get("kind")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        sku: body.get("sku").cloned(),
        properties: body.get("properties").cloned().unwrap_or_else(|| json!({})),
        tags: body.get("tags").cloned(),
        identity: body.get("identity").filter(|v| !v.is_null()).cloned(),
        id: id.clone(),
    }
}
