use super::*;
use crate::model::{LabState, RoleAssignment, RoleDefinition};

const SUB: &str = "/subscriptions/s1";
const VNET: &str =
    "/subscriptions/s1/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v";

fn assignment(name: &str, principal: &str, role: &str, scope: &str) -> RoleAssignment {
    RoleAssignment {
        name: name.into(),
        principal_id: principal.into(),
        role_definition_id: role.into(),
        scope: scope.into(),
    }
}

fn lab_with(assignments: &[RoleAssignment]) -> LabState {
    let mut s = add_principal(&LabState::default(), "alice").unwrap();
    for a in assignments {
        s = assign_role(&s, a.clone(), LAB_OWNER).unwrap();
    }
    s
}

#[test]
fn owner_is_owner_at_root() {
    assert!(allowed(
        &LabState::default(),
        LAB_OWNER,
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        "/"
    ));
    assert!(!allowed(
        &LabState::default(),
        "alice",
        "Microsoft.Network/virtualNetworks/read",
        VNET
    ));
}

#[test]
fn scopes_cover_below_not_beside() {
    assert!(scope_covers("/", VNET));
    assert!(scope_covers(SUB, VNET));
    assert!(scope_covers("/subscriptions/S1/resourceGroups/NET", VNET));
    assert!(scope_covers(VNET, &format!("{VNET}/subnets/int")));
    assert!(!scope_covers(&format!("{VNET}/subnets/int"), VNET));
    assert!(!scope_covers("/subscriptions/s1/resourceGroups/ne", VNET));
    assert!(!scope_covers("/subscriptions/s2", VNET));
}

#[test]
fn built_in_and_custom_roles() {
    let s = lab_with(&[assignment("a1", "alice", "Reader", SUB)]);
    assert!(allowed(
        &s,
        "alice",
        "Microsoft.Network/virtualNetworks/subnets/read",
        VNET
    ));
    assert!(!allowed(
        &s,
        "alice",
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        VNET
    ));
    let s = lab_with(&[assignment("a1", "alice", "Network Contributor", VNET)]);
    assert!(allowed(
        &s,
        "alice",
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        &format!("{VNET}/subnets/int")
    ));
    assert!(!allowed(&s, "alice", "Microsoft.Web/sites/write", SUB));
    // A custom role with just the three integration actions.
    let role = RoleDefinition {
        name: "Subnet Joiner".into(),
        actions: INTEGRATION_ACTIONS.iter().map(|a| a.to_string()).collect(),
        not_actions: vec![],
    };
    let s = define_role(&lab_with(&[]), role, LAB_OWNER).unwrap();
    let s = assign_role(
        &s,
        assignment("a2", "alice", "subnet joiner", VNET),
        LAB_OWNER,
    )
    .unwrap();
    assert!(INTEGRATION_ACTIONS
        .iter()
        .all(|a| allowed(&s, "alice", a, VNET)));
    assert!(!allowed(
        &s,
        "alice",
        "Microsoft.Network/virtualNetworks/write",
        VNET
    ));
}

#[test]
fn managing_assignments_needs_authorization_write() {
    let s = lab_with(&[assignment("a1", "alice", "Contributor", SUB)]);
    let e = assign_role(&s, assignment("a2", "alice", "Owner", SUB), "alice").unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("AuthorizationFailed", 403));
    assert!(
        e.message.contains("'alice'") && e.message.contains("roleAssignments/write"),
        "{}",
        e.message
    );
    let e = assign_role(&s, assignment("a3", "bob", "Reader", SUB), LAB_OWNER).unwrap_err();
    assert_eq!(e.code, "PrincipalNotFound");
    let e = assign_role(&s, assignment("a3", "alice", "Janitor", SUB), LAB_OWNER).unwrap_err();
    assert_eq!(e.code, "RoleDefinitionDoesNotExist");
    let s = remove_assignment(&s, "a1", LAB_OWNER).unwrap();
    assert!(!allowed(&s, "alice", "Microsoft.Web/sites/write", SUB));
}

#[test]
fn malformed_principals_roles_and_assignments() {
    assert_eq!(
        add_principal(&LabState::default(), "a b").unwrap_err().code,
        "InvalidPrincipalName"
    );
    let role = |name: &str, actions: Vec<String>| RoleDefinition {
        name: name.into(),
        actions,
        not_actions: vec![],
    };
    let s = LabState::default();
    assert_eq!(
        define_role(&s, role("Owner", vec!["*".into()]), LAB_OWNER)
            .unwrap_err()
            .code,
        "InvalidRoleDefinition"
    );
    assert_eq!(
        define_role(&s, role("Empty", vec![]), LAB_OWNER)
            .unwrap_err()
            .code,
        "InvalidRoleDefinition"
    );
    let e = remove_assignment(&s, "nope", LAB_OWNER).unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("RoleAssignmentNotFound", 404));
}

/// Issue 10, item 0: the lab's own operations need a role like resource
/// operations. A Reader at the root reads the lab's status but can't
/// reconcile or take it down; a Contributor can, but can't create users
/// (role-assignment write); `exec` needs write on the site, Run Command on a
/// VM.
#[test]
fn lab_operations_need_a_role_at_the_right_scope() {
    let s = lab_with(&[assignment("a1", "alice", "Reader", "/")]);
    assert!(allowed(&s, "alice", LAB_READ, "/"));
    for action in [LAB_DOWN, LAB_RECONCILE, ROLE_ASSIGNMENT_WRITE] {
        assert!(!allowed(&s, "alice", action, "/"), "{action}");
    }
    let s = add_principal(&s, "bob").unwrap();
    let s = assign_role(&s, assignment("a2", "bob", "Contributor", "/"), LAB_OWNER).unwrap();
    assert!(allowed(&s, "bob", LAB_DOWN, "/") && allowed(&s, "bob", LAB_RECONCILE, "/"));
    assert!(!allowed(&s, "bob", ROLE_ASSIGNMENT_WRITE, "/"));
    let site = "/subscriptions/s1/resourceGroups/web/providers/Microsoft.Web/sites/w1";
    let vm = "/subscriptions/s1/resourceGroups/web/providers/Microsoft.Compute/virtualMachines/vm1";
    let s = add_principal(&s, "carol").unwrap();
    let s = assign_role(
        &s,
        assignment(
            "a3",
            "carol",
            "Website Contributor",
            "/subscriptions/s1/resourceGroups/web",
        ),
        LAB_OWNER,
    )
    .unwrap();
    assert!(allowed(&s, "carol", EXEC_APP, site));
    assert!(!allowed(&s, "carol", EXEC_VM, vm));
    assert!(!allowed(&s, "carol", LAB_DOWN, "/"));
    assert!(!allowed(&s, "nobody", LAB_READ, "/"));
}
