//! Network Watcher and the lab's own diagnostics (issue 13).
//!
//! Azure enables a Network Watcher per region as soon as a virtual network
//! exists there (`NetworkWatcherRG/NetworkWatcher_<region>`); its actions
//! (IP flow verify, next hop, connection troubleshoot, packet captures, flow
//! logs) and the lab's own `explain` and topology graph live in this room.
//!
//! Everything here is pure: it reads the desired state and observations
//! handed in by the caller. What touches the kernel (probes, captures,
//! traces, conntrack) lives in `dataplane/` or in supervised processes.

pub mod connectivity;
pub mod explain;
pub mod flow_log;
pub mod flow_verify;
pub mod graph;
pub mod packet_capture;
pub mod troubleshoot;
pub mod watcher;
