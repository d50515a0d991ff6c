//! `vnet-agent webapp nameresolver`: what an app resolves, as Kudu's
//! `nameresolver.exe host` shows it (AZURE-FACTS §5.5): a real query sent from
//! inside the app's sandbox to the servers of its resolv.conf, in order, the
//! first that answers wins; the server used, the addresses and the aliases.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{json, Value};

use super::output::OutputFormat;
use super::Global;
use crate::api::client::encode;

#[derive(Args, Debug)]
pub struct NameresolverArgs {
    /// The site (web app) name or id.
    #[arg(long)]
    app: String,
    /// The plan instance (0-based) whose sandbox asks.
    #[arg(long, default_value_t = 0)]
    instance: u32,
    /// The name to resolve.
    name: String,
    /// Record type: A, AAAA, CNAME, TXT, ...
    #[arg(long = "type", default_value = "A")]
    rtype: String,
}

pub fn run(g: &Global, args: NameresolverArgs) -> Result<ExitCode> {
    let rtype: RecordType = args
        .rtype
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown record type {:?}", args.rtype))?;
    let query = format!("app={}&instance={}", encode(&args.app), args.instance);
    // The resolv.conf is read after entering: it is a file of the agent's
    // state directory, the same in every network namespace.
    let Some(spec) = super::exec::enter(&g.socket(), &g.principal, &query)? else {
        return Ok(ExitCode::FAILURE);
    };
    let resolv = spec["resolvConf"]
        .as_str()
        .context("the app's sandbox has no resolv.conf yet")?;
    let servers =
        nameservers(&std::fs::read_to_string(resolv).with_context(|| format!("reading {resolv}"))?);
    if servers.is_empty() {
        bail!("{resolv} names no nameserver");
    }
    let name = Name::from_ascii(if args.name.ends_with('.') {
        args.name.clone()
    } else {
        format!("{}.", args.name)
    })
    .with_context(|| format!("{:?} is not a DNS name", args.name))?;
    for server in &servers {
        if let Some(answer) = crate::dns::client::ask(*server, &name, rtype, None)? {
            let v = summary(*server, &args.name, rtype, &answer);
            match g.output {
                Some(OutputFormat::Table) => print!("{}", kudu_text(&v)),
                _ => g.print(&v)?,
            }
            return Ok(
                if v["status"] == "NOERROR" && !v["answers"].as_array().is_some_and(Vec::is_empty) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            );
        }
        eprintln!("*** Request to {server} timed-out");
    }
    Ok(ExitCode::FAILURE)
}

/// The `nameserver` addresses of a resolv.conf, in order.
pub fn nameservers(text: &str) -> Vec<Ipv4Addr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// One query to `server`: UDP, then TCP when the answer is truncated.
/// The answer as JSON: status, answer records, addresses and aliases.
fn summary(server: Ipv4Addr, asked: &str, rtype: RecordType, m: &Message) -> Value {
    let status = match u16::from(m.metadata.response_code) {
        0 => "NOERROR".to_string(),
        2 => "SERVFAIL".to_string(),
        3 => "NXDOMAIN".to_string(),
        _ => m.metadata.response_code.to_string().to_ascii_uppercase(),
    };
    let mut addresses = Vec::new();
    let mut aliases = Vec::new();
    let answers: Vec<Value> = m
        .answers
        .iter()
        .map(|r| {
            let data = match &r.data {
                RData::A(a) => {
                    addresses.push(a.0.to_string());
                    a.0.to_string()
                }
                RData::AAAA(a) => {
                    addresses.push(a.0.to_string());
                    a.0.to_string()
                }
                RData::CNAME(c) => {
                    aliases.push(trim_dot(&r.name.to_ascii()));
                    trim_dot(&c.0.to_ascii())
                }
                other => other.to_string(),
            };
            json!({ "name": trim_dot(&r.name.to_ascii()), "type": r.record_type().to_string(),
                    "ttl": r.ttl, "data": data })
        })
        .collect();
    json!({
        "server": server.to_string(),
        "name": trim_dot(asked),
        "type": rtype.to_string(),
        "status": status,
        "answers": answers,
        "addresses": addresses,
        "aliases": aliases,
    })
}

fn trim_dot(s: &str) -> String {
    s.trim_end_matches('.').to_string()
}

/// Kudu's text: `Server:`, then `Addresses:` and `Aliases:` blocks (the
/// portal parses `/Addresses:\s*([\S\s]*)Aliases:\s*([\S\s]*)$/`).
fn kudu_text(v: &Value) -> String {
    let list = |k: &str| {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|s| format!("\t{s}\n"))
                    .collect::<String>()
            })
            .unwrap_or_default()
    };
    let server = v["server"].as_str().unwrap_or_default();
    if v["status"] != "NOERROR" || v["answers"].as_array().is_some_and(Vec::is_empty) {
        return format!(
            "Server: {server}\n\n*** {server} can't find {}: {}\n",
            v["name"].as_str().unwrap_or_default(),
            v["status"].as_str().unwrap_or_default()
        );
    }
    format!(
        "Server: {server}\n\nNon-authoritative answer:\nName: {}\nAddresses: \n{}Aliases: \n{}",
        v["name"].as_str().unwrap_or_default(),
        list("addresses"),
        list("aliases")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameservers_in_order() {
        let text = "# x\nnameserver 10.0.2.4\nnameserver  168.63.129.16\noptions timeout:1\nnameserver bad\n";
        assert_eq!(
            nameservers(text),
            vec![
                "10.0.2.4".parse::<Ipv4Addr>().unwrap(),
                "168.63.129.16".parse().unwrap()
            ]
        );
    }

    #[test]
    fn kudu_text_has_the_blocks_the_portal_parses() {
        let v = json!({"server": "168.63.129.16", "name": "s.blob.core.windows.net", "status": "NOERROR",
            "answers": [{}], "addresses": ["10.0.2.10"], "aliases": ["s.blob.core.windows.net"]});
        let t = kudu_text(&v);
        assert!(t.starts_with("Server: 168.63.129.16\n"), "{t}");
        let (_, rest) = t.split_once("Addresses:").unwrap();
        let (addrs, aliases) = rest.split_once("Aliases:").unwrap();
        assert_eq!(addrs.trim(), "10.0.2.10");
        assert_eq!(aliases.trim(), "s.blob.core.windows.net");
    }
}
