//! VNet flow logs (`Microsoft.Network/networkWatchers/flowLogs`): what a flow
//! log resource says, Azure's rules for it, and the records it writes, from
//! conntrack observations handed in by the caller (AZURE-FACTS, "VNet flow
//! logs"). Pure: the clock and the kernel's flows come in as arguments.
//!
//! A flow log is kept as an ARM record under its watcher (the synthesized
//! `NetworkWatcherRG/NetworkWatcher_<region>`, or one a template deployed).
//! Its target is a virtual network, a subnet or a NIC; every VM NIC in that
//! scope gets one record per flush, in the hourly blob Azure names
//! (`insights-logs-flowlogflowevent/flowLogResourceID=/.../macAddress=M/PT1H.json`).
//! App Service integration traffic is left out, as Azure leaves it out of
//! flow logs (AZURE-FACTS §3).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::model::{AzureError, GenericResource, LabState, ResourceId};

/// ARM's type of a flow log.
pub const FLOW_LOG_TYPE: &str = "Microsoft.Network/networkWatchers/flowLogs";
/// The container Azure writes VNet flow logs to.
pub const CONTAINER: &str = "insights-logs-flowlogflowevent";
/// Azure reports a long flow's counters every five minutes (state `C`).
pub const CONTINUING_EVERY_MS: u64 = 5 * 60 * 1000;
/// TCP conntrack states (TIME_WAIT, CLOSE) in which every packet of the flow
/// has been counted: the flow's end (state `E`).
const TCP_ENDED: [u8; 2] = [7, 8];

/// What ctnetlink says of one flow (filled by `dataplane::conntrack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtEvent {
    New,
    Update,
    Destroy,
    /// A row of a table dump.
    Dumped,
}

/// One conntrack entry (IPv4: the lab is IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtFlow {
    pub event: CtEvent,
    /// The kernel's id of the entry (stable while it lives).
    pub id: u32,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The reply's source: the private address behind a DNAT.
    pub reply_src: Ipv4Addr,
    /// IANA protocol number.
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// (packets, bytes) from the initiator; zero unless `nf_conntrack_acct`.
    pub orig: (u64, u64),
    /// (packets, bytes) back to the initiator.
    pub reply: (u64, u64),
    pub tcp_state: Option<u8>,
}

/// A flow log resource, as the lab runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLogSpec {
    pub id: ResourceId,
    pub location: String,
    pub target: ResourceId,
    pub storage: ResourceId,
    pub enabled: bool,
    pub retention_days: u32,
    /// `properties.resourceGuid` (the records' `flowLogGUID`).
    pub guid: String,
}

fn bad(code: &str, msg: String) -> AzureError {
    AzureError::bad_request(code, msg)
}

