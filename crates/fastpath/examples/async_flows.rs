//! An async flow counter (cargo feature `tokio`): packets and bytes per IPv4 TCP/UDP flow for a
//! few seconds, received with `AsyncReceiver::recv().await`, then the busiest flows.
//!
//! `cargo run --example async_flows --features tokio -- eth0 5` (as root).
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use fastpath::{AsyncReceiver, Config, Receiver};

/// Protocol, source and destination address and port.
type Flow = (u8, Ipv4Addr, u16, Ipv4Addr, u16);

/// The flow of an Ethernet frame carrying IPv4 TCP or UDP (first fragment), if it is one.
fn flow(frame: &[u8]) -> Option<Flow> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let proto = *ip.get(9)?;
    if !(proto == 6 || proto == 17) || ihl < 20 {
        return None;
    }
    let addr = |at: usize| -> Option<Ipv4Addr> {
        let b: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    };
    let port = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(ip.get(at..at + 2)?.try_into().ok()?))
    };
    Some((proto, addr(12)?, port(ihl)?, addr(16)?, port(ihl + 2)?))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> fastpath::Result<()> {
    let mut args = std::env::args().skip(1);
    let iface = args.next().unwrap_or_else(|| "lo".into());
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let rx = Receiver::open(&Config::new(iface).snaplen(128))?;
    let mut rx = AsyncReceiver::new(rx).map_err(|e| e.error)?;
    let mut flows: HashMap<Flow, (u64, u64)> = HashMap::new();
    let end = tokio::time::sleep(Duration::from_secs(secs));
    tokio::pin!(end);
    loop {
        tokio::select! {
            () = &mut end => break,
            batch = rx.recv() => {
                for pkt in &batch? {
                    if let Some(f) = flow(pkt.data()) {
                        let e = flows.entry(f).or_default();
                        e.0 += 1;
                        e.1 += u64::from(pkt.orig_len());
                    }
                }
            }
        }
    }
    let mut top: Vec<_> = flows.into_iter().collect();
    top.sort_by_key(|(_, (_, bytes))| std::cmp::Reverse(*bytes));
    for ((proto, src, sport, dst, dport), (pkts, bytes)) in top.iter().take(10) {
        let p = if *proto == 6 { "tcp" } else { "udp" };
        println!("{p} {src}:{sport} > {dst}:{dport}: {pkts} packets, {bytes} bytes");
    }
    let st = rx.stats()?;
    println!("kernel: {} received, {} dropped", st.received, st.dropped);
    Ok(())
}
