//! HTTP routes: ARM-shaped paths onto the daemon's operations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::PRINCIPAL_HEADER;
use super::daemon::{deployment_parameters, ApiError, Daemon};
use crate::authz;
use crate::model::LAB_OWNER as DEFAULT_PRINCIPAL;
use crate::model::{AzureError, ResourceId};
use crate::plan::ExecTarget;
use crate::template::{DeploymentMode, DeploymentRequest};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Azure(e) => {
                let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
                (status, Json(e.to_json())).into_response()
            }
            ApiError::Internal(e) => {
                tracing::error!("{e:#}");
                let body =
                    json!({"error": {"code": "InternalServerError", "message": format!("{e:#}")}});
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}

type Reply = Result<Json<Value>, ApiError>;

pub fn router(daemon: Arc<Daemon>) -> Router {
    // The lab's own routes go through the same authorization as resource
    // routes (which check inside `validate`): a Reader must not `down`.
    let lab = Router::new()
        .route("/lab/status", get(status))
        .route("/lab/progress", get(progress))
        .route("/metrics", get(metrics))
        .route("/lab/reconcile", post(reconcile))
        .route("/lab/down", post(down))
        .route("/lab/exec", get(exec_target))
        .route("/lab/graph", get(lab_graph))
        .route("/lab/graph/counters", get(lab_graph_counters))
        .route("/lab/ca", get(lab_ca))
        .route("/lab/principals", get(list_principals))
        .route("/lab/principals/{name}", put(put_principal))
        .route("/lab/roleAssignments", get(list_role_assignments))
        .route(
            "/lab/subscriptions/{sub}",
            get(get_subscription).put(put_subscription),
        )
        .route_layer(middleware::from_fn_with_state(daemon.clone(), lab_gate));
    Router::new()
        .merge(lab)
        .route("/resources", get(list))
        .route("/subscriptions/{*rest}", any(resource))
        .route("/providers/{*rest}", any(root_scope))
        .layer(middleware::from_fn(request_span))
        .layer(middleware::from_fn_with_state(daemon.clone(), identify))
        .layer(middleware::from_fn(arm_errors))
        .layer(middleware::from_fn(request_size))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(daemon)
}

/// The largest request body: a 4 MB template (ARM's limit), its 4 MB of
/// parameters, and the template's text the CLI sends along for error
/// positions.
pub const MAX_REQUEST_BYTES: usize = 12 * 1024 * 1024;

/// A body over the limit is refused with ARM's JSON error naming the limit
/// (axum's own answer is plain text), before it is read: a client that says
/// how much it sends learns at once.
async fn request_size(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = |n: Option<usize>| {
        ApiError::from(AzureError::new(
            413,
            "RequestContentTooLarge",
            format!(
                "The request body{} is larger than the {} MB the API accepts (a template can't exceed 4 MB).",
                n.map(|n| format!(" ({:.1} MB)", n as f64 / 1_048_576.0)).unwrap_or_default(),
                MAX_REQUEST_BYTES / 1_048_576
            ),
        ))
        .into_response()
    };
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES) {
        return too_large(declared);
    }
    let res = next.run(req).await;
    // A body without a length that grew past the limit while being read.
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE
        && res
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none_or(|t| t != "application/json")
    {
        return too_large(None);
    }
    res
}

/// An error axum answers by itself (a query string or body its extractor
/// can't read, an unknown method) is plain text; ARM always answers
/// `{"error": {"code", "message"}}`, and clients parse that.
async fn arm_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() || is_json {
        return res;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "InvalidRequestContent",
        _ => "BadRequest",
    };
    // Extractor messages are short; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_string()
    } else {
        text
    };
    // 422 is axum's; ARM answers a request it can't read with 400.
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// Every API request runs in a span that names it: method and path (the
/// resource id, for ARM paths), so each log line of its work carries them.
async fn request_span(req: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        resource = %req.uri().path(),
    );
    let res = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    span.in_scope(|| tracing::debug!(status = res.status().as_u16(), "answered"));
    res
}

