//! Network Watcher packet captures (`Microsoft.Network/networkWatchers/
//! packetCaptures`): what a capture asks for, Azure's rules for it, and the
//! tcpdump filter its `filters` compile to. Pure; the capture itself is a
//! tcpdump the daemon runs (`api::packet_captures`, `dataplane::capture`).
//!
//! Targets: a VM (`target`, optionally `targetNicResourceId`), and, lab
//! only, an app instance's vNIC (`target` a site, `instance`) or a fabric
//! link (`target` a VNet, `link` one of its fabric's interfaces).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::model::{AzureError, GenericResource, Inventory, LabState, ResourceId};

/// ARM's type of a packet capture.
pub const PACKET_CAPTURE_TYPE: &str = "Microsoft.Network/networkWatchers/packetCaptures";
/// Azure's defaults and bounds.
pub const DEFAULT_TOTAL_BYTES: u64 = 1_073_741_824;
pub const DEFAULT_TIME_LIMIT_SECS: u64 = 18_000;
const MAX_TIME_LIMIT_SECS: u64 = 18_000;
const MAX_BYTES: u64 = 4_294_967_295;
/// The container Azure writes captures to.
pub const CONTAINER: &str = "network-watcher-logs";

/// What is captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureTarget {
    Vm {
        vm: ResourceId,
        nic: Option<ResourceId>,
    },
    App {
        site: ResourceId,
        instance: u32,
    },
    FabricLink {
        vnet: ResourceId,
        link: String,
    },
}

/// A capture as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    pub id: ResourceId,
    pub target: CaptureTarget,
    /// 0: whole packets.
    pub bytes_per_packet: u64,
    pub total_bytes: u64,
    pub time_limit_secs: u64,
    pub storage: Option<ResourceId>,
    pub file_path: Option<String>,
    /// The tcpdump filter of `filters` (empty: everything).
    pub filter: String,
}

fn bad(code: &str, msg: String) -> AzureError {
    AzureError::bad_request(code, msg)
}

fn number(p: &Value, key: &str, default: u64, max: u64) -> Result<u64, AzureError> {
    let Some(v) = p.get(key).filter(|v| !v.is_null()) else {
        return Ok(default);
    };
    let n = v
        .as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| {
            bad(
                "InvalidRequestFormat",
                format!("'{key}' must be a whole number, got {v}."),
            )
        })?;
    if n > max {
        return Err(bad(
            "InvalidPacketCaptureParameter",
            format!("'{key}' is {n}; the largest allowed is {max}."),
        ));
    }
    Ok(n)
}

/// The CIDRs of an address filter: `10.0.0.4`, `10.0.0.4-10.0.0.9`, or a
/// `;`-separated list of those.
fn addresses(text: &str, key: &str) -> Result<Vec<Ipv4Net>, AzureError> {
    let wrong = || {
        bad(
            "InvalidPacketCaptureFilter",
            format!("'{text}' in '{key}' is not an address, a range a-b or a ';' list of them."),
        )
    };
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (Ipv4Addr, Ipv4Addr) = (
                    a.trim().parse().map_err(|_| wrong())?,
                    b.trim().parse().map_err(|_| wrong())?,
                );
                if a > b {
                    return Err(wrong());
                }
                out.extend(ipnet::Ipv4Subnets::new(a, b, 0));
            }
            None => out.push(Ipv4Net::from(
                part.parse::<Ipv4Addr>().map_err(|_| wrong())?,
            )),
        }
    }
    Ok(out)
}

/// `(low, high)` port ranges of a port filter: `80`, `80-90`, `80;443`.
fn ports(text: &str, key: &str) -> Result<Vec<(u16, u16)>, AzureError> {
    let wrong = || {
        bad(
            "InvalidPacketCaptureFilter",
            format!("'{text}' in '{key}' is not a port, a range a-b or a ';' list of them."),
        )
    };
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|p| {
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            let (a, b): (u16, u16) = (
                a.trim().parse().map_err(|_| wrong())?,
                b.trim().parse().map_err(|_| wrong())?,
            );
            if a > b {
                return Err(wrong());
            }
            Ok((a, b))
        })
        .collect()
}

fn any_of(parts: Vec<String>) -> String {
    match parts.len() {
        0 => String::new(),
        1 => parts.into_iter().next().expect("one"),
        _ => format!("({})", parts.join(" or ")),
    }
}

fn host_match(dir: &str, nets: &[Ipv4Net]) -> String {
    any_of(
        nets.iter()
            .map(|n| {
                if n.prefix_len() == 32 {
                    format!("{dir} host {}", n.addr())
                } else {
                    format!("{dir} net {n}")
                }
            })
            .collect(),
    )
}

