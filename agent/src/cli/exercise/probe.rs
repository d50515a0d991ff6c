//! `lab probe listen|connect|resolve`: the ends of an exercise's criterion,
//! run by `check` inside the lab's namespaces through `exec` (so with the
//! namespace's own routes, NSGs, NAT and resolv.conf).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ProbeCmd {
    /// Accept TCP connections on PORT, telling each peer the address it came from.
    Listen {
        port: u16,
        /// Connections to accept (all kept open, so a client can hold them at once).
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Connect to IP:PORT and print what the listener saw of us; with
    /// `--count N`, N connections at once, all held until every one is decided.
    Connect {
        ip: Ipv4Addr,
        port: u16,
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Resolve NAME with this namespace's resolv.conf and print its A record.
    Resolve { name: String },
}

pub fn run(cmd: ProbeCmd) -> Result<ExitCode> {
    match cmd {
        ProbeCmd::Listen { port, count } => {
            let l = TcpListener::bind(("0.0.0.0", port))?;
            println!("listening");
            std::io::stdout().flush()?;
            let mut held = Vec::new();
            for _ in 0..count.max(1) {
                let (mut s, peer) = l.accept()?;
                writeln!(s, "peer={peer}")?;
                held.push(s);
            }
            // The client decides when it is done: wait for it to close.
            for s in held {
                let _ = BufReader::new(s).read_line(&mut String::new());
            }
            Ok(ExitCode::SUCCESS)
        }
        ProbeCmd::Connect { ip, port, count } if count <= 1 => {
            let s =
                TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(1))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line)?;
            print!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        ProbeCmd::Connect { ip, port, count } => {
            // Concurrent, as an app's connection pool: every connection is
            // attempted while the others are still open (each holds its SNAT
            // port), so a port limit shows as failures.
            let attempts: Vec<_> = (0..count)
                .map(|_| {
                    std::thread::spawn(move || {
                        TcpStream::connect_timeout(
                            &SocketAddr::from((ip, port)),
                            Duration::from_secs(2),
                        )
                    })
                })
                .collect();
            let held: Vec<TcpStream> = attempts
                .into_iter()
                .filter_map(|t| t.join().ok().and_then(Result::ok))
                .collect();
            println!(
                "connected={} failed={}",
                held.len(),
                count as usize - held.len()
            );
            Ok(if held.len() == count as usize {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        ProbeCmd::Resolve { name } => {
            match crate::cli::tcpping::resolve("/etc/resolv.conf", &name)? {
                Some(ip) => {
                    println!("{ip}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    println!("no A record");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
