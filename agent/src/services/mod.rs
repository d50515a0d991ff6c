//! The emulated Azure services' host: one process per service namespace
//! (`vnet-agent service-host --config FILE`, supervised like app processes)
//! that answers blob (HTTP/HTTPS), file (SMB 445), key vault and registry
//! requests as the contract in notes/service-api.md says, judging each
//! connection by its source address and the path it came by (public, service
//! endpoint, private endpoint) with the resource's network rules.
//!
//! `config` is what the agent writes for a host (pure data, built by
//! `plan/services.rs`), `acl` the firewall decision (pure), `ca` the lab's
//! certificate authority, `host` the server itself.

pub mod acl;
pub mod ca;
pub mod config;
pub mod host;
pub mod watch;
