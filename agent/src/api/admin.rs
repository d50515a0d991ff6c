//! Subscription-level operations: provider registration, `moveResources`,
//! principals and role assignments (the lab's RBAC).

use serde_json::{json, Value};

use super::daemon::{ApiError, Daemon};
use crate::authz;
use crate::model::{AzureError, ResourceId, RoleAssignment};
use crate::validate;

fn assignment_json(a: &RoleAssignment) -> Value {
    json!({
        "id": format!("{}/providers/Microsoft.Authorization/roleAssignments/{}", a.scope, a.name),
        "name": a.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": { "principalId": a.principal_id, "roleDefinitionId": a.role_definition_id, "scope": a.scope },
    })
}

impl Daemon {
    /// `POST /subscriptions/S/providers/NS/register` (`az provider register`).
    pub async fn register_provider(
        &self,
        subscription: &str,
        namespace: &str,
    ) -> Result<Value, ApiError> {
        self.commit_and_apply(|s| Ok(validate::register_provider(s, subscription, namespace)))
            .await?;
        Ok(json!({
            "id": format!("/subscriptions/{subscription}/providers/{namespace}"),
            "namespace": namespace,
            "registrationState": "Registered",
        }))
    }

    /// `POST /subscriptions/S/resourceGroups/RG/moveResources` (`az resource move`).
    pub async fn move_resources(
        &self,
        _sub: &str,
        _rg: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let ids: Vec<ResourceId> = body
            .get("resources")
            .and_then(|v| v.as_array())
            .ok_or_else(|| {
                AzureError::bad_request(
                    "InvalidRequestContent",
                    "resources (an array of ids) is required",
                )
            })?
            .iter()
            .map(|v| v.as_str().unwrap_or_default().parse())
            .collect::<Result<_, _>>()?;
        let target = body
            .get("targetResourceGroup")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let parts: Vec<&str> = target.trim_matches('/').split('/').collect();
        let (sub, rg) = match parts.as_slice() {
            [s, sub, r, rg] if s.eq_ignore_ascii_case("subscriptions") && r.eq_ignore_ascii_case("resourceGroups") => {
                (sub.to_string(), rg.to_string())
            }
            _ => {
                return Err(AzureError::bad_request(
                    "InvalidTargetResourceGroup",
                    format!("targetResourceGroup '{target}' must be /subscriptions/<id>/resourceGroups/<name>"),
                )
                .into())
            }
        };
        let lab = self.config.lab.clone();
        let ctx = self.context();
        self.commit_and_apply(|s| validate::move_resources(s, &ids, &sub, &rg, &lab, &ctx))
            .await?;
        Ok(
            json!({ "moved": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(), "targetResourceGroup": target }),
        )
    }

    /// `PUT /lab/principals/NAME` (`vnet-agent ad user create`).
    pub async fn put_principal(&self, name: &str) -> Result<Value, ApiError> {
        self.commit_and_apply(|s| authz::add_principal(s, name))
            .await?;
        Ok(json!({ "id": name, "displayName": name }))
    }

    pub async fn list_principals(&self) -> Value {
        let state = self.snapshot();
        json!(state.authorization.principals)
    }

    /// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/NAME`.
    pub async fn put_role_assignment(
        &self,
        scope: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let prop = |k: &str| {
            body.pointer(&format!("/properties/{k}"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        };
        let assignment = RoleAssignment {
            name: name.to_string(),
            principal_id: prop("principalId").to_string(),
            role_definition_id: prop("roleDefinitionId").to_string(),
            scope: scope.to_string(),
        };
        let principal = self.context().principal;
        let json = assignment_json(&assignment);
        self.commit_and_apply(|s| authz::assign_role(s, assignment, &principal))
            .await?;
        Ok(json)
    }

    pub async fn delete_role_assignment(
        &self,
        _scope: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let principal = self.context().principal;
        self.commit_and_apply(|s| authz::remove_assignment(s, name, &principal))
            .await?;
        Ok(json!({ "name": name, "deleted": true }))
    }

    pub async fn get_role_assignment(&self, _scope: &str, name: &str) -> Result<Value, ApiError> {
        let state = self.snapshot();
        let a = state
            .authorization
            .role_assignments
            .get(&name.to_ascii_lowercase())
            .ok_or_else(|| {
                AzureError::not_found(
                    "RoleAssignmentNotFound",
                    format!("The role assignment '{name}' was not found."),
                )
            })?;
        Ok(assignment_json(a))
    }

    /// `az role assignment list [--assignee]`.
    pub async fn list_role_assignments(&self, assignee: Option<&str>) -> Value {
        let state = self.snapshot();
        let v: Vec<Value> = state
            .authorization
            .role_assignments
            .values()
            .filter(|a| assignee.is_none_or(|p| a.principal_id.eq_ignore_ascii_case(p)))
            .map(assignment_json)
            .collect();
        Value::Array(v)
    }
}

impl Daemon {
    /// Lab only: a platform upgrade of a plan's workers. Make-before-break, as
    /// Azure's: every instance gets a new address while the old ones are held,
    /// then the old ones cool down (seed: "Platform upgrades need free IP
    /// addresses"). The apps restart with their new WEBSITE_PRIVATE_IP.
    pub async fn platform_upgrade(&self, plan: ResourceId) -> Result<Value, ApiError> {
        let lab = self.config.lab.clone();
        let ctx = self.context();
        let (state, report) = self
            .commit_and_apply(|s| {
                authz::require(
                    s,
                    &ctx.principal,
                    "Microsoft.Web/serverfarms/write",
                    &plan.to_string(),
                )?;
                crate::ipam::platform_upgrade(s, &plan, &lab, ctx.now)
            })
            .await?;
        let mut view = crate::plan::view::resource_view(&state, &self.config.lab, &plan)?;
        if let Some(o) = view.as_object_mut() {
            o.insert("reconcile".into(), json!(report));
        }
        Ok(view)
    }
}
