//! Several cores: N mmap sockets in one PACKET_FANOUT group, one thread each.
//! `cargo run --example fanout -- eth0 2`.
use std::time::Duration;

use fastpath::{Backend, Config, FanoutMode, Stats};

fn main() -> fastpath::Result<()> {
    let mut args = std::env::args().skip(1);
    let iface = args.next().unwrap_or_else(|| "lo".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let rxs = fastpath::open_fanout(
        &Config::new(iface).backend(Backend::Mmap),
        n,
        FanoutMode::Hash,
    )?;
    let handles: Vec<_> = rxs
        .into_iter()
        .map(|mut rx| {
            std::thread::spawn(move || -> fastpath::Result<Stats> {
                for _ in 0..50 {
                    rx.recv(Some(Duration::from_millis(100)))?.release();
                }
                rx.stats()
            })
        })
        .collect();
    let mut total = Stats::default();
    for h in handles {
        total.merge(&h.join().expect("receive thread")?);
    }
    println!("merged: {total:?}");
    Ok(())
}
