//! A BGP speaker's configuration as data, and its BIRD 2 text. Pure.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// One BGP daemon: a virtual network gateway or an on-premises router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Speaker {
    /// What it stands for, in words (a comment at the top of the file).
    pub what: String,
    pub router_id: Ipv4Addr,
    /// Groups of prefixes it originates. Each is its own static protocol,
    /// so an operator can withdraw and announce it at run time with
    /// `birdc disable <name>` / `birdc enable <name>`.
    pub announcements: Vec<Announcement>,
    pub sessions: Vec<Session>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announcement {
    /// BIRD protocol name (`[a-z0-9_]`).
    pub name: String,
    pub prefixes: Vec<Ipv4Net>,
}

/// An eBGP session over one connection's link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// BIRD protocol name (`[a-z0-9_]`).
    pub name: String,
    /// The connection it belongs to, in words.
    pub description: String,
    pub local_address: Ipv4Addr,
    pub local_asn: u32,
    pub peer_address: Ipv4Addr,
    pub peer_asn: u32,
    /// The link the peer is behind (the connection's veth end).
    pub ifname: String,
}

/// The announcement name of one prefix: `lan_172_20_5_0_24`.
pub fn announcement_name(kind: &str, prefix: Ipv4Net) -> String {
    format!(
        "{kind}_{}_{}",
        prefix.addr().to_string().replace('.', "_"),
        prefix.prefix_len()
    )
}

impl Speaker {
    /// The BIRD 2 configuration. Sessions are multihop with their peer
    /// resolved over the connection's link (Azure's VPN BGP peers are not on
    /// a shared subnet: on-premises devices are told to allow eBGP
    /// multihop). Learned routes go to the kernel's main table (the
    /// forwarding of the namespace, and what the agent watches); a speaker
    /// passes on what it originates and what it learned, so a gateway is a
    /// transit between its sites, as Azure's is. Timers are short so a lab
    /// converges in a second, not minutes.
    pub fn bird_conf(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# {} (written by vnet-agent; changes are overwritten)",
            self.what
        );
        let _ = writeln!(s, "router id {};", self.router_id);
        s.push_str("log stderr { info, remote, warning, error, auth, fatal, bug };\n");
        s.push_str("protocol device { scan time 10; }\n");
        s.push_str("ipv4 table peers4;\n");
        if !self.sessions.is_empty() {
            s.push_str("protocol static peers {\n  ipv4 { table peers4; };\n");
            let mut seen = Vec::new();
            for x in &self.sessions {
                if !seen.contains(&x.peer_address) {
                    seen.push(x.peer_address);
                    let _ = writeln!(s, "  route {}/32 via \"{}\";", x.peer_address, x.ifname);
                }
            }
            s.push_str("}\n");
        }
        for a in &self.announcements {
            let _ = writeln!(s, "protocol static {} {{\n  ipv4;", a.name);
            for p in &a.prefixes {
                let _ = writeln!(s, "  route {p} blackhole;");
            }
            s.push_str("}\n");
        }
        s.push_str(
            "protocol kernel {\n  ipv4 { import none; export where source = RTS_BGP; };\n}\n",
        );
        for x in &self.sessions {
            let _ = write!(
                s,
                "protocol bgp {name} {{\n  description \"{desc}\";\n  local {la} as {las};\n  \
                 neighbor {pa} as {pas};\n  multihop 2;\n  \
                 connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 5;\n  \
                 hold time 9;\n  keepalive time 3;\n  \
                 ipv4 {{ igp table peers4; import all; export where source = RTS_STATIC || source = RTS_BGP; next hop self; }};\n}}\n",
                name = x.name,
                desc = x.description.replace('"', "'"),
                la = x.local_address,
                las = x.local_asn,
                pa = x.peer_address,
                pas = x.peer_asn,
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sessions_announcements_and_peer_routes() {
        let sp = Speaker {
            what: "gateway vgw1".into(),
            router_id: "10.0.255.30".parse().unwrap(),
            announcements: vec![Announcement {
                name: "vnet".into(),
                prefixes: vec![
                    "10.0.0.0/16".parse().unwrap(),
                    "10.1.0.0/16".parse().unwrap(),
                ],
            }],
            sessions: vec![Session {
                name: "conn_a".into(),
                description: "conn \"a\"".into(),
                local_address: "10.0.255.30".parse().unwrap(),
                local_asn: 65515,
                peer_address: "192.168.255.1".parse().unwrap(),
                peer_asn: 65050,
                ifname: "c-abcdef".into(),
            }],
        };
        let c = sp.bird_conf();
        assert!(c.contains("router id 10.0.255.30;"), "{c}");
        assert!(
            c.contains("route 192.168.255.1/32 via \"c-abcdef\";"),
            "{c}"
        );
        assert!(c.contains("protocol static vnet {"), "{c}");
        assert!(c.contains("route 10.1.0.0/16 blackhole;"), "{c}");
        assert!(c.contains("local 10.0.255.30 as 65515;"), "{c}");
        assert!(c.contains("neighbor 192.168.255.1 as 65050;"), "{c}");
        assert!(c.contains("description \"conn 'a'\";"), "{c}");
        assert_eq!(
            announcement_name("lan", "172.20.5.0/24".parse().unwrap()),
            "lan_172_20_5_0_24"
        );
        // BIRD itself accepts it (`bird -p` parses and exits; no root, no
        // socket). scripts/install-deps.sh installs bird2 for CI.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bird.conf");
        std::fs::write(&path, &c).unwrap();
        match std::process::Command::new("bird")
            .arg("-p")
            .arg("-c")
            .arg(&path)
            .output()
        {
            Ok(out) => assert!(
                out.status.success(),
                "bird rejects the configuration: {}\n{c}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => assert!(
                std::env::var_os("VNET_E2E_REQUIRED").is_none(),
                "bird is not installed ({e}); run scripts/install-deps.sh"
            ),
        }
    }
}
