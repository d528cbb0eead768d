//! Rung 1, batched: one `recvmmsg` per up to 64 packets. `cargo run --example recv_batch -- eth0`.
use std::time::Duration;

use fastpath::{Backend, Config, Receiver};

fn main() -> fastpath::Result<()> {
    let iface = std::env::args().nth(1).unwrap_or_else(|| "lo".into());
    let cfg = Config::new(iface)
        .backend(Backend::RecvBatch)
        .batch_size(64);
    let mut rx = Receiver::open(&cfg)?;
    let mut n = 0u64;
    while n < 1000 {
        let batch = rx.recv(Some(Duration::from_secs(1)))?;
        n += batch.len() as u64;
        let bytes: usize = batch.iter().map(|p| p.data().len()).sum();
        if !batch.is_empty() {
            println!("{} packets, {bytes} bytes in one syscall", batch.len());
        }
    }
    Ok(())
}
