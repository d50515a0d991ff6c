//! BGP between virtual network gateways and on-premises routers, spoken by
//! real BIRD 2 daemons (docs/datapath.md, "Gateways and on-premises sites").
//!
//! - `config`: the speaker's BIRD configuration, rendered from plain data (pure);
//! - `speaker`: the supervised process that runs BIRD in a namespace and
//!   reloads it when the daemon rewrites its configuration;
//! - `control`: BIRD's control socket, for what a gateway really learned.

pub mod config;
pub mod control;
pub mod speaker;

pub use config::{Announcement, Session, Speaker};
