//! vnet-probe: the traffic end of the end-to-end tests. Servers tell each
//! client which source address they saw; clients print it. Every loop is
//! bounded in count and time, and only ever targets the addresses it is given
//! (lab addresses inside the test's own namespaces).
//!
//!   vnet-probe serve-tcp PORT          accept; write "peer=IP:PORT\n"; then echo lines
//!   vnet-probe serve-udp PORT          answer each datagram with "peer=IP:PORT"
//!   vnet-probe serve-http PORT         answer each HTTP request with one JSON line: the
//!                                      instance (WEBSITE_INSTANCE_ID), the TCP peer, the
//!                                      Host and X-Forwarded-For headers
//!   vnet-probe tcp IP PORT [MS]        connect (timeout MS, default 2000); print the server's line
//!   vnet-probe udp IP PORT [MS]        send one datagram; print the answer
//!   vnet-probe hold IP PORT COUNT MS   one connection: COUNT lines, one every MS, each echoed
//!   vnet-probe many IP PORT N [MS]     N connections at once, all held open; prints connected=X failed=Y
//!   vnet-probe sink PORT               accept; read to EOF, checking the pattern of `send`;
//!                                      answer "received=N intact=BOOL peer=IP:PORT"
//!   vnet-probe send IP PORT BYTES      one connection: BYTES of the pattern, in 1 MiB writes;
//!                                      print the sink's answer

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let ms = |i: usize, d: u64| {
        Duration::from_millis(args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d))
    };
    let result = match a(0) {
        "serve-tcp" => serve_tcp(a(1)),
        "serve-udp" => serve_udp(a(1)),
        "serve-http" => serve_http(a(1)),
        "tcp" => tcp(a(1), a(2), ms(3, 2000)),
        "udp" => udp(a(1), a(2), ms(3, 2000)),
        "hold" => hold(a(1), a(2), a(3).parse().unwrap_or(10), ms(4, 100)),
        "many" => many(a(1), a(2), a(3).parse().unwrap_or(10), ms(4, 1500)),
        "sink" => sink(a(1)),
        "send" => send(a(1), a(2), a(3).parse().unwrap_or(0)),
        _ => Err("usage: vnet-probe serve-tcp|serve-udp|tcp|udp|hold|many|sink|send ...".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vnet-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

type R = Result<(), String>;

fn addr(ip: &str, port: &str) -> Result<SocketAddr, String> {
    format!("{ip}:{port}")
        .parse()
        .map_err(|e| format!("bad address {ip}:{port}: {e}"))
}

/// Listens on TCP `port`; each connection gets a thread running `handle`
/// with the stream and its peer ("IP:PORT").
fn serve(port: &str, handle: fn(TcpStream, String)) -> R {
    let l = TcpListener::bind(addr("0.0.0.0", port)?).map_err(|e| e.to_string())?;
    println!("listening tcp {port}");
    for conn in l.incoming() {
        let Ok(s) = conn else { continue };
        let peer = s.peer_addr().map(|p| p.to_string()).unwrap_or_default();
        std::thread::spawn(move || handle(s, peer));
    }
    Ok(())
}

fn serve_tcp(port: &str) -> R {
    serve(port, |mut s, peer| {
        println!("accepted {peer}");
        if writeln!(s, "peer={peer}").is_err() {
            return;
        }
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut line = String::new();
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if s.write_all(line.as_bytes()).is_err() {
                break;
            }
            line.clear();
        }
    })
}

fn serve_http(port: &str) -> R {
    serve(port, |mut s, peer| {
        let instance = std::env::var("WEBSITE_INSTANCE_ID").unwrap_or_default();
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        loop {
            // One request: its head (no body is expected), then the answer.
            let (mut host, mut xff, mut line) = (String::new(), String::new(), String::new());
            let mut first = true;
            loop {
                line.clear();
                if r.read_line(&mut line).map(|n| n == 0).unwrap_or(true) {
                    return;
                }
                let l = line.trim_end();
                if l.is_empty() && !first {
                    break;
                }
                first = false;
                if let Some((k, v)) = l.split_once(':') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "host" => host = v.trim().to_string(),
                        "x-forwarded-for" => xff = v.trim().to_string(),
                        _ => {}
                    }
                }
            }
            let body = format!(
                "{{\"instance\":\"{instance}\",\"peer\":\"{peer}\",\"host\":\"{host}\",\"forwardedFor\":\"{xff}\"}}\n"
            );
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    })
}