/// Reads a stored flow log record.
pub fn parse(res: &GenericResource) -> Result<FlowLogSpec, AzureError> {
    let p = &res.properties;
    let id_at = |key: &str| -> Result<ResourceId, AzureError> {
        let s = p.get(key).and_then(Value::as_str).ok_or_else(|| {
            bad(
                "InvalidRequestFormat",
                format!("Flow log '{}' needs properties.{key}.", res.name),
            )
        })?;
        s.parse().map_err(|_| {
            bad(
                "InvalidResourceId",
                format!(
                    "'{s}' in properties.{key} of flow log '{}' is not a resource id.",
                    res.name
                ),
            )
        })
    };
    let days = p
        .pointer("/retentionPolicy/enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .then(|| p.pointer("/retentionPolicy/days").and_then(Value::as_u64))
        .flatten()
        .unwrap_or(0);
    if days > 365 {
        return Err(bad(
            "InvalidFlowLogRetentionPolicy",
            format!(
                "Retention of flow log '{}' is {days} days; the allowed range is 0-365.",
                res.name
            ),
        ));
    }
    if let Some(v) = p.pointer("/format/version").and_then(Value::as_u64) {
        if v != 1 && v != 2 {
            return Err(bad(
                "InvalidFlowLogFormatVersion",
                format!("Flow log format version {v} is not supported; use 1 or 2."),
            ));
        }
    }
    Ok(FlowLogSpec {
        id: res.id.clone(),
        location: res
            .location
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase(),
        target: id_at("targetResourceId")?,
        storage: id_at("storageId")?,
        enabled: p.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        retention_days: days as u32,
        guid: crate::model::record::stable_guid(&res.id, "resourceGuid"),
    })
}

/// Every flow log of the lab (records that do not parse are skipped: they
/// were refused when written, so only a hand-edited store holds one).
pub fn all(state: &LabState) -> Vec<FlowLogSpec> {
    state
        .resources
        .values()
        .filter(|r| r.type_.eq_ignore_ascii_case(FLOW_LOG_TYPE))
        .filter_map(|r| parse(r).ok())
        .collect()
}

/// The region of a flow log's target (a VNet's, or its subnet's VNet's, or a NIC's).
fn target_location(state: &LabState, target: &ResourceId) -> Option<String> {
    let inv = crate::model::Inventory::parse_lenient(&state.resources);
    let ty = target.full_type().to_ascii_lowercase();
    let loc = match ty.as_str() {
        "microsoft.network/virtualnetworks" => inv.vnet(target).map(|v| v.location.clone()),
        "microsoft.network/virtualnetworks/subnets" => {
            inv.subnet(target).map(|(v, _, _)| v.location.clone())
        }
        "microsoft.network/networkinterfaces" => inv.nic(target).and_then(|n| {
            inv.subnet(n.subnet_id())
                .map(|(v, _, _)| v.location.clone())
        }),
        _ => None,
    };
    loc.map(|l| l.to_ascii_lowercase())
}

/// Azure's rules for a flow log about to be written (in `next`, the state
/// it would make): a target that exists and is a VNet, subnet or NIC; a
/// storage account of the lab in the same region; the watcher of that
/// region; at most one flow log per target.
pub fn check(next: &LabState, res: &GenericResource) -> Result<(), AzureError> {
    let spec = parse(res)?;
    let Some(target_loc) = target_location(next, &spec.target) else {
        let ty = spec.target.full_type();
        let kinds = [
            "Microsoft.Network/virtualNetworks",
            "Microsoft.Network/virtualNetworks/subnets",
            "Microsoft.Network/networkInterfaces",
        ];
        return Err(if kinds.iter().any(|k| k.eq_ignore_ascii_case(&ty)) {
            AzureError::not_found(
                "ResourceNotFound",
                format!(
                    "The target resource '{}' of flow log '{}' was not found.",
                    spec.target, res.name
                ),
            )
        } else if ty.eq_ignore_ascii_case("Microsoft.Network/networkSecurityGroups") {
            bad(
                "InvalidTargetResourceType",
                format!(
                    "Flow log '{}' targets network security group '{}': NSG flow logs can no longer be created \
                     (retired on 30 June 2025). Target the virtual network, a subnet or a network interface \
                     instead (VNet flow logs).",
                    res.name,
                    spec.target.name()
                ),
            )
        } else {
            bad(
                "InvalidTargetResourceType",
                format!(
                    "A VNet flow log targets a virtual network, a subnet or a network interface, not '{ty}'."
                ),
            )
        });
    };
    let inv = crate::model::Inventory::parse_lenient(&next.resources);
    let storage = inv.service(&spec.storage).filter(|s| {
        s.id.full_type()
            .eq_ignore_ascii_case("Microsoft.Storage/storageAccounts")
    });
    let Some(storage) = storage else {
        return Err(AzureError::not_found(
            "StorageAccountNotFound",
            format!(
                "Storage account '{}' of flow log '{}' was not found.",
                spec.storage, res.name
            ),
        ));
    };
    if !storage.location.eq_ignore_ascii_case(&target_loc) {
        return Err(bad(
            "FlowLogStorageAccountInDifferentRegion",
            format!(
                "Storage account '{}' is in '{}' but the flow log's target is in '{target_loc}': they must be in the same region.",
                storage.id.name(),
                storage.location
            ),
        ));
    }
    let watcher = res.id.parent().expect("flowLogs ids have a parent");
    let expected = super::watcher::watcher_name(&target_loc);
    let synthesized = watcher
        .resource_group
        .eq_ignore_ascii_case(super::watcher::WATCHER_GROUP)
        && watcher.name().eq_ignore_ascii_case(&expected);
    let deployed = next.get(&watcher).is_some_and(|w| {
        w.location
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case(&target_loc))
    });
    if !synthesized && !deployed {
        return Err(bad(
            "InvalidNetworkWatcher",
            format!(
                "Flow log '{}' must be created under the Network Watcher of '{target_loc}', the region of its target ({}/{expected}).",
                res.name,
                super::watcher::WATCHER_GROUP
            ),
        ));
    }
    if !spec.location.is_empty() && spec.location != target_loc {
        return Err(bad(
            "FlowLogLocationMismatch",
            format!(
                "Flow log '{}' is in '{}' but its target is in '{target_loc}'.",
                res.name, spec.location
            ),
        ));
    }
    if let Some(other) = all(next)
        .into_iter()
        .find(|o| o.id != spec.id && o.target == spec.target)
    {
        return Err(bad(
            "FlowLogAlreadyExistsForTarget",
            format!(
                "Target '{}' already has flow log '{}'; a resource has at most one flow log.",
                spec.target, other.id
            ),
        ));
    }
    Ok(())
}