fn port_match(dir: &str, ranges: &[(u16, u16)]) -> String {
    any_of(
        ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    format!("{dir} port {a}")
                } else {
                    format!("{dir} portrange {a}-{b}")
                }
            })
            .collect(),
    )
}

/// One filter: protocol AND local side AND remote side, in either
/// direction (the local side is the target's).
fn one_filter(f: &Value) -> Result<String, AzureError> {
    let s = |k: &str| {
        f.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let proto = match s("protocol").map(str::to_ascii_uppercase).as_deref() {
        None | Some("ANY") => None,
        Some("TCP") => Some("tcp"),
        Some("UDP") => Some("udp"),
        Some(other) => {
            return Err(bad(
                "InvalidPacketCaptureFilter",
                format!("Filter protocol '{other}' is not TCP, UDP or Any."),
            ))
        }
    };
    let la = s("localIPAddress")
        .map(|t| addresses(t, "localIPAddress"))
        .transpose()?;
    let ra = s("remoteIPAddress")
        .map(|t| addresses(t, "remoteIPAddress"))
        .transpose()?;
    let lp = s("localPort").map(|t| ports(t, "localPort")).transpose()?;
    let rp = s("remotePort")
        .map(|t| ports(t, "remotePort"))
        .transpose()?;
    let side = |src: &str, dst: &str| {
        let mut terms = Vec::new();
        if let Some(a) = &la {
            terms.push(host_match(src, a));
        }
        if let Some(p) = &lp {
            terms.push(port_match(src, p));
        }
        if let Some(a) = &ra {
            terms.push(host_match(dst, a));
        }
        if let Some(p) = &rp {
            terms.push(port_match(dst, p));
        }
        terms.join(" and ")
    };
    let (out, inn) = (side("src", "dst"), side("dst", "src"));
    let mut terms = Vec::new();
    if let Some(p) = proto {
        terms.push(p.to_string());
    }
    if !out.is_empty() {
        terms.push(format!("(({out}) or ({inn}))"));
    }
    Ok(terms.join(" and "))
}

/// The tcpdump filter of Azure's `filters` (any of them; empty: all).
pub fn bpf(filters: &[Value]) -> Result<String, AzureError> {
    let parts: Vec<String> = filters
        .iter()
        .map(one_filter)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|f| if f.is_empty() { "ip".to_string() } else { f })
        .collect();
    Ok(match parts.len() {
        0 => String::new(),
        1 => parts.into_iter().next().expect("one"),
        _ => parts
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" or "),
    })
}

