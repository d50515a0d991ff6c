//! What one App Service plan instance may use, by SKU: the memory Azure
//! publishes per instance, and a process limit (docs/datapath.md, "App
//! cgroups"). The supervisor writes them to each app instance's cgroup, so a
//! runaway app meets its plan's limits instead of the machine's.

use super::types::CgroupLimits;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Processes (and threads) per app instance. Azure publishes no process
/// limit for Linux App Service, so the lab picks one value for every SKU:
/// 1,024 is far above what a web app runs (a runtime, its workers and a few
/// helpers), low enough that a fork loop stops in well under a second, and
/// the `ulimit -u` default many distributions give an unprivileged user.
pub const PIDS_MAX: u64 = 1024;

/// Memory per instance when the SKU name is not in [`SKU_MEMORY`]: the
/// smallest dedicated size (B1, S1), so an unknown SKU is never unlimited.
pub const DEFAULT_MEMORY_BYTES: u64 = 1792 * MIB;

/// Memory per instance, by SKU name (case-insensitive). Sources (also in
/// docs/datapath.md, "App cgroups"): PremiumV3 from MicrosoftDocs/azure-docs
/// `articles/app-service/overview-hosting-plans.md` ("Memory (GiB)"
/// column); the other tiers from Azure's App Service pricing page for Linux
/// (azure.microsoft.com/pricing/details/app-service/linux/), Elastic
/// Premium and Consumption from the Azure Functions hosting pages. "1.75 GB"
/// is taken as 1,792 MiB, and every "GB" as GiB.
pub const SKU_MEMORY: &[(&str, u64)] = &[
    // Free and Shared: 1 GB.
    ("F1", GIB),
    ("D1", GIB),
    // Basic and Standard: 1.75 / 3.5 / 7 GB.
    ("B1", 1792 * MIB),
    ("B2", 3584 * MIB),
    ("B3", 7 * GIB),
    ("S1", 1792 * MIB),
    ("S2", 3584 * MIB),
    ("S3", 7 * GIB),
    // Premium (v1): the Standard sizes.
    ("P1", 1792 * MIB),
    ("P2", 3584 * MIB),
    ("P3", 7 * GIB),
    // PremiumV2: twice the memory per core of Standard.
    ("P1v2", 3584 * MIB),
    ("P2v2", 7 * GIB),
    ("P3v2", 14 * GIB),
    // PremiumV3 and its memory-optimized sizes.
    ("P0v3", 4 * GIB),
    ("P1v3", 8 * GIB),
    ("P2v3", 16 * GIB),
    ("P3v3", 32 * GIB),
    ("P1mv3", 16 * GIB),
    ("P2mv3", 32 * GIB),
    ("P3mv3", 64 * GIB),
    ("P4mv3", 128 * GIB),
    ("P5mv3", 256 * GIB),
    // Isolated (v1) and IsolatedV2.
    ("I1", 3584 * MIB),
    ("I2", 7 * GIB),
    ("I3", 14 * GIB),
    ("I1v2", 8 * GIB),
    ("I2v2", 16 * GIB),
    ("I3v2", 32 * GIB),
    ("I4v2", 64 * GIB),
    ("I5v2", 128 * GIB),
    ("I6v2", 256 * GIB),
    // Functions: Elastic Premium, and Consumption's 1.5 GB per instance.
    ("EP1", 3584 * MIB),
    ("EP2", 7 * GIB),
    ("EP3", 14 * GIB),
    ("Y1", 1536 * MIB),
];

/// The limits of one instance of a plan with SKU `sku_name`.
pub fn sku_limits(sku_name: &str) -> CgroupLimits {
    let memory_bytes = SKU_MEMORY
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(sku_name))
        .map(|(_, bytes)| *bytes)
        .unwrap_or(DEFAULT_MEMORY_BYTES);
    CgroupLimits {
        memory_bytes,
        pids_max: PIDS_MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gib(sku: &str) -> f64 {
        sku_limits(sku).memory_bytes as f64 / GIB as f64
    }

    #[test]
    fn memory_per_instance_as_azure_publishes_it() {
        for (sku, want) in [
            ("F1", 1.0),
            ("B1", 1.75),
            ("S1", 1.75),
            ("B2", 3.5),
            ("S2", 3.5),
            ("P1v2", 3.5),
            ("B3", 7.0),
            ("S3", 7.0),
            ("P2v2", 7.0),
            ("P3v2", 14.0),
            ("P0v3", 4.0),
            ("P1v3", 8.0),
            ("P2v3", 16.0),
            ("P3v3", 32.0),
            ("P1mv3", 16.0),
            ("P5mv3", 256.0),
            ("I1v2", 8.0),
            ("EP1", 3.5),
        ] {
            assert_eq!(gib(sku), want, "{sku}");
        }
    }

    #[test]
    fn sku_names_match_in_any_case_and_unknown_ones_get_the_smallest_dedicated_size() {
        assert_eq!(sku_limits("p1V3"), sku_limits("P1v3"));
        assert_eq!(sku_limits("P1MV3").memory_bytes, 16 * GIB);
        assert_eq!(sku_limits("Z9").memory_bytes, sku_limits("B1").memory_bytes);
    }

    #[test]
    fn every_sku_has_the_same_process_limit() {
        assert!(SKU_MEMORY
            .iter()
            .all(|(sku, _)| sku_limits(sku).pids_max == PIDS_MAX));
        assert_eq!(PIDS_MAX, 1024);
    }

    #[test]
    fn the_table_names_each_sku_once() {
        let mut names: Vec<String> = SKU_MEMORY
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