/// A VM NIC whose flows a flow log records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedNic {
    pub nic: ResourceId,
    pub vnet: ResourceId,
    pub subnet: ResourceId,
    pub addresses: Vec<Ipv4Addr>,
    /// `macAddress` as flow logs write it: 12 hex digits, no separators.
    pub mac: String,
    /// The flow logs that cover it (a NIC's own, its subnet's, its VNet's).
    pub flow_log: ResourceId,
    pub target: ResourceId,
    pub guid: String,
    pub storage: ResourceId,
}

/// A NIC's MAC address, stable for its id, in Azure's range (00-0D-3A).
pub fn mac_of(nic: &ResourceId) -> String {
    let h = crate::model::record::stable_guid(nic, "macAddress").replace('-', "");
    format!("000D3A{}", h[..6].to_ascii_uppercase())
}

/// Which flow log records a NIC: the NIC's own first, then its subnet's,
/// then its VNet's (the narrowest target wins, as Azure's precedence).
pub fn logged_nics(
    specs: &[FlowLogSpec],
    nics: &[(ResourceId, ResourceId, Vec<Ipv4Addr>)],
) -> Vec<LoggedNic> {
    let mut out = Vec::new();
    for (nic, subnet, addresses) in nics {
        let vnet = subnet.parent().expect("subnet ids have a parent");
        let pick = [nic, subnet, &vnet]
            .into_iter()
            .find_map(|t| specs.iter().find(|s| &s.target == t));
        if let Some(s) = pick.filter(|s| s.enabled) {
            out.push(LoggedNic {
                nic: nic.clone(),
                vnet: vnet.clone(),
                subnet: subnet.clone(),
                addresses: addresses.clone(),
                mac: mac_of(nic),
                flow_log: s.id.clone(),
                target: s.target.clone(),
                guid: s.guid.clone(),
                storage: s.storage.clone(),
            });
        }
    }
    out
}

/// A flow's state in a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowState {
    Begin,
    Continuing,
    End,
    /// An NSG dropped it.
    Denied,
}

impl FlowState {
    fn letter(self) -> char {
        match self {
            FlowState::Begin => 'B',
            FlowState::Continuing => 'C',
            FlowState::End => 'E',
            FlowState::Denied => 'D',
        }
    }
}

/// One flow tuple, before the NIC and rule are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TupleEvent {
    pub time_ms: u64,
    pub flow: CtFlow,
    pub state: FlowState,
}

impl TupleEvent {
    /// Azure's tuple text for this flow seen at a NIC, `direction` I or O.
    pub fn text(&self, direction: char) -> String {
        let f = &self.flow;
        let (po, bo, pr, br) = match self.state {
            FlowState::Begin | FlowState::Denied => (0, 0, 0, 0),
            _ => (f.orig.0, f.orig.1, f.reply.0, f.reply.1),
        };
        format!(
            "{},{},{},{},{},{},{direction},{},NX,{po},{bo},{pr},{br}",
            self.time_ms,
            f.src,
            f.dst,
            f.src_port,
            f.dst_port,
            f.protocol,
            self.state.letter()
        )
    }
}

#[derive(Debug, Clone)]
struct Tracked {
    ended: bool,
    last_report_ms: u64,
}

/// Follows the flows of one fabric and says when each begins, continues and
/// ends. Fed with conntrack events as they come and a table dump per tick.
#[derive(Debug, Default)]
pub struct Tracker {
    flows: HashMap<u32, Tracked>,
}

