//! Azure's naming rules, checked on every resource a request brings before
//! anything is committed ("Naming rules and restrictions for Azure
//! resources", MicrosoftDocs/azure-docs
//! `articles/azure-resource-manager/management/resource-name-rules.md`).
//!
//! A name reaches namespace names, file names and nft JSON; one that breaks a
//! rule (300 characters, a NUL) used to be committed and then fail every
//! apply. Every name is checked here, with the type's own rule where the lab
//! knows the type and a safe floor for any other: no control characters, no
//! `/ \ # ? %`, not `.` or `..`, at most 260 characters.
//!
//! Storage accounts, vaults and registries keep their own service errors
//! (`AccountNameInvalid`, `VaultNameNotValid`, `validate/services.rs`), NSG
//! rules and private DNS zones theirs.

use crate::model::{AzureError, GenericResource, ResourceId};

/// Which characters a name may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chars {
    /// Letters, digits, `_`, `.`, `-` (Microsoft.Network's "word characters
    /// or '.', '-', '_'").
    Word,
    /// Letters, digits and hyphens.
    AlnumHyphen,
    /// Anything but these (besides control characters).
    Not(&'static str),
}

/// One type's rule, as the naming-rules table states it.
#[derive(Debug, Clone, Copy)]
struct Rule {
    min: usize,
    max: usize,
    chars: Chars,
    /// Start with a letter or digit.
    start_alnum: bool,
    /// End with a letter or digit (or `_` when `end_underscore`).
    end_alnum: bool,
    end_underscore: bool,
    /// What may not end the name (besides `end_alnum`).
    not_end: &'static str,
    /// What may not start it.
    not_start: &'static str,
}

const FLOOR: Rule = Rule {
    min: 1,
    max: 260,
    chars: Chars::Not("/\\#?%"),
    start_alnum: false,
    end_alnum: false,
    end_underscore: false,
    not_end: "",
    not_start: "",
};

/// Microsoft.Network's rule for most of its types (1-80, word characters,
/// `.`, `-`, `_`; start with a word character, end with one or `_`).
const NETWORK: Rule = Rule {
    min: 1,
    max: 80,
    chars: Chars::Word,
    start_alnum: true,
    end_alnum: true,
    end_underscore: true,
    not_end: "",
    not_start: "",
};

/// The rule of a resource (or child) type, by its type path after the
/// provider namespace, lower-cased: `virtualnetworks/subnets`.
fn rule_for(namespace: &str, type_path: &str) -> Option<Rule> {
    let ns = namespace.to_ascii_lowercase();
    Some(match (ns.as_str(), type_path) {
        // The naming-rules page says 2-64 for virtual networks; the
        // service's own error (`InvalidResourceName`, "The name can be up to
        // 80 characters long") is the one users meet, and it accepts 1.
        (
            "microsoft.network",
            "virtualnetworks"
            | "virtualnetworks/subnets"
            | "virtualnetworks/virtualnetworkpeerings"
            | "networksecuritygroups"
            | "applicationsecuritygroups"
            | "routetables"
            | "routetables/routes"
            | "natgateways"
            | "publicipaddresses"
            | "publicipprefixes"
            | "networkinterfaces"
            | "privateendpoints"
            | "privateendpoints/privatednszonegroups"
            | "virtualnetworkgateways"
            | "localnetworkgateways"
            | "connections",
        ) => NETWORK,
        ("microsoft.web", "serverfarms") => Rule {
            min: 1,
            max: 40,
            chars: Chars::AlnumHyphen,
            ..FLOOR
        },
        ("microsoft.web", "sites") => Rule {
            min: 2,
            max: 60,
            chars: Chars::AlnumHyphen,
            not_start: "-",
            not_end: "-",
            ..FLOOR
        },
        ("microsoft.web", "sites/slots") => Rule {
            min: 2,
            max: 59,
            chars: Chars::AlnumHyphen,
            ..FLOOR
        },
        ("microsoft.compute", "virtualmachines") => Rule {
            min: 1,
            max: 64,
            chars: Chars::Not("\\/\"[]:|<>+=;,?*@&#%"),
            not_start: "_",
            not_end: ".-",
            ..FLOOR
        },
        ("lab.emulator", "internethosts") => NETWORK,
        _ => return None,
    })
}

