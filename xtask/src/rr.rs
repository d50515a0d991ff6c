//! A tiny TCP request/response tester for the datapath benchmark (iperf3 has
//! no RR mode): `xtask rr-server PORT [LIFETIME_S]` echoes every byte it
//! reads; `xtask rr-client IP PORT COUNT [CONNECTS]` does COUNT 1-byte
//! ping-pongs over one connection, then CONNECTS fresh connections, and
//! prints one JSON line with the percentiles in microseconds.
//!
//! Both ends busy-poll their sockets instead of sleeping in `read`: a round
//! trip then measures the datapath, not how long the scheduler takes to wake
//! a process on an idle virtual CPU (measured on the direct veth pair: p50
//! 14 us while the machine was busy, 66 us while it was idle, when blocking).
//!
//! Run inside a lab's namespaces with `vnet-agent exec` or `ip netns exec`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::stats::percentile;

/// Round trips and connects that are made first and not counted (ARP,
/// routes, caches, the first conntrack entries).
const WARMUP: usize = 100;
const CONNECT_WARMUP: usize = 20;
/// Any one connect, read or write.
const IO_LIMIT: Duration = Duration::from_secs(5);
const DEFAULT_LIFETIME: Duration = Duration::from_secs(120);

/// `rr-server PORT [LIFETIME_S]`: listens on every address, prints
/// `listening on PORT`, echoes; exits by itself after LIFETIME_S (default
/// 120 s) so a forgotten server never outlives the benchmark for long.
pub fn server(args: &[&str]) -> Result<()> {
    let (port, lifetime) = match args {
        [port] => (*port, DEFAULT_LIFETIME),
        [port, secs] => (
            *port,
            Duration::from_secs(secs.parse().context("LIFETIME_S")?),
        ),
        _ => bail!("usage: xtask rr-server PORT [LIFETIME_S]"),
    };
    let port: u16 = port.parse().context("PORT")?;
    let listener = TcpListener::bind(("0.0.0.0", port)).with_context(|| format!("bind :{port}"))?;
    std::thread::spawn(move || {
        std::thread::sleep(lifetime);
        eprintln!("rr-server: lifetime of {} s over", lifetime.as_secs());
        std::process::exit(0);
    });
    println!("listening on {port}");
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = echo(stream);
        });
    }
    Ok(())
}

fn echo(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    let mut buf = [0u8; 64];
    loop {
        let n = spin(|| s.read(&mut buf))?;
        if n == 0 {
            return Ok(());
        }
        let mut sent = 0;
        while sent < n {
            sent += spin(|| s.write(&buf[sent..n]))?;
        }
    }
}

/// Retries a non-blocking socket call until it does not `WouldBlock`.
fn spin<T>(mut op: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            other => return other,
        }
    }
}

/// `rr-client IP PORT COUNT [CONNECTS]`.
pub fn client(args: &[&str]) -> Result<()> {
    let (ip, port, count, connects) = match args {
        [ip, port, count] => (*ip, *port, *count, "0"),
        [ip, port, count, connects] => (*ip, *port, *count, *connects),
        _ => bail!("usage: xtask rr-client IP PORT COUNT [CONNECTS]"),
    };
    let ip: IpAddr = ip.parse().context("IP")?;
    let addr = SocketAddr::new(ip, port.parse().context("PORT")?);
    let count: usize = count.parse().context("COUNT")?;
    let connects: usize = connects.parse().context("CONNECTS")?;
    ensure!(count > 0, "COUNT must be at least 1");

    let rr = round_trips(addr, count)?;
    let conn = connect_times(addr, connects)?;
    println!("{}", report(&rr, &conn));
    Ok(())
}

/// Microseconds of each of `count` 1-byte round trips over one connection.
fn round_trips(addr: SocketAddr, count: usize) -> Result<Vec<f64>> {
    let mut s = TcpStream::connect_timeout(&addr, IO_LIMIT)
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    let mut samples = Vec::with_capacity(count);
    let mut b = [0u8; 1];
    for i in 0..WARMUP + count {
        let t = Instant::now();
        let within = |what: &str| {
            ensure!(
                t.elapsed() < IO_LIMIT,
                "{what} took over {} s",
                IO_LIMIT.as_secs()
            );
            Ok(())
        };
        while spin_until(|| s.write(&[i as u8]), &within, "the write")? == 0 {}
        let n = spin_until(|| s.read(&mut b), &within, "the echo")?;
        ensure!(n == 1, "the server closed the connection");
        let us = t.elapsed().as_secs_f64() * 1e6;
        ensure!(b[0] == i as u8, "echo of {} came back as {}", i as u8, b[0]);
        if i >= WARMUP {
            samples.push(us);
        }
    }
    Ok(samples)
}

/// `spin`, but gives up when `within` says the time is over.
fn spin_until<T>(
    mut op: impl FnMut() -> std::io::Result<T>,
    within: &dyn Fn(&str) -> Result<()>,
    what: &str,
) -> Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                within(what)?;
                std::hint::spin_loop();
            }
            other => return other.with_context(|| what.to_string()),
        }
    }
}

/// Microseconds each of `connects` new connections took to be established
/// (SYN to SYN-ACK: where a new flow meets the NSG rules).
fn connect_times(addr: SocketAddr, connects: usize) -> Result<Vec<f64>> {
    let warmup = if connects > 0 { CONNECT_WARMUP } else { 0 };
    let mut samples = Vec::with_capacity(connects);
    for i in 0..warmup + connects {
        let t = Instant::now();
        let s = TcpStream::connect_timeout(&addr, IO_LIMIT)
            .with_context(|| format!("connect {} to {addr}", i + 1))?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        drop(s);
        if i >= warmup {
            samples.push(us);
        }
    }
    Ok(samples)
}

/// The client's one line of output.
fn report(rr: &[f64], connects: &[f64]) -> Value {
    let opt = |v: f64| if v.is_nan() { Value::Null } else { json!(v) };
    json!({
        "roundTrips": rr.len(),
        "rrP50Us": opt(percentile(rr, 50.0)),
        "rrP99Us": opt(percentile(rr, 99.0)),
        "connects": connects.len(),
        "connectP50Us": opt(percentile(connects, 50.0)),
        "connectP99Us": opt(percentile(connects, 99.0)),
    })
}
