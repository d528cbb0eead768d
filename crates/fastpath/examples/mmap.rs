//! Rung 2: a TPACKET_V3 ring, packets read in place. `cargo run --example mmap -- eth0`.
use std::time::Duration;

use fastpath::{Backend, Config, MmapConfig, Receiver};

fn main() -> fastpath::Result<()> {
    let iface = std::env::args().nth(1).unwrap_or_else(|| "lo".into());
    let mut ring = MmapConfig::default();
    ring.block_size = 1 << 20; // 1 MiB blocks
    ring.block_count = 16;
    ring.block_timeout = Duration::from_millis(1); // at most ~1 ms added latency
    let mut rx = Receiver::open(&Config::new(iface).backend(Backend::Mmap).mmap(ring))?;
    println!("{:?}", rx.capabilities());
    let mut n = 0u64;
    while n < 100_000 {
        // A batch is one block of the ring; it goes back to the kernel when dropped.
        let batch = rx.recv(Some(Duration::from_millis(100)))?;
        for pkt in &batch {
            n += 1;
            std::hint::black_box(pkt.data());
        }
    }
    let st = rx.stats()?;
    println!(
        "{n} packets; kernel: {} received, {} dropped",
        st.received, st.dropped
    );
    Ok(())
}