fn describe(r: &Rule) -> String {
    let chars = match r.chars {
        Chars::Word => "letters, digits, '.', '-' and '_'".to_string(),
        Chars::AlnumHyphen => "letters, digits and hyphens".to_string(),
        Chars::Not(bad) => format!("any characters but control characters and {bad}"),
    };
    let mut s = format!("{}-{} characters, {chars}", r.min, r.max);
    if r.start_alnum {
        s.push_str("; it must begin with a letter or digit");
    }
    if r.end_alnum {
        s.push_str(if r.end_underscore {
            "; it must end with a letter, digit or '_'"
        } else {
            "; it must end with a letter or digit"
        });
    }
    if !r.not_start.is_empty() {
        s.push_str(&format!("; it can't start with {}", r.not_start));
    }
    if !r.not_end.is_empty() {
        s.push_str(&format!("; it can't end with any of {}", r.not_end));
    }
    s
}

/// What is wrong with `name` under `r`, or `None`.
fn problem(name: &str, r: &Rule) -> Option<String> {
    let len = name.chars().count();
    if len < r.min || len > r.max {
        return Some(format!("it has {len} characters"));
    }
    if name == "." || name == ".." {
        return Some("'.' and '..' are not names".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Some(format!(
            "it contains the control character U+{:04X}",
            c as u32
        ));
    }
    let allowed = |c: char| match r.chars {
        Chars::Word => c.is_alphanumeric() || "._-".contains(c),
        Chars::AlnumHyphen => c.is_ascii_alphanumeric() || c == '-',
        Chars::Not(bad) => !bad.contains(c) && !FLOOR_BAD.contains(c),
    };
    if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        return Some(format!("it contains '{c}'"));
    }
    let (first, last) = (name.chars().next()?, name.chars().last()?);
    if (r.start_alnum && !first.is_alphanumeric()) || r.not_start.contains(first) {
        return Some(format!("it begins with '{first}'"));
    }
    let end_ok = last.is_alphanumeric() || (r.end_underscore && last == '_');
    if (r.end_alnum && !end_ok) || r.not_end.contains(last) {
        return Some(format!("it ends with '{last}'"));
    }
    None
}

/// Characters no name may hold: they break ARM's URL parsing (`#`, `?`,
/// `%`) or a path.
const FLOOR_BAD: &str = "/\\#?%";

/// `InvalidResourceName`, in Microsoft.Network's words for its types.
fn invalid_name(type_: &str, name: &str, r: &Rule, why: &str) -> AzureError {
    let shown: String = name
        .chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let shown = if name.chars().count() > 100 {
        format!("{shown}...")
    } else {
        shown
    };
    AzureError::bad_request(
        "InvalidResourceName",
        format!(
            "Resource name {shown} is invalid ({type_}: {why}). The name must have {}.",
            describe(r)
        ),
    )
}

/// `InvalidResourceGroup`, as ARM answers a bad name ("The provided resource
/// group name '...' has these invalid characters: '...'. The name can only
/// be a letter, digit, '-', '.', '(', ')' or '_'.", quoted in
/// Azure/azure-cli#14481); 1-90 characters, not ending in a period.
pub(crate) fn check_resource_group(name: &str) -> Result<(), AzureError> {
    let bad: String = name
        .chars()
        .filter(|c| !(c.is_alphanumeric() || "-._()".contains(*c)))
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let len = name.chars().count();
    let why = if !bad.is_empty() {
        format!("has these invalid characters: '{bad}'")
    } else if !(1..=90).contains(&len) {
        format!("has {len} characters; it must have 1-90")
    } else if name.ends_with('.') {
        "ends with a period".to_string()
    } else {
        return Ok(());
    };
    let shown: String = name.chars().take(100).filter(|c| !c.is_control()).collect();
    Err(AzureError::bad_request(
        "InvalidResourceGroup",
        format!(
            "The provided resource group name '{shown}' {why}. The name can only be a letter, digit, '-', '.', \
             '(', ')' or '_', up to 90 characters, and can't end with a period."
        ),
    ))
}

