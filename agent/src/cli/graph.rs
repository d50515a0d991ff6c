//! `vnet-agent lab graph [-g RG] -o dot|mermaid|html|json [--serve PORT]`:
//! the lab's topology. `--serve` listens on 127.0.0.1 only and serves the
//! HTML page and its live counters (both asked of the daemon per request).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::output::OutputFormat;
use super::Global;
use crate::api::client::{encode, request_raw};

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Only what belongs to this resource group.
    #[arg(short = 'g', long = "resource-group")]
    resource_group: Option<String>,
    /// Serve the HTML page with live counters on 127.0.0.1:PORT until stopped.
    #[arg(long)]
    serve: Option<u16>,
}

fn path(what: &str, format: &str, group: &Option<String>) -> String {
    let mut p = format!("/lab/graph{what}?format={format}");
    if let Some(g) = group {
        p.push_str(&format!("&resourceGroup={}", encode(g)));
    }
    p
}

/// The daemon's answer, or its error printed (`None`).
fn fetch(g: &Global, path: &str) -> Result<Option<Vec<u8>>> {
    let (status, body) = request_raw(&g.socket(), &g.principal, "GET", path, None)?;
    if status == 200 {
        return Ok(Some(body));
    }
    let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    super::print_error(&v);
    Ok(None)
}

pub fn run(g: &Global, a: GraphArgs) -> Result<ExitCode> {
    if let Some(port) = a.serve {
        return serve(g, &a, port);
    }
    let format = match g.output {
        Some(OutputFormat::Dot) => "dot",
        Some(OutputFormat::Mermaid) => "mermaid",
        Some(OutputFormat::Html) => "html",
        _ => "json",
    };
    let Some(body) = fetch(g, &path("", format, &a.resource_group))? else {
        return Ok(ExitCode::FAILURE);
    };
    std::io::stdout().write_all(&body)?;
    Ok(ExitCode::SUCCESS)
}

fn serve(g: &Global, a: &GraphArgs, port: u16) -> Result<ExitCode> {
    // Check the graph can be drawn before listening.
    if fetch(g, &path("", "json", &a.resource_group))?.is_none() {
        return Ok(ExitCode::FAILURE);
    }
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    println!("serving the lab graph on http://127.0.0.1:{port}/");
    std::io::stdout().flush()?;
    let allowed = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut first = String::new();
        if reader.read_line(&mut first).is_err() {
            continue;
        }
        let mut host = String::new();
        loop {
            let mut l = String::new();
            if reader.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("host") {
                    host = v.trim().to_string();
                }
            }
        }
        let target = first.split_whitespace().nth(1).unwrap_or("/");
        // DNS rebinding: a page of another origin must not read the lab.
        let (status, ty, body): (&str, &str, Vec<u8>) = if !allowed.contains(&host) {
            (
                "421 Misdirected Request",
                "text/plain",
                b"only 127.0.0.1 and localhost are served\n".to_vec(),
            )
        } else if target == "/" || target.starts_with("/?") {
            match fetch(g, &path("", "html", &a.resource_group))? {
                Some(b) => ("200 OK", "text/html; charset=utf-8", b),
                None => (
                    "502 Bad Gateway",
                    "text/plain",
                    b"the daemon refused\n".to_vec(),
                ),
            }
        } else if target.starts_with("/counters") {
            match fetch(g, &path("/counters", "json", &a.resource_group))? {
                Some(b) => ("200 OK", "application/json", b),
                None => (
                    "502 Bad Gateway",
                    "text/plain",
                    b"the daemon refused\n".to_vec(),
                ),
            }
        } else {
            ("404 Not Found", "text/plain", b"not found\n".to_vec())
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|_| stream.write_all(&body));
    }
    Ok(ExitCode::SUCCESS)
}
