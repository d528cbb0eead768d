//! Rung 1: one `recvmsg` per packet. `cargo run --example recv -- eth0` (as root).
use std::time::Duration;

use fastpath::{Backend, Config, Receiver};

fn main() -> fastpath::Result<()> {
    let iface = std::env::args().nth(1).unwrap_or_else(|| "lo".into());
    let mut rx = Receiver::open(&Config::new(iface).backend(Backend::Recv))?;
    let mut n = 0u64;
    while n < 10 {
        // Each call returns a batch of at most one packet, copied into fastpath's buffer.
        for pkt in &rx.recv(Some(Duration::from_secs(1)))? {
            println!(
                "{} bytes (wire {}) at {} ns",
                pkt.data().len(),
                pkt.orig_len(),
                pkt.timestamp_ns()
            );
            n += 1;
        }
    }
    let st = rx.stats()?;
    println!("kernel: {} received, {} dropped", st.received, st.dropped);
    Ok(())
}