/// Reads a capture resource (the PUT body's shape), checking Azure's rules
/// against the lab.
pub fn parse(state: &LabState, res: &GenericResource) -> Result<CaptureSpec, AzureError> {
    let p = &res.properties;
    let inv = Inventory::parse_lenient(&state.resources);
    let id_at = |v: &Value, what: &str| -> Result<ResourceId, AzureError> {
        let s = v.as_str().ok_or_else(|| {
            bad(
                "InvalidRequestFormat",
                format!("The capture needs '{what}'."),
            )
        })?;
        s.parse().map_err(|_| {
            bad(
                "InvalidResourceId",
                format!("'{s}' in '{what}' is not a resource id."),
            )
        })
    };
    let target_id = id_at(p.get("target").unwrap_or(&Value::Null), "target")?;
    let missing = || {
        AzureError::not_found(
            "ResourceNotFound",
            format!("The capture's target '{target_id}' was not found."),
        )
    };
    let target = match target_id.full_type().to_ascii_lowercase().as_str() {
        "microsoft.compute/virtualmachines" => {
            let vm = inv.vm(&target_id).ok_or_else(missing)?;
            let nic = p
                .get("targetNicResourceId")
                .filter(|v| !v.is_null())
                .map(|v| id_at(v, "targetNicResourceId"))
                .transpose()?;
            if let Some(n) = &nic {
                if !vm.nic_ids.contains(n) {
                    return Err(bad(
                        "NicNotAttachedToVm",
                        format!("Network interface '{n}' is not attached to virtual machine '{}'.", vm.name),
                    ));
                }
            }
            CaptureTarget::Vm { vm: target_id.clone(), nic }
        }
        "microsoft.web/sites" => {
            inv.site(&target_id).ok_or_else(missing)?;
            CaptureTarget::App {
                site: target_id.clone(),
                instance: p.get("instance").and_then(Value::as_u64).unwrap_or(0) as u32,
            }
        }
        "microsoft.network/virtualnetworks" => {
            inv.vnet(&target_id).ok_or_else(missing)?;
            let link = p.get("link").and_then(Value::as_str).ok_or_else(|| {
                bad(
                    "InvalidRequestFormat",
                    "A capture on a virtual network's fabric names the interface in 'link' (docs/datapath.md).".into(),
                )
            })?;
            CaptureTarget::FabricLink { vnet: target_id.clone(), link: link.to_string() }
        }
        other => {
            return Err(bad(
                "InvalidTargetResourceType",
                format!("A packet capture targets a virtual machine (in the lab also an app or a virtual network's link), not '{other}'."),
            ))
        }
    };
    let storage_location = p.get("storageLocation").cloned().unwrap_or(Value::Null);
    let storage = storage_location
        .get("storageId")
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        .map(|v| id_at(v, "storageLocation.storageId"))
        .transpose()?;
    if let Some(s) = &storage {
        inv.service(s)
            .filter(|x| {
                x.id.full_type()
                    .eq_ignore_ascii_case("Microsoft.Storage/storageAccounts")
            })
            .ok_or_else(|| {
                AzureError::not_found(
                    "StorageAccountNotFound",
                    format!("Storage account '{s}' was not found."),
                )
            })?;
    }
    let file_path = ["filePath", "localPath"]
        .iter()
        .find_map(|k| storage_location.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if storage.is_none() && file_path.is_none() {
        return Err(bad(
            "InvalidStorageLocation",
            "A packet capture needs storageLocation.storageId (a storage account) or storageLocation.filePath (a local file), or both.".into(),
        ));
    }
    if let Some(f) = &file_path {
        if !f.starts_with('/') || !f.ends_with(".cap") {
            return Err(bad(
                "InvalidLocalFilePath",
                format!("'{f}' is not an absolute path to a .cap file."),
            ));
        }
    }
    let filters = p
        .get("filters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(CaptureSpec {
        id: res.id.clone(),
        target,
        bytes_per_packet: number(p, "bytesToCapturePerPacket", 0, MAX_BYTES)?,
        total_bytes: number(p, "totalBytesPerSession", DEFAULT_TOTAL_BYTES, MAX_BYTES)?,
        time_limit_secs: number(
            p,
            "timeLimitInSeconds",
            DEFAULT_TIME_LIMIT_SECS,
            MAX_TIME_LIMIT_SECS,
        )?,
        storage,
        file_path,
        filter: bpf(&filters)?,
    })
}

/// The blob a capture is written to (`storagePath` shows its URL):
/// Azure's `network-watcher-logs/subscriptions/.../<name>_<time>.cap` layout.
pub fn blob_path(spec: &CaptureSpec, start_s: i64) -> String {
    let t = |f: &str| crate::template::format_time(start_s, f);
    let target = match &spec.target {
        CaptureTarget::Vm { vm, .. } => vm.to_string(),
        CaptureTarget::App { site, instance } => format!("{site}/instances/{instance}"),
        CaptureTarget::FabricLink { vnet, link } => format!("{vnet}/links/{link}"),
    };
    format!(
        "{}/{}/{}/{}/packetcapture_{}_{}.cap",
        target.trim_start_matches('/').to_ascii_lowercase(),
        t("yyyy"),
        t("MM"),
        t("dd"),
        t("HH_mm_ss"),
        spec.id.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_compile_to_tcpdump_expressions_in_both_directions() {
        assert_eq!(bpf(&[]).unwrap(), "");
        assert_eq!(bpf(&[json!({"protocol": "TCP"})]).unwrap(), "tcp");
        assert_eq!(
            bpf(&[json!({"protocol": "UDP", "localIPAddress": "10.0.0.4", "remotePort": "53"})])
                .unwrap(),
            "udp and ((src host 10.0.0.4 and dst port 53) or (dst host 10.0.0.4 and src port 53))"
        );
        let r =
            bpf(&[json!({"remoteIPAddress": "10.0.0.4-10.0.0.7", "localPort": "80;8000-8080"})])
                .unwrap();
        assert_eq!(
            r,
            "(((src port 80 or src portrange 8000-8080) and dst net 10.0.0.4/30) or \
             ((dst port 80 or dst portrange 8000-8080) and src net 10.0.0.4/30))"
        );
        let two = bpf(&[json!({"protocol": "TCP"}), json!({"protocol": "Any"})]).unwrap();
        assert_eq!(two, "(tcp) or (ip)");
    }

    #[test]
    fn bad_filters_are_refused() {
        for f in [
            json!({"protocol": "ICMP"}),
            json!({"localIPAddress": "10.0.0.300"}),
            json!({"localPort": "90-80"}),
            json!({"remoteIPAddress": "10.0.0.9-10.0.0.1"}),
        ] {
            assert_eq!(bpf(&[f]).unwrap_err().code, "InvalidPacketCaptureFilter");
        }
    }
}
