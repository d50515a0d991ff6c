//! Azure role-based access control, evaluated over the lab's state (seed,
//! "Permissions": integration needs `virtualNetworks/read`, `subnets/read` and
//! `subnets/join/action` "on the subnet or at a higher level"). Pure: who may
//! do what is a function of the state alone.

pub mod roles;

use crate::model::{AzureError, LabState, RoleAssignment, RoleDefinition, LAB_OWNER};

/// The actions regional integration needs on the subnet (seed, "Permissions").
pub const INTEGRATION_ACTIONS: [&str; 3] = [
    "Microsoft.Network/virtualNetworks/read",
    "Microsoft.Network/virtualNetworks/subnets/read",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
];

/// The lab's own operations (`/lab/*`), as actions of the lab's provider
/// `Lab.Emulator`, at the root scope `/`: reading the lab's status needs
/// what Reader has (`*/read`); reconciling and taking it down what
/// Contributor has (`*`). Azure has no twin: these follow its patterns.
pub const LAB_READ: &str = "Lab.Emulator/lab/read";
pub const LAB_RECONCILE: &str = "Lab.Emulator/lab/reconcile/action";
pub const LAB_DOWN: &str = "Lab.Emulator/lab/delete";
/// `exec` into an app's sandbox: what Kudu's console needs, write on the site.
pub const EXEC_APP: &str = "Microsoft.Web/sites/write";
/// `exec` into a VM: Azure's Run Command action.
pub const EXEC_VM: &str = "Microsoft.Compute/virtualMachines/runCommand/action";
/// `exec` on an internet host (a lab resource).
pub const EXEC_HOST: &str = "Lab.Emulator/internetHosts/write";
/// A subscription's settings (outbound SMTP).
pub const SUBSCRIPTION_SETTINGS_WRITE: &str = "Lab.Emulator/subscriptionSettings/write";

/// Writing role assignments and role definitions (Owner has it, Contributor not).
pub const ROLE_ASSIGNMENT_WRITE: &str = "Microsoft.Authorization/roleAssignments/write";
pub const ROLE_ASSIGNMENT_DELETE: &str = "Microsoft.Authorization/roleAssignments/delete";
pub const ROLE_DEFINITION_WRITE: &str = "Microsoft.Authorization/roleDefinitions/write";

fn norm(scope: &str) -> String {
    let s = scope.trim().trim_end_matches('/').to_ascii_lowercase();
    if s.is_empty() {
        "/".to_string()
    } else {
        s
    }
}

/// An assignment at `assigned` covers `target`: the same scope or one above it
/// (root `/`, subscription, resource group, resource, child resource).
pub fn scope_covers(assigned: &str, target: &str) -> bool {
    let (a, t) = (norm(assigned), norm(target));
    a == "/" || t == a || t.starts_with(&format!("{a}/"))
}

/// `principal` may perform `action` on `scope`. The lab owner is Owner at `/`.
pub fn allowed(state: &LabState, principal: &str, action: &str, scope: &str) -> bool {
    if principal.eq_ignore_ascii_case(LAB_OWNER) {
        return true;
    }
    let auth = &state.authorization;
    auth.role_assignments
        .values()
        .filter(|a| a.principal_id.eq_ignore_ascii_case(principal) && scope_covers(&a.scope, scope))
        .filter_map(|a| roles::resolve(&a.role_definition_id, &auth.role_definitions))
        .any(|r| roles::grants(&r, action))
}

/// 403 `AuthorizationFailed`, in ARM's words.
pub fn require(
    state: &LabState,
    principal: &str,
    action: &str,
    scope: &str,
) -> Result<(), AzureError> {
    if allowed(state, principal, action, scope) {
        return Ok(());
    }
    Err(AzureError::new(
        403,
        "AuthorizationFailed",
        format!(
            "The client '{principal}' with object id '{principal}' does not have authorization to perform action \
             '{action}' over scope '{scope}' or the scope is invalid. Ask an Owner to assign you a role that \
             grants it at that scope or above (`Microsoft.Authorization/roleAssignments`)."
        ),
    ))
}

