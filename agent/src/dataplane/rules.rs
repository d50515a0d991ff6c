//! IPv4 policy rules of a namespace.
//!
//! `fwmark <subnet> lookup <subnet table>` in fabrics, `iif a-* lookup
//! <app table>` in workers, `fwmark <fabric mark>` in stamps
//! (docs/datapath.md). The kernel's own rules at priorities 0, 32766 and
//! 32767 are never deleted.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use rtnetlink::IpVersion;

use super::nl::{self, NsConn};
use super::ReconcileReport;
use crate::plan::RulePlan;

/// Priorities of the rules every namespace is born with.
const KERNEL_DEFAULT_PRIORITIES: [u32; 3] = [0, 32766, 32767];

/// The plan's view of a kernel rule, or `None` when it selects on something
/// a plan cannot express.
fn parse(msg: &RuleMessage) -> Option<RulePlan> {
    let h = &msg.header;
    if h.action != RuleAction::ToTable
        || h.src_len != 0
        || h.dst_len != 0
        || h.tos != 0
        || h.flags.contains(RuleFlags::Invert)
    {
        return None;
    }
    let mut rule = RulePlan {
        priority: 0,
        fwmark: None,
        iif: None,
        table: u32::from(h.table),
    };
    let mut mark = None;
    let mut mask = None;
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Priority(p) => rule.priority = *p,
            RuleAttribute::Table(t) => rule.table = *t,
            RuleAttribute::FwMark(m) => mark = Some(*m),
            RuleAttribute::FwMask(m) => mask = Some(*m),
            RuleAttribute::Iifname(i) => rule.iif = Some(i.clone()),
            // Always reported; neutral at these values.
            RuleAttribute::SuppressPrefixLen(u32::MAX)
            | RuleAttribute::SuppressIfGroup(u32::MAX)
            | RuleAttribute::Protocol(_)
            | RuleAttribute::L3MDev(false)
            | RuleAttribute::Other(_) => {}
            _ => return None,
        }
    }
    match (mark, mask) {
        (None, None) | (Some(0), Some(0)) | (None, Some(0)) => {}
        (Some(m), mask) => rule.fwmark = Some((m, mask.unwrap_or(u32::MAX))),
        (None, Some(mask)) => rule.fwmark = Some((0, mask)),
    }
    Some(rule)
}

/// Makes the namespace's IPv4 rules exactly the kernel defaults plus `want`.
pub(crate) async fn reconcile(
    conn: &NsConn,
    want: &[RulePlan],
    report: &mut ReconcileReport,
) -> Result<()> {
    let want: BTreeSet<&RulePlan> = want.iter().collect();
    let msgs = nl::collect(conn.handle.rule().get(IpVersion::V4).execute())
        .await
        .with_context(|| format!("listing rules in {}", conn.name))?;
    let mut have: BTreeSet<RulePlan> = BTreeSet::new();
    for msg in msgs {
        let parsed = parse(&msg);
        if let Some(r) = &parsed {
            if want.contains(r) && have.insert(r.clone()) {
                continue;
            }
        }
        let priority = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                RuleAttribute::Priority(p) => Some(*p),
                _ => None,
            })
            .unwrap_or(0);
        if KERNEL_DEFAULT_PRIORITIES.contains(&priority) {
            continue;
        }
        tracing::debug!(netns = %conn.name, rule = ?parsed, priority, "deleting rule not in the plan");
        conn.handle
            .rule()
            .del(msg)
            .execute()
            .await
            .map_err(nl::nl_err)
            .with_context(|| format!("deleting rule at priority {priority} in {}", conn.name))?;
        report.rules_changed += 1;
        report.kernel_writes += 1;
    }
    for r in want {
        if have.contains(r) {
            continue;
        }
        let mut req = conn
            .handle
            .rule()
            .add()
            .v4()
            .priority(r.priority)
            .table_id(r.table)
            .action(RuleAction::ToTable);
        if let Some((mark, mask)) = r.fwmark {
            req = req.fw_mark(mark);
            req.message_mut()
                .attributes
                .push(RuleAttribute::FwMask(mask));
        }
        if let Some(iif) = &r.iif {
            req = req.input_interface(iif.clone());
        }
        req.execute()
            .await
            .map_err(nl::nl_err)
            .with_context(|| format!("adding rule {r:?} in {}", conn.name))?;
        report.rules_changed += 1;
        report.kernel_writes += 1;
    }
    Ok(())
}