fn serve_udp(port: &str) -> R {
    let s = UdpSocket::bind(addr("0.0.0.0", port)?).map_err(|e| e.to_string())?;
    println!("listening udp {port}");
    let mut buf = [0u8; 2048];
    loop {
        let (_, peer) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
        let _ = s.send_to(format!("peer={peer}").as_bytes(), peer);
    }
}

fn tcp(ip: &str, port: &str, timeout: Duration) -> R {
    let mut s = TcpStream::connect_timeout(&addr(ip, port)?, timeout)
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    let mut line = String::new();
    BufReader::new(&mut s)
        .read_line(&mut line)
        .map_err(|e| format!("read: {e}"))?;
    print!("{line}");
    Ok(())
}

fn udp(ip: &str, port: &str, timeout: Duration) -> R {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).ok();
    s.send_to(b"hello", addr(ip, port)?)
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 2048];
    let (n, _) = s.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
    println!("{}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}

fn hold(ip: &str, port: &str, count: u32, every: Duration) -> R {
    let mut s = TcpStream::connect_timeout(&addr(ip, port)?, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let local = s.local_addr().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| format!("read greeting: {e}"))?;
    print!("{line}");
    println!("local={local}");
    std::io::stdout().flush().ok();
    for i in 0..count {
        writeln!(s, "seq {i}").map_err(|e| format!("write seq {i}: {e}"))?;
        line.clear();
        r.read_line(&mut line)
            .map_err(|e| format!("echo of seq {i}: {e}"))?;
        if line.trim() != format!("seq {i}") {
            return Err(format!("echo of seq {i} was {line:?}"));
        }
        std::thread::sleep(every);
    }
    println!("held {count}");
    Ok(())
}

/// Opens `n` connections at once (one thread each, at most 1,000) and keeps
/// every successful one open until all attempts are done, so they hold their
/// source ports together: what exhausts a SNAT port range.
fn many(ip: &str, port: &str, n: u32, timeout: Duration) -> R {
    let target = addr(ip, port)?;
    let n = n.min(1000);
    let handles: Vec<_> = (0..n)
        .map(|_| std::thread::spawn(move || TcpStream::connect_timeout(&target, timeout).ok()))
        .collect();
    let conns: Vec<Option<TcpStream>> = handles
        .into_iter()
        .map(|h| h.join().ok().flatten())
        .collect();
    let ok = conns.iter().filter(|c| c.is_some()).count();
    println!("connected={ok} failed={}", n as usize - ok);
    drop(conns);
    Ok(())
}

/// Byte `i` of a bulk transfer: a pattern a reordered, lost or duplicated
/// segment would break (251 is prime, so no power-of-two window repeats it).
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

fn sink(port: &str) -> R {
    use std::io::Read;
    serve(port, |mut s, peer| {
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let (mut n, mut intact) = (0u64, true);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    intact &= buf[..k]
                        .iter()
                        .enumerate()
                        .all(|(j, &b)| b == pattern(n + j as u64));
                    n += k as u64;
                }
            }
        }
        println!("received={n} intact={intact} peer={peer}");
        let _ = writeln!(s, "received={n} intact={intact} peer={peer}");
    })
}

fn send(ip: &str, port: &str, bytes: u64) -> R {
    let mut s = TcpStream::connect_timeout(&addr(ip, port)?, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while sent < bytes {
        let k = (bytes - sent).min(buf.len() as u64) as usize;
        for (j, b) in buf[..k].iter_mut().enumerate() {
            *b = pattern(sent + j as u64);
        }
        s.write_all(&buf[..k])
            .map_err(|e| format!("write at {sent}: {e}"))?;
        sent += k as u64;
    }
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let mut line = String::new();
    BufReader::new(&mut s)
        .read_line(&mut line)
        .map_err(|e| format!("read the sink's answer: {e}"))?;
    print!("{line}");
    Ok(())
}
