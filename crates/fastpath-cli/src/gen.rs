//! `fastpath gen`: send Ethernet/IPv4/UDP frames out of an interface, as fast as the kernel
//! allows (XDP live frames) or at a given rate. The work is in `fastpath_lab::gen`.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use fastpath_lab::gen::{self, FrameSpec, GenConfig, Method, MethodChoice};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Interface to send on (in the current network namespace).
    #[arg(short = 'i', long = "interface")]
    interface: String,
    /// Frames per second (default: as fast as possible).
    #[arg(long = "rate", value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// Stop after this many frames.
    #[arg(short = 'c', long = "count", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long = "duration", value_parser = crate::parse_secs)]
    duration: Option<Duration>,
    /// Frame size in bytes as the receiver sees it (FCS excluded), 60 to 1514.
    #[arg(long = "size", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(gen::MIN_SIZE as i64..=gen::MAX_SIZE as i64))]
    size: u16,
    /// Number of flows: distinct UDP source ports (1024, 1025, ...), one per live-frames call
    /// or per frame (af-packet), round robin.
    #[arg(long = "flows", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=i64::from(gen::MAX_FLOWS)))]
    flows: u16,
    /// Destination MAC (default 02:00:00:00:00:02: nobody's, so receivers drop the frames
    /// right after the capture taps).
    #[arg(long = "dst-mac", value_parser = parse_mac)]
    dst_mac: Option<[u8; 6]>,
    /// Destination IPv4 address.
    #[arg(long = "dst-ip", default_value_t = gen::DEFAULT_DST_IP)]
    dst_ip: Ipv4Addr,
    /// Transmit method: auto (XDP live frames, AF_PACKET if they do not work), xdp-live or
    /// af-packet.
    #[arg(long = "method", default_value = "auto", value_parser = ["auto", "xdp-live", "af-packet"])]
    method: String,
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`).
pub(crate) fn parse_mac(s: &str) -> std::result::Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || format!("`{s}` is not a MAC address (write it as 02:00:00:00:00:02)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

pub(crate) fn run(args: Args) -> Result<()> {
    let mut frames = FrameSpec::new(usize::from(args.size));
    frames.flows = args.flows;
    frames.dst_mac = args.dst_mac.unwrap_or(gen::DEFAULT_DST_MAC);
    frames.dst_ip = args.dst_ip;
    let mut cfg = GenConfig::new(&args.interface, frames);
    cfg.rate = args.rate;
    cfg.count = args.count;
    cfg.duration = args.duration;
    cfg.method = match args.method.as_str() {
        "xdp-live" => MethodChoice::Only(Method::XdpLive),
        "af-packet" => MethodChoice::Only(Method::AfPacket),
        _ => MethodChoice::Auto,
    };
    let stop = crate::stop_flag()?;
    let sent = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let report = thread::scope(|s| {
        // Once a second: what was sent in the last second.
        s.spawn(|| {
            let (mut last, mut t) = (0u64, Instant::now());
            while !done.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(100));
                if t.elapsed() >= Duration::from_secs(1) {
                    let now = sent.load(Ordering::Relaxed);
                    let rate = (now - last) as f64 / t.elapsed().as_secs_f64();
                    eprintln!("fastpath gen: {now} frames, {:.2} Mpps", rate / 1e6);
                    (last, t) = (now, Instant::now());
                }
            }
        });
        let r = gen::run(&cfg, &stop, &sent);
        done.store(true, Ordering::Relaxed);
        r
    })?;
    if let Some(why) = &report.fallback_reason {
        eprintln!("fastpath gen: fell back to AF_PACKET: {why}");
    }
    println!(
        "sent {} frames of {} bytes in {:.3} s: {:.3} Mpps (method {})",
        report.sent,
        args.size,
        report.elapsed.as_secs_f64(),
        report.rate() / 1e6,
        report.method.name()
    );
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("02:00:00:00:00:02"), Ok([2, 0, 0, 0, 0, 2]));
        assert_eq!(
            parse_mac("aa-BB-cc-dd-ee-0f"),
            Ok([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f])
        );
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:zz").is_err());
        assert!(parse_mac("002:00:00:00:00:02").is_err());
    }
}