/// Replaces the principal a request names with the one its caller may act
/// as (`caller.rs`), or refuses it: everything after this reads a principal
/// the kernel vouched for.
async fn identify(State(d): State<Arc<Daemon>>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<super::caller::Peer>>()
        .map(|c| c.0)
        .unwrap_or(super::caller::Peer { uid: None });
    let asked = req
        .headers()
        .get(PRINCIPAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match super::caller::principal(
        peer,
        asked.as_deref(),
        d.config.principal_map.as_ref(),
        DEFAULT_PRINCIPAL,
    ) {
        Ok(p) => match axum::http::HeaderValue::from_str(&p) {
            Ok(v) => {
                req.headers_mut().insert(PRINCIPAL_HEADER, v);
                next.run(req).await
            }
            Err(_) => ApiError::from(AzureError::bad_request(
                "InvalidPrincipal",
                "the principal name is not a valid header value",
            ))
            .into_response(),
        },
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The calling principal (set by `identify`), else the lab owner.
fn principal_of(headers: &HeaderMap) -> String {
    headers
        .get(PRINCIPAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(DEFAULT_PRINCIPAL)
        .to_string()
}

/// The action and scope a lab route needs (docs/errors.md, "Lab
/// operations"); `None` for `exec`, which is checked on the resource it
/// resolves to.
fn lab_requirement(method: &Method, path: &str) -> Option<(&'static str, String)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let root = || "/".to_string();
    Some(match (method, parts.as_slice()) {
        (_, ["lab", "exec"]) => return None,
        (&Method::POST, ["lab", "reconcile"]) => (authz::LAB_RECONCILE, root()),
        (&Method::POST, ["lab", "down"]) => (authz::LAB_DOWN, root()),
        (&Method::PUT, ["lab", "principals", _]) => (authz::ROLE_ASSIGNMENT_WRITE, root()),
        (&Method::PUT, ["lab", "subscriptions", sub]) => (
            authz::SUBSCRIPTION_SETTINGS_WRITE,
            format!("/subscriptions/{sub}"),
        ),
        (_, ["lab", "subscriptions", sub]) => (authz::LAB_READ, format!("/subscriptions/{sub}")),
        _ => (authz::LAB_READ, root()),
    })
}

async fn lab_gate(State(d): State<Arc<Daemon>>, req: Request, next: Next) -> Response {
    let principal = principal_of(req.headers());
    if let Some((action, scope)) = lab_requirement(req.method(), req.uri().path()) {
        if let Err(e) = d.authorize(&principal, action, &scope).await {
            return e.into_response();
        }
    }
    super::daemon::PRINCIPAL
        .scope(principal, next.run(req))
        .await
}

async fn status(State(d): State<Arc<Daemon>>) -> Json<Value> {
    Json(d.status().await)
}

/// `GET /lab/progress`: what the running apply is doing (never waits for it).
async fn progress(State(d): State<Arc<Daemon>>) -> Json<Value> {
    Json(json!(d.dataplane.progress.snapshot()))
}

/// `vnet-agent lab ca`: the lab CA's certificate file.
async fn lab_ca(State(d): State<Arc<Daemon>>) -> Json<Value> {
    Json(json!({ "caFile": d.lab_ca.0 }))
}

async fn reconcile(State(d): State<Arc<Daemon>>) -> Reply {
    Ok(Json(json!({ "reconcile": d.resync().await? })))
}

#[derive(Deserialize)]
struct DownQuery {
    #[serde(default)]
    purge: bool,
}

async fn down(State(d): State<Arc<Daemon>>, Query(q): Query<DownQuery>) -> Reply {
    Ok(Json(d.down(q.purge).await?))
}

#[derive(Deserialize)]
struct ExecQuery {
    app: Option<String>,
    instance: Option<u32>,
    vm: Option<String>,
    host: Option<String>,
    onprem_host: Option<String>,
    site: Option<String>,
    gateway: Option<String>,
}

/// `GET /metrics`: Prometheus' text format.
async fn metrics(State(d): State<Arc<Daemon>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        d.metrics().await,
    )
        .into_response()
}

/// `GET /lab/graph?format=dot|mermaid|html|json[&resourceGroup=RG]`.
async fn lab_graph(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<super::watcher::GraphQuery>,
) -> Result<Response, ApiError> {
    let (ty, body) = d.lab_graph(&q).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, ty)], body).into_response())
}

