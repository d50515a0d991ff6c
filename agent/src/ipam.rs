//! Addresses: Azure's 5 reserved per subnet, one per plan instance from the
//! integration subnet, static or dynamic VM NICs, public IPs from the lab pool.
//! Deterministic: the same state always yields the same addresses.

use serde::{Deserialize, Serialize};

/// Every address handed out, persisted with the state so redeploys keep them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Allocations {}
