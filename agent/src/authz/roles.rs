//! Built-in roles and Azure's action wildcards.

use crate::model::RoleDefinition;

/// A built-in role: its name, its GUID, its actions and not-actions.
pub struct BuiltIn {
    pub name: &'static str,
    pub id: &'static str,
    pub actions: &'static [&'static str],
    pub not_actions: &'static [&'static str],
}

/// The built-in roles the lab knows (Azure's names and ids).
pub const BUILT_IN: [BuiltIn; 5] = [
    BuiltIn {
        name: "Owner",
        id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        actions: &["*"],
        not_actions: &[],
    },
    BuiltIn {
        name: "Contributor",
        id: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
        ],
    },
    BuiltIn {
        name: "Reader",
        id: "acdd72a7-3c48-4d44-b7d3-d5db6bfe7f44",
        actions: &["*/read"],
        not_actions: &[],
    },
    BuiltIn {
        name: "Network Contributor",
        id: "4d97b98b-1d4f-4787-a291-c67834d212e7",
        actions: &["Microsoft.Network/*"],
        not_actions: &[],
    },
    BuiltIn {
        name: "Website Contributor",
        id: "de139f84-1756-47ae-9be6-808fbbe84772",
        actions: &["Microsoft.Web/*"],
        not_actions: &[],
    },
];

/// The role a `roleDefinitionId` names: a built-in by name or GUID (also as a
/// full `/…/roleDefinitions/<guid>` id), or a custom role by name.
pub fn resolve(
    role: &str,
    custom: &std::collections::BTreeMap<String, RoleDefinition>,
) -> Option<RoleDefinition> {
    let key = role.rsplit('/').next().unwrap_or(role);
    if let Some(b) = BUILT_IN
        .iter()
        .find(|b| b.name.eq_ignore_ascii_case(role) || b.id.eq_ignore_ascii_case(key))
    {
        return Some(RoleDefinition {
            name: b.name.to_string(),
            actions: b.actions.iter().map(|a| a.to_string()).collect(),
            not_actions: b.not_actions.iter().map(|a| a.to_string()).collect(),
        });
    }
    custom.get(&role.to_ascii_lowercase()).cloned()
}

/// Azure's action match: case-insensitive, `*` matches any run of characters.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    glob(
        pattern.to_ascii_lowercase().as_bytes(),
        action.to_ascii_lowercase().as_bytes(),
    )
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// The role grants `action`: one of its actions matches and none of its not-actions.
pub fn grants(role: &RoleDefinition, action: &str) -> bool {
    role.actions.iter().any(|a| action_matches(a, action))
        && !role.not_actions.iter().any(|a| action_matches(a, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_as_azure() {
        assert!(action_matches(
            "*",
            "Microsoft.Network/virtualNetworks/subnets/join/action"
        ));
        assert!(action_matches(
            "Microsoft.Network/*",
            "microsoft.network/virtualNetworks/read"
        ));
        assert!(!action_matches(
            "Microsoft.Network/*",
            "Microsoft.Web/sites/write"
        ));
        assert!(action_matches(
            "*/read",
            "Microsoft.Network/virtualNetworks/subnets/read"
        ));
        assert!(!action_matches(
            "*/read",
            "Microsoft.Network/virtualNetworks/subnets/join/action"
        ));
        let custom = Default::default();
        let contributor = resolve("Contributor", &custom).unwrap();
        assert!(grants(&contributor, "Microsoft.Web/sites/write"));
        assert!(!grants(
            &contributor,
            "Microsoft.Authorization/roleAssignments/write"
        ));
        let by_id = resolve(
            "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3c48-4d44-b7d3-d5db6bfe7f44",
            &custom,
        )
        .unwrap();
        assert_eq!(by_id.name, "Reader");
    }
}