/// 403 `LinkedAuthorizationFailed`: `principal` may write `scope` but lacks
/// some of `actions` on the `linked` scope (ARM's message shape).
pub fn require_linked(
    state: &LabState,
    principal: &str,
    action: &str,
    scope: &str,
    actions: &[&str],
    linked: &str,
) -> Result<(), AzureError> {
    let missing: Vec<&str> = actions
        .iter()
        .copied()
        .filter(|a| !allowed(state, principal, a, linked))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(AzureError::new(
        403,
        "LinkedAuthorizationFailed",
        format!(
            "The client '{principal}' with object id '{principal}' has permission to perform action '{action}' on \
             scope '{scope}'; however, it does not have permission to perform action(s) '{}' on the linked scope(s) \
             '{linked}' or the linked scope(s) are invalid. Virtual network integration needs \
             Microsoft.Network/virtualNetworks/read, .../subnets/read and .../subnets/join/action on the subnet or \
             at a higher level (e.g. the Network Contributor role on the virtual network).",
            missing.join(",")
        ),
    ))
}

/// Add a principal (a user, group or service principal of the lab).
pub fn add_principal(state: &LabState, name: &str) -> Result<LabState, AzureError> {
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(AzureError::bad_request(
            "InvalidPrincipalName",
            format!("'{name}' is not a valid principal name: use a non-empty name without spaces, e.g. alice."),
        ));
    }
    let mut next = state.clone();
    next.authorization.principals.insert(name.to_string());
    Ok(next)
}

/// Define (or replace) a custom role. Needs `roleDefinitions/write` at `/`.
pub fn define_role(
    state: &LabState,
    role: RoleDefinition,
    principal: &str,
) -> Result<LabState, AzureError> {
    require(state, principal, ROLE_DEFINITION_WRITE, "/")?;
    if roles::BUILT_IN
        .iter()
        .any(|b| b.name.eq_ignore_ascii_case(&role.name))
        || role.actions.is_empty()
    {
        return Err(AzureError::bad_request(
            "InvalidRoleDefinition",
            format!(
                "Role '{}' cannot be defined: a custom role needs a name that is not a built-in role's and at least \
                 one action (e.g. \"Microsoft.Network/virtualNetworks/subnets/join/action\").",
                role.name
            ),
        ));
    }
    let mut next = state.clone();
    next.authorization
        .role_definitions
        .insert(role.name.to_ascii_lowercase(), role);
    Ok(next)
}

/// Create (or replace) a role assignment. Needs `roleAssignments/write` on its scope.
pub fn assign_role(
    state: &LabState,
    assignment: RoleAssignment,
    principal: &str,
) -> Result<LabState, AzureError> {
    require(state, principal, ROLE_ASSIGNMENT_WRITE, &assignment.scope)?;
    let known = assignment.principal_id.eq_ignore_ascii_case(LAB_OWNER)
        || state
            .authorization
            .principals
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&assignment.principal_id));
    if !known {
        return Err(AzureError::bad_request(
            "PrincipalNotFound",
            format!(
                "Principal '{}' does not exist in the lab. Add it first (principals), then assign the role.",
                assignment.principal_id
            ),
        ));
    }
    if roles::resolve(
        &assignment.role_definition_id,
        &state.authorization.role_definitions,
    )
    .is_none()
    {
        return Err(AzureError::bad_request(
            "RoleDefinitionDoesNotExist",
            format!(
                "The role definition '{}' of role assignment '{}' does not exist. Use a built-in role (Owner, \
                 Contributor, Reader, Network Contributor, Website Contributor) or define a custom role first.",
                assignment.role_definition_id, assignment.name
            ),
        ));
    }
    let mut next = state.clone();
    next.authorization
        .role_assignments
        .insert(assignment.name.to_ascii_lowercase(), assignment);
    Ok(next)
}

/// Delete a role assignment by name. Needs `roleAssignments/delete` on its scope.
pub fn remove_assignment(
    state: &LabState,
    name: &str,
    principal: &str,
) -> Result<LabState, AzureError> {
    let key = name.to_ascii_lowercase();
    let a = state
        .authorization
        .role_assignments
        .get(&key)
        .ok_or_else(|| {
            AzureError::not_found(
                "RoleAssignmentNotFound",
                format!("The role assignment '{name}' was not found."),
            )
        })?;
    require(state, principal, ROLE_ASSIGNMENT_DELETE, &a.scope)?;
    let mut next = state.clone();
    next.authorization.role_assignments.remove(&key);
    Ok(next)
}

#[cfg(test)]
mod tests;