/// Whole names Azure reserves for resources with a public endpoint (an
/// FQDN): "Resolve errors for reserved resource names"
/// (MicrosoftDocs/azure-docs `articles/azure-resource-manager/templates/error-reserved-resource-name.md`).
const RESERVED: [&str; 38] = [
    "ACCESS",
    "APP_CODE",
    "APP_THEMES",
    "APP_DATA",
    "APP_GLOBALRESOURCES",
    "APP_LOCALRESOURCES",
    "APP_WEBREFERENCES",
    "APP_BROWSERS",
    "AZURE",
    "BING",
    "BIZSPARK",
    "BIZTALK",
    "CORTANA",
    "DIRECTX",
    "DOTNET",
    "DYNAMICS",
    "EXCEL",
    "EXCHANGE",
    "FOREFRONT",
    "GROOVE",
    "HOLOLENS",
    "HYPERV",
    "KINECT",
    "LYNC",
    "MSDN",
    "O365",
    "OFFICE",
    "OFFICE365",
    "ONEDRIVE",
    "ONENOTE",
    "OUTLOOK",
    "POWERPOINT",
    "SHAREPOINT",
    "SKYPE",
    "VISIO",
    "VISUALSTUDIO",
    "WEB.CONFIG",
    "XBOX",
];
/// Not allowed anywhere in such a name.
const RESERVED_ANYWHERE: [&str; 2] = ["MICROSOFT", "WINDOWS"];
/// Not allowed at its start.
const RESERVED_START: &str = "LOGIN";

/// Types whose names become public host names (`NAME.azurewebsites.net`,
/// `NAME.blob.core.windows.net`, ...): the reserved words apply.
fn has_public_endpoint(namespace: &str, type_path: &str) -> bool {
    matches!(
        (namespace.to_ascii_lowercase().as_str(), type_path),
        ("microsoft.web", "sites" | "sites/slots")
            | ("microsoft.storage", "storageaccounts")
            | ("microsoft.keyvault", "vaults")
            | ("microsoft.containerregistry", "registries")
    )
}

/// `ReservedResourceName`, in ARM's words.
fn reserved(name: &str) -> Option<AzureError> {
    let upper = name.to_ascii_uppercase();
    let hit = RESERVED.contains(&upper.as_str())
        || RESERVED_ANYWHERE.iter().any(|w| upper.contains(w))
        || upper.starts_with(RESERVED_START);
    hit.then(|| {
        AzureError::bad_request(
            "ReservedResourceName",
            format!(
                "The resource name {name} or a part of the name is a trademarked or reserved word."
            ),
        )
    })
}