impl Tracker {
    /// An event from conntrack; `relevant` says whether the flow touches a
    /// logged NIC.
    pub fn event(&mut self, f: &CtFlow, now_ms: u64, relevant: bool) -> Vec<TupleEvent> {
        if !relevant {
            return Vec::new();
        }
        let mut out = Vec::new();
        match f.event {
            CtEvent::New => {
                if let std::collections::hash_map::Entry::Vacant(e) = self.flows.entry(f.id) {
                    e.insert(Tracked {
                        ended: false,
                        last_report_ms: now_ms,
                    });
                    out.push(TupleEvent {
                        time_ms: now_ms,
                        flow: f.clone(),
                        state: FlowState::Begin,
                    });
                }
            }
            CtEvent::Destroy => {
                let t = self.flows.remove(&f.id);
                if t.as_ref().is_none_or(|t| !t.ended) {
                    if t.is_none() {
                        out.push(TupleEvent {
                            time_ms: now_ms,
                            flow: f.clone(),
                            state: FlowState::Begin,
                        });
                    }
                    out.push(TupleEvent {
                        time_ms: now_ms,
                        flow: f.clone(),
                        state: FlowState::End,
                    });
                }
            }
            CtEvent::Update | CtEvent::Dumped => {}
        }
        out
    }

    /// A dump of the table: ends the TCP flows that closed, reports long
    /// flows every five minutes, begins flows seen for the first time.
    pub fn tick(
        &mut self,
        dump: &[CtFlow],
        now_ms: u64,
        relevant: impl Fn(&CtFlow) -> bool,
    ) -> Vec<TupleEvent> {
        let mut out = Vec::new();
        for f in dump.iter().filter(|f| relevant(f)) {
            let t = self.flows.entry(f.id).or_insert_with(|| {
                out.push(TupleEvent {
                    time_ms: now_ms,
                    flow: f.clone(),
                    state: FlowState::Begin,
                });
                Tracked {
                    ended: false,
                    last_report_ms: now_ms,
                }
            });
            if t.ended {
                continue;
            }
            if f.tcp_state.is_some_and(|s| TCP_ENDED.contains(&s)) {
                t.ended = true;
                out.push(TupleEvent {
                    time_ms: now_ms,
                    flow: f.clone(),
                    state: FlowState::End,
                });
            } else if now_ms.saturating_sub(t.last_report_ms) >= CONTINUING_EVERY_MS {
                t.last_report_ms = now_ms;
                out.push(TupleEvent {
                    time_ms: now_ms,
                    flow: f.clone(),
                    state: FlowState::Continuing,
                });
            }
        }
        // Entries that left the table without a destroy event reaching us
        // (an overrun): forget them, their end was reported or is lost.
        let live: std::collections::HashSet<u32> = dump.iter().map(|f| f.id).collect();
        self.flows.retain(|id, _| live.contains(id));
        out
    }
}

/// The NSG and rule that decided a flow at a NIC: `(aclID, rule)` as flow
/// logs name them (`DefaultRule_X` for default rules, `UserRule_X` else).
pub fn rule_name(rule_path: &str) -> String {
    match rule_path.split_once('/') {
        Some(("defaultSecurityRules", r)) => format!("DefaultRule_{r}"),
        Some((_, r)) => format!("UserRule_{r}"),
        None => rule_path.to_string(),
    }
}

/// The blob of one NIC's records for the hour of `time_s`.
pub fn blob_path(flow_log: &ResourceId, mac: &str, time_s: i64) -> String {
    let t = |f: &str| crate::template::format_time(time_s, f);
    format!(
        "flowLogResourceID={}/y={}/m={}/d={}/h={}/m=00/macAddress={mac}/PT1H.json",
        flow_log.to_string().to_ascii_uppercase(),
        t("yyyy"),
        t("MM"),
        t("dd"),
        t("HH")
    )
}

/// `(aclID, rule)` of the NSG that decided a flow at one NIC.
pub type Acl = (String, String);

