//! REST over a Unix socket, with ARM-shaped paths.
//!
//! - `PUT  /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Resources/deployments/{name}`:
//!   deploy a template (incremental), body `{"properties": {"template": ..., "parameters": {"p": {"value": ...}}}}`.
//! - `GET|DELETE /subscriptions/...` (any resource id): show or delete a resource.
//! - `GET /resources[?resourceGroup=RG]`: list.
//! - `GET /lab/status`, `POST /lab/reconcile`, `POST /lab/down`, `GET /lab/exec?app=&instance=|vm=|host=`,
//!   `GET /lab/ca` (the lab CA's certificate file).
//!
//! Errors use ARM's envelope `{"error": {"code", "message"}}`.

mod admin;
mod bgp;
pub mod caller;
pub(crate) mod children;
pub mod client;
pub(crate) mod daemon;
mod deployments;
pub mod etag;
mod flow_logs;
mod metrics;
mod network;
pub(crate) mod operations;
mod packet_captures;
mod platform;
pub(crate) mod routes;
mod systemd;
mod watcher;
pub use routes::serve;

pub use daemon::{Daemon, DaemonConfig};
