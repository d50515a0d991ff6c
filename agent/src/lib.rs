//! vnet-agent: Azure App Service regional virtual network integration,
//! emulated on a real Linux kernel (see `../shared/seed/overview-vnet-integration.md`).
//!
//! `plan` is pure (no syscalls, no clock, no randomness); `dataplane` holds the
//! syscalls. Everything "what would happen" is answered by `plan`.

pub mod api;
pub mod authz;
pub mod bgp;
pub mod cli;
pub mod dataplane;
pub mod diag;
pub mod dns;
pub mod dnsd;
pub mod frontend;
#[doc(hidden)]
pub mod fuzzing;
pub mod ipam;
pub mod model;
pub mod plan;
pub mod platform;
pub mod services;
pub mod store;
pub mod supervisor;
pub mod template;
pub mod validate;