/// `GET /lab/graph/counters[?resourceGroup=RG]`: the live counters the HTML page polls.
async fn lab_graph_counters(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<super::watcher::GraphQuery>,
) -> Reply {
    let graph = {
        let state = d.snapshot();
        let plan = crate::plan::build(&state, &d.config.lab);
        crate::diag::graph::build(&state, &d.config.lab, &plan, q.resource_group.as_deref())?
    };
    Ok(Json(d.graph_counters(&graph).await))
}

async fn exec_target(State(d): State<Arc<Daemon>>, Query(q): Query<ExecQuery>) -> Reply {
    let instance = q.instance.unwrap_or(0);
    let named = [
        q.app.map(|site| ExecTarget::App { site, instance }),
        q.vm.map(|name| ExecTarget::Vm { name }),
        q.host.map(|name| ExecTarget::Host { name }),
        q.onprem_host
            .map(|name| ExecTarget::OnPremisesHost { name }),
        q.site.map(|name| ExecTarget::Site { name }),
        q.gateway.map(|name| ExecTarget::Gateway { name }),
    ];
    let mut named: Vec<ExecTarget> = named.into_iter().flatten().collect();
    if named.len() != 1 {
        return Err(AzureError::bad_request(
            "InvalidRequest",
            "name exactly one of --app, --vm, --host, --onprem-host, --site or --gateway",
        )
        .into());
    }
    let target = named.remove(0);
    Ok(Json(d.exec_target(&target).await?))
}

async fn get_subscription(State(d): State<Arc<Daemon>>, Path(sub): Path<String>) -> Reply {
    Ok(Json(d.subscription_settings(&sub).await?))
}

async fn put_subscription(
    State(d): State<Arc<Daemon>>,
    Path(sub): Path<String>,
    Json(body): Json<Value>,
) -> Reply {
    Ok(Json(d.put_subscription_settings(&sub, &body).await?))
}

async fn list_principals(State(d): State<Arc<Daemon>>) -> Json<Value> {
    Json(d.list_principals().await)
}

async fn put_principal(State(d): State<Arc<Daemon>>, Path(name): Path<String>) -> Reply {
    Ok(Json(d.put_principal(&name).await?))
}

#[derive(Deserialize)]
struct AssigneeQuery {
    assignee: Option<String>,
}

async fn list_role_assignments(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<AssigneeQuery>,
) -> Json<Value> {
    Json(d.list_role_assignments(q.assignee.as_deref()).await)
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "resourceGroup")]
    resource_group: Option<String>,
}

async fn list(State(d): State<Arc<Daemon>>, Query(q): Query<ListQuery>) -> Json<Value> {
    Json(d.list(q.resource_group.as_deref()).await)
}

/// Any ARM path under `/subscriptions/`: resources, deployments, a site's
/// integration, actions (`restart`, `platformUpgrade`), role assignments at
/// any scope, provider registration and `moveResources`.
async fn resource(
    State(d): State<Arc<Daemon>>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    body: Bytes,
) -> Reply {
    let path = format!("/subscriptions/{}", rest.trim_end_matches('/'));
    arm_request(d, method, &headers, path, body).await
}

/// `/providers/...` at the root scope `/`: role assignments there (Azure's
/// root scope, `az role assignment create --scope /`).
async fn root_scope(
    State(d): State<Arc<Daemon>>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    body: Bytes,
) -> Reply {
    let path = format!("/providers/{}", rest.trim_end_matches('/'));
    arm_request(d, method, &headers, path, body).await
}

