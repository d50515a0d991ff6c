//! Principals, role definitions and role assignments: the lab's Azure RBAC
//! data (seed, "Permissions"). Evaluation lives in `crate::authz`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The lab's RBAC state, persisted with the resources.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// Principal names besides the implicit lab owner.
    #[serde(default)]
    pub principals: BTreeSet<String>,
    /// Custom role definitions by lower-cased name.
    #[serde(default)]
    pub role_definitions: BTreeMap<String, RoleDefinition>,
    /// Role assignments by lower-cased name (ARM names them with a GUID; any name will do).
    #[serde(default)]
    pub role_assignments: BTreeMap<String, RoleAssignment>,
}

/// `Microsoft.Authorization/roleDefinitions`: `actions` minus `notActions`,
/// with Azure's wildcards (`*`, `Microsoft.Network/*`, `*/read`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    pub name: String,
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
}

/// `Microsoft.Authorization/roleAssignments`: `principalId` holds
/// `roleDefinitionId` (a built-in role name or id, or a custom role name) at
/// `scope` (`/`, `/subscriptions/X`, a resource group, a resource or subnet id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub name: String,
    pub principal_id: String,
    pub role_definition_id: String,
    pub scope: String,
}
