//! Namespace and link names (docs/datapath.md, "Names"). Pure functions of
//! resource ids, so the same lab always gets the same names.

use sha2::{Digest, Sha256};

/// Lower-case hex of sha256(`s`).
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A resource name made fit for a namespace name: lower-cased, cut to 12
/// characters, anything but `[a-z0-9]` replaced by `-`.
pub fn readable(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .take(12)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `<lab>-<kind>-<readable>-<hash4>`, hash4 = first 4 hex of sha256(`hash_input` lower-cased).
pub fn netns(lab: &str, kind: &str, name: &str, hash_input: &str) -> String {
    format!(
        "{lab}-{kind}-{}-{}",
        readable(name),
        &sha256_hex(&hash_input.to_ascii_lowercase())[..4]
    )
}

/// `<lab>-<kind>-<readable>-<i>-<hash4>` for workers and sandboxes, hashed over
/// `<id>/instances/<i>`.
pub fn instance_netns(lab: &str, kind: &str, name: &str, id_key: &str, instance: u32) -> String {
    let readable = readable(name);
    let hash = &sha256_hex(&instance_key(id_key, instance))[..4];
    format!("{lab}-{kind}-{readable}-{instance}-{hash}")
}

/// `<lower-cased id>/instances/<i>`: the key of an instance of a plan or site.
pub fn instance_key(id_key: &str, instance: u32) -> String {
    format!("{}/instances/{instance}", id_key.to_ascii_lowercase())
}

/// The directory under each cgroup hierarchy's root that holds every lab's
/// app cgroups (docs/datapath.md, "App cgroups").
pub const CGROUP_DIR: &str = "vnet-agent";

/// `vnet-agent/<lab>`: the cgroups of one lab.
pub fn lab_cgroup(lab: &str) -> String {
    format!("{CGROUP_DIR}/{lab}")
}

/// `vnet-agent/<lab>/<readable>-<hash8>`: one site's cgroup, hash8 = first 8
/// hex of sha256(lower-cased site id). Its instances are its children.
pub fn site_cgroup(lab: &str, name: &str, id_key: &str) -> String {
    format!(
        "{}/{}-{}",
        lab_cgroup(lab),
        readable(name),
        &sha256_hex(&id_key.to_ascii_lowercase())[..8]
    )
}

/// `vnet-agent/<lab>/<readable>-<hash8>/<instance>`: the cgroup of one
/// instance of a site, where its process runs with the instance's limits.
pub fn app_cgroup(lab: &str, name: &str, id_key: &str, instance: u32) -> String {
    format!("{}/{instance}", site_cgroup(lab, name, id_key))
}

/// The internet namespace, `<lab>-inet`.
pub fn internet(lab: &str) -> String {
    format!("{lab}-inet")
}

/// The App Service stamp of a region, `<lab>-stamp-<location>`.
pub fn stamp(lab: &str, location: &str) -> String {
    let loc: String = location
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{lab}-stamp-{loc}")
}

/// The far end of a link, named after what it leads to: `<kind>-` + 6 hex of
/// sha256(`<peer netns>/<peer ifname>`). 8 bytes, well under IFNAMSIZ.
pub fn link(kind: char, peer_netns: &str, peer_ifname: &str) -> String {
    format!(
        "{kind}-{}",
        &sha256_hex(&format!("{peer_netns}/{peer_ifname}"))[..6]
    )
}

/// `WEBSITE_INSTANCE_ID`: 64 hex, stable per site and instance.
pub fn website_instance_id(site_key: &str, instance: u32) -> String {
    sha256_hex(&instance_key(site_key, instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(readable("My_Web.App-Long-Name"), "my-web-app-l");
        let n = netns(
            "vl",
            "vnet",
            "vnet1",
            "/subscriptions/X/resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/vnet1",
        );
        assert!(
            n.starts_with("vl-vnet-vnet1-") && n.len() == "vl-vnet-vnet1-".len() + 4,
            "{n}"
        );
        assert_eq!(n, netns("vl", "vnet", "vnet1", "/subscriptions/x/resourcegroups/rg/providers/microsoft.network/virtualnetworks/vnet1"));
        assert_eq!(stamp("vl", "westeurope"), "vl-stamp-westeurope");
        let l = link('w', "vl-wk-plan1-0-abcd", "pub0");
        assert!(l.starts_with("w-") && l.len() == 8);
        assert_eq!(website_instance_id("x", 0).len(), 64);
    }
}