async fn arm_request(
    d: Arc<Daemon>,
    method: Method,
    headers: &HeaderMap,
    path: String,
    body: Bytes,
) -> Reply {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            AzureError::bad_request(
                "InvalidRequestContent",
                format!("the request body is not valid JSON: {e}"),
            )
        })?
    };
    let principal = principal_of(headers);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let precondition = super::etag::Precondition {
        id: path.parse().ok(),
        if_match: header("if-match"),
        if_none_match: header("if-none-match"),
    };
    super::daemon::PRINCIPAL
        .scope(
            principal,
            super::etag::PRECONDITION.scope(precondition, dispatch(d, method, path, body)),
        )
        .await
}

async fn dispatch(d: Arc<Daemon>, method: Method, path: String, body: Value) -> Reply {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let n = parts.len();

    // /subscriptions/S/providers/NS/register
    if n == 5 && lower[2] == "providers" && lower[4] == "register" && method == Method::POST {
        return Ok(Json(d.register_provider(parts[1], parts[3]).await?));
    }
    // /subscriptions/S/resourceGroups/RG/moveResources
    if n == 5
        && lower[2] == "resourcegroups"
        && lower[4] == "moveresources"
        && method == Method::POST
    {
        return Ok(Json(d.move_resources(parts[1], parts[3], body).await?));
    }
    // {scope}/providers/Microsoft.Authorization/roleAssignments/NAME
    if n >= 4 && lower[n - 2] == "roleassignments" && lower[n - 3] == "microsoft.authorization" {
        let scope = format!("/{}", parts[..n - 4].join("/"));
        let name = parts[n - 1];
        return match method {
            Method::PUT => Ok(Json(d.put_role_assignment(&scope, name, body).await?)),
            Method::DELETE => Ok(Json(d.delete_role_assignment(&scope, name).await?)),
            Method::GET => Ok(Json(d.get_role_assignment(&scope, name).await?)),
            other => Err(not_allowed(&other, &path)),
        };
    }
    // {site}/config/configreferences/appsettings: Key Vault reference statuses.
    if n == 11 && lower[n - 3..] == ["config", "configreferences", "appsettings"] {
        let site: ResourceId = format!("/{}", parts[..n - 3].join("/")).parse()?;
        return match method {
            Method::GET => Ok(Json(d.config_references(&site).await?)),
            other => Err(not_allowed(&other, &path)),
        };
    }
    // /subscriptions/S[/resourceGroups/RG]/providers/Microsoft.Network/networkWatchers[/NAME/...]
    let nw_at = |i: usize| {
        n > i + 2
            && lower[i] == "providers"
            && lower[i + 1] == "microsoft.network"
            && lower[i + 2] == "networkwatchers"
    };
    if n == 5 && nw_at(2) && method == Method::GET {
        return Ok(Json(d.network_watcher_list(parts[1], None).await));
    }
    if n == 7 && lower[2] == "resourcegroups" && nw_at(4) && method == Method::GET {
        return Ok(Json(d.network_watcher_list(parts[1], Some(parts[3])).await));
    }
    if n >= 8 && lower[2] == "resourcegroups" && nw_at(4) {
        let id: ResourceId = format!("/{}", parts[..8].join("/")).parse()?;
        return Ok(Json(
            d.network_watcher(&method, &id, &parts[8..], &body).await?,
        ));
    }
    // Actions and collections named by a last word after a resource id.
    let last = lower[n - 1].as_str();
    if n % 2 == 1
        && matches!(
            last,
            "virtualnetworkconnections"
                | "restart"
                | "platformupgrade"
                | "effectivenetworksecuritygroups"
                | "effectiveroutetable"
                | "resolve"
                | "backup"
                | "restore"
                | "getlearnedroutes"
                | "getadvertisedroutes"
                | "troubleshootnetwork"
        )
    {
        let owner: ResourceId = format!("/{}", parts[..n - 1].join("/")).parse()?;
        return match (last, &method) {
            ("virtualnetworkconnections", &Method::GET) => Ok(Json(d.connections(&owner).await?)),
            ("restart", &Method::POST) => Ok(Json(d.restart(&owner).await?)),
            ("platformupgrade", &Method::POST) => Ok(Json(d.platform_upgrade(owner).await?)),
            ("resolve", &Method::POST) => Ok(Json(d.resolve(&owner, &body).await?)),
            ("troubleshootnetwork", &Method::POST) => {
                Ok(Json(d.troubleshoot_network(&owner, &body).await?))
            }
            ("backup", &Method::POST) => Ok(Json(d.backup_restore(&owner, &body, false).await?)),
            ("restore", &Method::POST) => Ok(Json(d.backup_restore(&owner, &body, true).await?)),
            ("getlearnedroutes", &Method::POST) => Ok(Json(d.learned_routes(&owner).await?)),
            ("getadvertisedroutes", &Method::POST) => {
                Ok(Json(d.advertised_routes(&owner, &body).await?))
            }
            ("effectiveroutetable", &Method::POST) => {
                Ok(Json(d.effective_routes(&owner, &body).await?))
            }
            ("effectivenetworksecuritygroups", &Method::POST) => {
                Ok(Json(d.effective_nsgs(&owner, &body).await?))
            }
            _ => Err(not_allowed(&method, &path)),
        };
    }

    // /subscriptions/S/resourceGroups/RG/providers/Microsoft.Resources/deployments[/NAME/whatIf]
    if n >= 7
        && lower[2] == "resourcegroups"
        && lower[4] == "providers"
        && lower[5] == "microsoft.resources"
        && lower[6] == "deployments"
    {
        if n == 7 && method == Method::GET {
            return Ok(Json(
                d.deployment_list(&format!("/{}", parts[..4].join("/"))),
            ));
        }
        if n == 9 && lower[8] == "whatif" && method == Method::POST {
            let id: ResourceId = format!("/{}", parts[..8].join("/")).parse()?;
            return Ok(Json(
                d.what_if(id.name(), deployment_request(&id, &body)?)
                    .await?,
            ));
        }
    }
    let id: ResourceId = path.parse()?;
    let types: Vec<String> = id
        .segments
        .iter()
        .map(|(t, _)| t.to_ascii_lowercase())
        .collect();
    let is_deployment =
        id.namespace.eq_ignore_ascii_case("Microsoft.Resources") && types == ["deployments"];
    let is_network_config =
        id.namespace.eq_ignore_ascii_case("Microsoft.Web") && types == ["sites", "networkconfig"];
    if is_network_config {
        let site = id.parent().expect("two segments");
        return match method {
            Method::GET => Ok(Json(d.network_config(&site).await?)),
            Method::PUT => Ok(Json(d.connect(site, body).await?)),
            Method::DELETE => Ok(Json(d.disconnect(site).await?)),
            other => Err(not_allowed(&other, &path)),
        };
    }
    if super::children::array_of(&id).is_some() {
        return match method {
            Method::GET => Ok(Json(d.show_child(&id).await?)),
            Method::PUT => Ok(Json(d.put_child(id, body).await?)),
            Method::PATCH => Ok(Json(d.patch_child(id, body).await?)),
            // A subnet delete keeps its own rules (in use, left-behind links).
            Method::DELETE if super::children::array_of(&id) == Some("subnets") => {
                Ok(Json(d.delete(id).await?))
            }
            Method::DELETE => Ok(Json(d.delete_child(id).await?)),
            other => Err(not_allowed(&other, &path)),
        };
    }
    match method {
        Method::GET if is_deployment => Ok(Json(d.deployment_show(&id.to_string())?)),
        Method::DELETE if is_deployment => Ok(Json(d.deployment_delete(&id.to_string())?)),
        Method::GET => Ok(Json(d.show(&id).await?)),
        Method::DELETE => Ok(Json(d.delete(id).await?)),
        Method::PATCH => Ok(Json(d.patch(id, body).await?)),
        Method::PUT if is_deployment => Ok(Json(
            d.deploy(id.name(), deployment_request(&id, &body)?).await?,
        )),
        Method::PUT => Ok(Json(d.put_resource(id, body).await?)),
        other => Err(not_allowed(&other, &path)),
    }
}