/// One record: a NIC's tuples of one flush, grouped by NSG and rule.
pub fn record(nic: &LoggedNic, time_s: i64, tuples: &[(Acl, String)]) -> Value {
    let mut by_acl: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for ((acl, rule), text) in tuples {
        by_acl
            .entry(acl)
            .or_default()
            .entry(rule)
            .or_default()
            .push(text);
    }
    let flows: Vec<Value> = by_acl
        .into_iter()
        .map(|(acl, rules)| {
            json!({
                "aclID": acl,
                "flowGroups": rules.into_iter().map(|(rule, tuples)| json!({
                    "rule": rule,
                    "flowTuples": tuples,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "time": crate::template::format_time(time_s, "yyyy-MM-ddTHH:mm:ss.0000000Z"),
        "flowLogVersion": 4,
        "flowLogGUID": nic.guid,
        "macAddress": nic.mac,
        "category": "FlowLogFlowEvent",
        "flowLogResourceID": nic.flow_log.to_string().to_ascii_uppercase(),
        "targetResourceID": nic.target.to_string(),
        "operationName": "FlowLogFlowEvent",
        "flowRecords": {"flows": flows},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(id: u32, event: CtEvent, tcp_state: Option<u8>) -> CtFlow {
        CtFlow {
            event,
            id,
            src: Ipv4Addr::new(10, 0, 1, 4),
            dst: Ipv4Addr::new(10, 0, 2, 4),
            reply_src: Ipv4Addr::new(10, 0, 2, 4),
            protocol: 6,
            src_port: 40000,
            dst_port: 80,
            orig: (5, 420),
            reply: (4, 1600),
            tcp_state,
        }
    }

    #[test]
    fn a_short_tcp_flow_begins_and_ends_once() {
        let mut t = Tracker::default();
        let b = t.event(&flow(1, CtEvent::New, Some(1)), 1000, true);
        assert_eq!(b.len(), 1);
        assert_eq!(
            b[0].text('O'),
            "1000,10.0.1.4,10.0.2.4,40000,80,6,O,B,NX,0,0,0,0"
        );
        let e = t.tick(&[flow(1, CtEvent::Dumped, Some(7))], 2000, |_| true);
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].text('O'),
            "2000,10.0.1.4,10.0.2.4,40000,80,6,O,E,NX,5,420,4,1600"
        );
        // Neither a later dump nor the destroy reports it again.
        assert!(t
            .tick(&[flow(1, CtEvent::Dumped, Some(7))], 3000, |_| true)
            .is_empty());
        assert!(t
            .event(&flow(1, CtEvent::Destroy, None), 4000, true)
            .is_empty());
    }

    #[test]
    fn a_long_flow_continues_every_five_minutes_and_ends_on_destroy() {
        let mut t = Tracker::default();
        t.event(&flow(2, CtEvent::New, Some(3)), 0, true);
        assert!(t
            .tick(&[flow(2, CtEvent::Dumped, Some(3))], 60_000, |_| true)
            .is_empty());
        let c = t.tick(
            &[flow(2, CtEvent::Dumped, Some(3))],
            CONTINUING_EVERY_MS,
            |_| true,
        );
        assert_eq!(c[0].state, FlowState::Continuing);
        let e = t.event(
            &flow(2, CtEvent::Destroy, None),
            CONTINUING_EVERY_MS + 1,
            true,
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].state, FlowState::End);
    }

    #[test]
    fn a_flow_seen_only_at_its_destroy_gets_begin_and_end() {
        let mut t = Tracker::default();
        let v = t.event(&flow(3, CtEvent::Destroy, None), 5, true);
        assert_eq!(
            v.iter().map(|e| e.state).collect::<Vec<_>>(),
            [FlowState::Begin, FlowState::End]
        );
        assert!(t.event(&flow(4, CtEvent::New, None), 5, false).is_empty());
    }

    #[test]
    fn names_and_paths_follow_azure() {
        assert_eq!(
            rule_name("defaultSecurityRules/AllowVnetOutBound"),
            "DefaultRule_AllowVnetOutBound"
        );
        assert_eq!(rule_name("securityRules/allow-web"), "UserRule_allow-web");
        let id: ResourceId = "/subscriptions/s/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_eastus/flowLogs/fl"
            .parse()
            .unwrap();
        // 2022-09-14T09:00:52Z
        let p = blob_path(&id, "000D3A112233", 1_663_146_052);
        assert_eq!(
            p,
            "flowLogResourceID=/SUBSCRIPTIONS/S/RESOURCEGROUPS/NETWORKWATCHERRG/PROVIDERS/MICROSOFT.NETWORK/NETWORKWATCHERS/NETWORKWATCHER_EASTUS/FLOWLOGS/FL/y=2022/m=09/d=14/h=09/m=00/macAddress=000D3A112233/PT1H.json"
        );
        let nic: ResourceId =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n1"
                .parse()
                .unwrap();
        assert_eq!(mac_of(&nic), mac_of(&nic));
        assert!(mac_of(&nic).starts_with("000D3A") && mac_of(&nic).len() == 12);
    }
}
