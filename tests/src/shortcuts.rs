//! Lab shortcuts the end-to-end tests repeat: the private DNS and private
//! endpoint commands, effective route tables, a reconcile that must write
//! nothing, and DNS queries from inside a lab namespace (dig, glibc's getent).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{kernel_writes, Lab};

/// `network private-endpoint create -g RG -n NAME` in `vnet`/`subnet` to
/// `group` of resource `target` (an id), connection `conn1`.
pub fn private_endpoint_create_args<'a>(
    rg: &'a str,
    name: &'a str,
    vnet: &'a str,
    subnet: &'a str,
    target: &'a str,
    group: &'a str,
) -> Vec<&'a str> {
    vec![
        "network",
        "private-endpoint",
        "create",
        "-g",
        rg,
        "-n",
        name,
        "--vnet-name",
        vnet,
        "--subnet",
        subnet,
        "--private-connection-resource-id",
        target,
        "--group-id",
        group,
        "--connection-name",
        "conn1",
    ]
}

fn subnet_routes_args<'a>(rg: &'a str, vnet: &'a str, subnet: &'a str) -> Vec<&'a str> {
    vec![
        "network",
        "vnet",
        "subnet",
        "show-effective-route-table",
        "-g",
        rg,
        "--vnet-name",
        vnet,
        "-n",
        subnet,
    ]
}

impl Lab {
    /// `network private-dns zone create`.
    pub fn create_private_dns_zone(&self, rg: &str, zone: &str) {
        self.cli_ok(&[
            "network",
            "private-dns",
            "zone",
            "create",
            "-g",
            rg,
            "-n",
            zone,
        ]);
    }

    /// `network private-dns link vnet create`: links `zone` to `vnet`.
    pub fn link_private_dns_zone(&self, rg: &str, zone: &str, link: &str, vnet: &str) {
        self.cli_ok(&[
            "network",
            "private-dns",
            "link",
            "vnet",
            "create",
            "-g",
            rg,
            "-z",
            zone,
            "-n",
            link,
            "-v",
            vnet,
        ]);
    }

    /// `network private-dns record-set a add-record`: `name` -> `ip` in `zone`.
    pub fn add_a_record(&self, rg: &str, zone: &str, name: &str, ip: &str) {
        self.cli_ok(&[
            "network",
            "private-dns",
            "record-set",
            "a",
            "add-record",
            "-g",
            rg,
            "-z",
            zone,
            "-n",
            name,
            "-a",
            ip,
        ]);
    }

    /// `network private-endpoint dns-zone-group create`: group `default` of
    /// endpoint `pe` registering it in `zone` (config name `zone_name`).
    pub fn create_zone_group(&self, rg: &str, pe: &str, zone: &str, zone_name: &str) {
        self.cli_ok(&[
            "network",
            "private-endpoint",
            "dns-zone-group",
            "create",
            "-g",
            rg,
            "--endpoint-name",
            pe,
            "-n",
            "default",
            "--private-dns-zone",
            zone,
            "--zone-name",
            zone_name,
        ]);
    }

    /// `network private-endpoint delete`.
    pub fn delete_private_endpoint(&self, rg: &str, name: &str) {
        self.cli_ok(&[
            "network",
            "private-endpoint",
            "delete",
            "-g",
            rg,
            "-n",
            name,
        ]);
    }

    /// `network nic show-effective-route-table` of NIC `nic`.
    pub fn nic_effective_routes(&self, rg: &str, nic: &str) -> Value {
        self.cli_json(&[
            "network",
            "nic",
            "show-effective-route-table",
            "-g",
            rg,
            "-n",
            nic,
        ])
    }

    /// `network vnet subnet show-effective-route-table` of `vnet`/`subnet`.
    pub fn subnet_effective_routes(&self, rg: &str, vnet: &str, subnet: &str) -> Value {
        self.cli_json(&subnet_routes_args(rg, vnet, subnet))
    }

    /// The same as a table (`-o table`), as the CLI prints it.
    pub fn subnet_effective_routes_table(&self, rg: &str, vnet: &str, subnet: &str) -> String {
        let mut args = subnet_routes_args(rg, vnet, subnet);
        args.extend(["-o", "table"]);
        self.cli_ok(&args)
    }

    /// `lab reconcile` right after the last change writes nothing to the
    /// kernel (level-triggered).
    #[track_caller]
    pub fn assert_reconcile_writes_nothing(&self) {
        let again = self.cli_json(&["lab", "reconcile"]);
        assert_eq!(kernel_writes(&again["reconcile"]), 0, "{again}");
    }

    /// `dig +short` from `target`; the answer lines.
    pub fn dig_short(&self, target: &[&str], args: &[&str]) -> Vec<String> {
        let mut cmd = vec!["dig", "+short", "+time=2", "+tries=2"];
        cmd.extend_from_slice(args);
        self.exec_ok(target, &cmd)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The status dig reports from `target` (`NOERROR`, `NXDOMAIN`, ...).
    pub fn dig_status(&self, target: &[&str], args: &[&str]) -> String {
        let mut cmd = vec!["dig", "+time=2", "+tries=2"];
        cmd.extend_from_slice(args);
        let out = self.exec_ok(target, &cmd);
        out.split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or_else(|| panic!("no status in dig output: {out}"))
            .to_string()
    }

    /// `getent hosts NAME` in `target` (glibc through its resolv.conf): the
    /// first address, or None when the name does not resolve.
    pub fn getent(&self, target: &[&str], name: &str) -> Option<String> {
        let out = self.exec(target, &["getent", "hosts", name]);
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
    }

    /// Waits (up to 10 s) until `name` resolves in `target`: a supervised DNS
    /// server (dnsmasq in a VM) needs a moment to start after the deploy.
    /// Panics when it never does, so a later check cannot pass by accident.
    #[track_caller]
    pub fn wait_for_name(&self, target: &[&str], name: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.getent(target, name).is_none() {
            assert!(
                Instant::now() < deadline,
                "{name} does not resolve in {target:?} after 10 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