fn not_allowed(method: &Method, path: &str) -> ApiError {
    AzureError::new(
        405,
        "MethodNotAllowed",
        format!("{method} is not supported on {path}"),
    )
    .into()
}

/// Serves the API on a Unix socket until `down` or a signal.
pub async fn serve(daemon: Arc<Daemon>) -> anyhow::Result<()> {
    use anyhow::Context;
    let socket = daemon.config.socket.clone();
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            anyhow::bail!("another daemon is listening on {}", socket.display());
        }
        std::fs::remove_file(&socket)?;
    }
    daemon.clone().initial_reconcile().await;
    let listener = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("binding {}", socket.display()))?;
    super::systemd::socket_access(&socket, daemon.config.socket_group.as_deref())?;
    tracing::info!(socket = %socket.display(), lab = %daemon.config.lab.name, "serving");
    if let Some(port) = daemon.config.metrics_port {
        // Loopback only: the metrics name the lab's resources.
        let tcp = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding the metrics port 127.0.0.1:{port}"))?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .with_state(daemon.clone());
        tracing::info!(port, "serving metrics on loopback");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(tcp, app).await {
                tracing::warn!("metrics listener: {e}");
            }
        });
    }
    tokio::spawn(daemon.clone().resync_loop());
    if let Some(rx) = daemon.take_bgp_events() {
        tokio::spawn(daemon.clone().bgp_loop(rx));
    }
    // SIGHUP (`systemctl reload`): reconcile now, as the resync loop does.
    let d = daemon.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            super::systemd::reloading();
            match d.resync().await {
                Ok(r) => tracing::info!(kernel_writes = r.kernel_writes, "reloaded (SIGHUP)"),
                Err(e) => tracing::warn!("reload: {e:#}"),
            }
            super::systemd::notify("READY=1");
        }
    });
    let d = daemon.clone();
    let shutdown = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = d.shutdown.notified() => {}
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        super::systemd::notify("STOPPING=1");
    };
    // The socket is bound and answers from here on: ready.
    super::systemd::notify("READY=1");
    axum::serve(
        listener,
        router(daemon).into_make_service_with_connect_info::<super::caller::Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// A deployment's body: ARM's `properties.template`, `parameters` and
/// `mode`, and what the lab's CLI adds under `properties.lab` (where the
/// template came from, the files beside it, its text).
pub(crate) fn deployment_request(
    id: &ResourceId,
    body: &Value,
) -> Result<DeploymentRequest, AzureError> {
    let props = body.get("properties").cloned().unwrap_or_default();
    let template = props.get("template").cloned().ok_or_else(|| {
        AzureError::bad_request(
            "InvalidRequestContent",
            "the deployment has no properties.template",
        )
    })?;
    let mode = match props.get("mode").and_then(Value::as_str) {
        None => DeploymentMode::Incremental,
        Some(m) if m.eq_ignore_ascii_case("incremental") => DeploymentMode::Incremental,
        Some(m) if m.eq_ignore_ascii_case("complete") => DeploymentMode::Complete,
        Some(m) => {
            return Err(AzureError::bad_request(
                "InvalidDeploymentMode",
                format!("The deployment mode '{m}' is not valid: use Incremental or Complete."),
            ))
        }
    };
    let lab = props.get("lab").cloned().unwrap_or_default();
    Ok(DeploymentRequest {
        subscription: id.subscription.clone(),
        resource_group: id.resource_group.clone(),
        template,
        parameters: deployment_parameters(props.get("parameters")),
        name: Some(id.name().to_string()),
        mode,
        template_uri: lab
            .get("templateUri")
            .and_then(Value::as_str)
            .map(str::to_string),
        linked_templates: lab
            .get("linkedTemplates")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        template_text: lab
            .get("templateText")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Default::default()
    })
}