/// Every name in `id`: its resource group and each segment, by the rule of
/// the type path that segment ends.
pub(crate) fn check_id(id: &ResourceId) -> Result<(), AzureError> {
    check_resource_group(&id.resource_group)?;
    let mut path = String::new();
    let mut full_type = id.namespace.clone();
    for (type_, name) in &id.segments {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&type_.to_ascii_lowercase());
        full_type = format!("{full_type}/{type_}");
        let rule = rule_for(&id.namespace, &path).unwrap_or(FLOOR);
        if let Some(why) = problem(name, &rule) {
            return Err(invalid_name(&full_type, name, &rule, &why));
        }
        if has_public_endpoint(&id.namespace, &path) {
            if let Some(e) = reserved(name) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// A resource of a request: its id, and the children it declares inline
/// (a VNet's `subnets`, a route table's `routes`), which become ids of
/// their own.
pub(crate) fn check_resource(res: &GenericResource) -> Result<(), AzureError> {
    check_id(&res.id)?;
    for (list, child) in [
        ("subnets", "subnets"),
        ("routes", "routes"),
        ("virtualNetworkPeerings", "virtualNetworkPeerings"),
    ] {
        let items = res
            .properties
            .get(list)
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten();
        for item in items {
            if let Some(name) = item.get("name").and_then(serde_json::Value::as_str) {
                check_id(&res.id.child(child, name))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(name: &str) -> ResourceId {
        ResourceId::new("s", "rg", "Microsoft.Web", "sites", name)
    }

    #[test]
    fn poison_names_are_refused_before_commit() {
        let long = "a".repeat(300);
        for bad in [
            long.as_str(),
            "web\0one",
            "-web",
            "web-",
            "w",
            "web_1",
            "a/b",
            "web.1",
        ] {
            let e = check_id(&site(bad)).unwrap_err();
            assert_eq!(e.code, "InvalidResourceName", "{bad:?}");
            assert!(!e.message.contains('\0'), "{:?}", e.message);
        }
        assert!(check_id(&site(&"a".repeat(60))).is_ok());
        assert!(check_id(&site(&"a".repeat(61))).is_err());
        assert!(check_id(&site("my-app-01")).is_ok());
    }

    #[test]
    fn network_names_follow_microsoft_network() {
        let vnet = |n: &str| ResourceId::new("s", "rg", "Microsoft.Network", "virtualNetworks", n);
        assert!(check_id(&vnet("vnet_1.a-b")).is_ok());
        assert!(check_id(&vnet("v")).is_ok());
        assert!(check_id(&vnet(&"v".repeat(81))).is_err());
        assert!(check_id(&vnet("vnet_")).is_ok(), "may end with '_'");
        for bad in ["_vnet", "vnet-", "vnet.", "vn et", "vnet\u{7}"] {
            let e = check_id(&vnet(bad)).unwrap_err();
            assert_eq!(e.code, "InvalidResourceName", "{bad:?}");
        }
        let subnet = vnet("v1").child("subnets", &"s".repeat(81));
        assert!(check_id(&subnet)
            .unwrap_err()
            .message
            .contains("81 characters"));
        assert!(check_id(&vnet("v1").child("subnets", &"s".repeat(80))).is_ok());
    }

    #[test]
    fn unknown_types_get_the_floor() {
        let t = |n: &str| ResourceId::new("s", "rg", "Microsoft.Insights", "components", n);
        assert!(check_id(&t("my insights (dev)")).is_ok());
        for bad in ["..", "a#b", "a?b", "a%b", "a\\b", "x\0"] {
            assert!(check_id(&t(bad)).is_err(), "{bad:?}");
        }
        assert!(check_id(&t(&"a".repeat(261))).is_err());
    }

    #[test]
    fn reserved_words_for_names_with_a_public_endpoint() {
        for bad in [
            "azure",
            "Office365",
            "my-microsoft-app",
            "windowsapp",
            "loginpage",
        ] {
            assert_eq!(
                check_id(&site(bad)).unwrap_err().code,
                "ReservedResourceName",
                "{bad}"
            );
        }
        for ok in ["myazureapp", "app-login", "xbox1", "contoso-web"] {
            assert!(check_id(&site(ok)).is_ok(), "{ok}");
        }
        // A plan has no public name: the words are fine there.
        let plan = ResourceId::new("s", "rg", "Microsoft.Web", "serverfarms", "azure");
        assert!(check_id(&plan).is_ok());
    }

    #[test]
    fn resource_groups() {
        assert!(check_resource_group("rg-1.(dev)_x").is_ok());
        for bad in ["", "rg.", "rg/x", "rg x", &"r".repeat(91), "r\0g"] {
            let e = check_resource_group(bad).unwrap_err();
            assert_eq!(e.code, "InvalidResourceGroup", "{bad:?}");
        }
    }

    #[test]
    fn vms_allow_their_own_characters() {
        let vm = |n: &str| ResourceId::new("s", "rg", "Microsoft.Compute", "virtualMachines", n);
        assert!(check_id(&vm("vm_1.web")).is_ok());
        for bad in ["_vm", "vm-", "vm.", "vm:1", "vm*"] {
            assert!(check_id(&vm(bad)).is_err(), "{bad:?}");
        }
    }
}
