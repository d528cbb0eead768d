//! The traffic generator: Ethernet/IPv4/UDP frames out of one interface, as fast as this kernel
//! can, or at a given rate.
//!
//! Methods, fastest first (`docs/lab-notes.md`, 2-vCPU VM, 64 B):
//! - [`Method::XdpLive`]: `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` on a program
//!   returning `XDP_TX` ([`fastpath::unstable::bpf::test_run_live`]): 7–11 Mpps from one core.
//!   On a veth, frames arrive only if the *peer* has a native XDP program attached.
//!
//!   **How it paces.** Each call has a fixed cost of ~30 ms (the kernel swaps the XDP dispatcher
//!   in and out), so pacing by sleeping between calls can only send bursts — and a burst larger
//!   than the receiving veth's 256-frame ring is lost there before any receiver is involved.
//!   So the generator makes *one* call that runs until it is interrupted (a signal to the
//!   generator thread, [`fastpath_harness::process::interrupt`]), and paces inside the kernel:
//!   its program ([`fastpath::unstable::xdp_prog::tx_paced_insns`]) lets a frame go (`XDP_TX`)
//!   only when a GCRA rate limiter on `bpf_ktime_get_ns` says it is due, and drops (recycles)
//!   the others. The largest burst is one live-frames batch of [`LIVE_BATCH`] frames. The
//!   count of frames sent and of flow-0 frames comes from the program's map, exact.
//! - [`Method::AfPacket`]: `sendmmsg` on an AF_PACKET socket with `PACKET_QDISC_BYPASS`:
//!   ~0.6–1 Mpps. The fallback.
//!
//! The frame building is sans-IO ([`build_frame`], on `fastpath-harness`'s header writer);
//! [`run`] works in the calling thread's network namespace, on whatever CPU the caller pinned it
//! to.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fastpath::unstable::bpf::{self, XdpProgram};
use fastpath::unstable::xdp_prog::GenState;
use fastpath_harness::frame::{self, UdpHeaders};
use fastpath_harness::packet::PacketTx;
use fastpath_harness::process;
use serde::Serialize;

use crate::testbed::link_counters;

/// Frames per `BPF_PROG_TEST_RUN` call: as many as the kernel takes; the call ends when the
/// generator interrupts it (`docs/lab-notes.md`: small calls are slow, 256k per call gave 4.3 Mpps).
pub const DEFAULT_REPEAT: u32 = u32::MAX;
/// Frames a paced generator may run ahead of schedule (one live-frames batch).
pub const PACE_BURST: u32 = 64;
/// Frames the kernel builds and runs per inner batch in live mode.
pub const LIVE_BATCH: u32 = 64;
/// Smallest frame: 14 (Ethernet) + 20 (IPv4) + 8 (UDP) bytes, padded to the Ethernet minimum
/// without FCS.
pub const MIN_SIZE: usize = frame::MIN_LEN;
/// Largest frame: a 1500-byte MTU plus the Ethernet header (veth drops larger XDP frames).
pub const MAX_SIZE: usize = 1514;
/// Default destination MAC: locally administered and nobody's, so the receiving stack sees
/// `PACKET_OTHERHOST` and drops the frame right after the capture taps.
pub const DEFAULT_DST_MAC: [u8; 6] = frame::DST_MAC;
/// Source MAC of generated frames.
pub const SRC_MAC: [u8; 6] = frame::SRC_MAC;
/// Source IPv4 address of generated frames (10.99.0.1).
pub const SRC_IP: Ipv4Addr = ipv4(frame::SRC_IP);
/// Default destination IPv4 address (10.99.0.2).
pub const DEFAULT_DST_IP: Ipv4Addr = ipv4(frame::DST_IP);
/// UDP source port of flow 0; flow `i` uses `BASE_SRC_PORT + i`.
pub const BASE_SRC_PORT: u16 = 1024;
/// Most flows: one per UDP source port from [`BASE_SRC_PORT`] up to 65535.
pub const MAX_FLOWS: u16 = (65_536 - BASE_SRC_PORT as u32) as u16;
/// UDP destination port (discard).
pub const DST_PORT: u16 = frame::DST_PORT;

const fn ipv4(o: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::new(o[0], o[1], o[2], o[3])
}

/// What the generated frames look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// Frame length without FCS, [`MIN_SIZE`]..=[`MAX_SIZE`].
    pub size: usize,
    /// Number of flows (distinct UDP source ports), at least 1.
    pub flows: u16,
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Destination IPv4 address.
    pub dst_ip: Ipv4Addr,
}

impl FrameSpec {
    /// `size`-byte frames, one flow, default addresses.
    pub fn new(size: usize) -> FrameSpec {
        FrameSpec {
            size,
            flows: 1,
            dst_mac: DEFAULT_DST_MAC,
            dst_ip: DEFAULT_DST_IP,
        }
    }

    /// Checks the size and flow count.
    ///
    /// # Errors
    /// A message naming the accepted range.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            bail!(
                "frame size {} is out of range ({MIN_SIZE} to {MAX_SIZE} bytes, FCS excluded)",
                self.size
            );
        }
        if self.flows == 0 || self.flows > MAX_FLOWS {
            bail!("flows {} is out of range (1 to {MAX_FLOWS})", self.flows);
        }
        Ok(())
    }

    /// One template frame per flow.
    pub fn templates(&self) -> Vec<Vec<u8>> {
        (0..self.flows).map(|f| build_frame(self, f)).collect()
    }
}

/// Builds flow `flow`'s frame: Ethernet (SRC_MAC → `dst_mac`) / IPv4 (SRC_IP → `dst_ip`, TTL
/// 64, DF) / UDP (`BASE_SRC_PORT + flow` → 9) with valid checksums; the payload is `b"FPLB"`
/// then bytes counting up. Exactly `spec.size` bytes (call [`FrameSpec::validate`] first; a size
/// below the headers is raised to [`MIN_SIZE`]).
pub fn build_frame(spec: &FrameSpec, flow: u16) -> Vec<u8> {
    let headers = UdpHeaders {
        dst_mac: spec.dst_mac,
        src_mac: SRC_MAC,
        vlan: None,
        src_ip: SRC_IP.octets(),
        dst_ip: spec.dst_ip.octets(),
        ip_id: 0,
        src_port: BASE_SRC_PORT.wrapping_add(flow),
        dst_port: DST_PORT,
    };
    let mut f = vec![0u8; spec.size.max(MIN_SIZE)];
    let payload = &mut f[headers.header_len()..];
    for (i, b) in payload.iter_mut().enumerate() {
        *b = match i {
            0..=3 => b"FPLB"[i],
            _ => i as u8,
        };
    }
    headers.write(&mut f);
    f
}

/// How the generator transmits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// XDP live frames (`BPF_PROG_TEST_RUN` + `BPF_F_TEST_XDP_LIVE_FRAMES`, `XDP_TX`).
    XdpLive,
    /// AF_PACKET `sendmmsg` with `PACKET_QDISC_BYPASS`.
    AfPacket,
}

impl Method {
    /// The name shown in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Method::XdpLive => "xdp-live",
            Method::AfPacket => "af-packet",
        }
    }
}

/// Which method to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MethodChoice {
    /// XDP live frames; AF_PACKET if they fail (or leave no trace in the interface counters).
    #[default]
    Auto,
    /// Exactly this one.
    Only(Method),
}

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Interface name (in the calling thread's namespace).
    pub interface: String,
    /// The frames.
    pub frames: FrameSpec,
    /// Frames per second, `None`: as fast as possible.
    pub rate: Option<u64>,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Method.
    pub method: MethodChoice,
    /// Frames per live-frames call (the call is interrupted at the limits anyway).
    pub repeat: u32,
    /// Whether [`MethodChoice::Auto`] checks, with a short probe run, that live frames move
    /// the interface's counters (a veth whose peer has no native XDP program swallows them
    /// without a trace). The lab knows its peer has one and skips the probe.
    pub probe: bool,
}

impl GenConfig {
    /// Defaults: as fast as possible, forever, auto method, probe on.
    pub fn new(interface: impl Into<String>, frames: FrameSpec) -> GenConfig {
        GenConfig {
            interface: interface.into(),
            frames,
            rate: None,
            count: None,
            duration: None,
            method: MethodChoice::Auto,
            repeat: DEFAULT_REPEAT,
            probe: true,
        }
    }
}

/// What a generator run did.
#[derive(Debug, Clone, PartialEq)]
pub struct GenReport {
    /// The method that ran.
    pub method: Method,
    /// Why the preferred method was not used, if it was not.
    pub fallback_reason: Option<String>,
    /// Frames handed to the kernel for transmission.
    pub sent: u64,
    /// Of those, frames of flow 0 (the flow the lab's filter selects), where known (live
    /// frames count them exactly; AF_PACKET sends the flows in turn).
    pub flow0: Option<u64>,
    /// Time from the first frame sent (live frames: within 1 ms) to the end.
    pub elapsed: Duration,
}

impl GenReport {
    /// Achieved frames per second.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.sent as f64 / s
        } else {
            0.0
        }
    }
}

/// Paces transmission to `rate` frames per second: how many frames may go now, and how long
/// to sleep otherwise. Sans-IO.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    rate: Option<u64>,
}

impl Pacer {
    /// A pacer for `rate` (`None`: unlimited).
    pub fn new(rate: Option<u64>) -> Pacer {
        Pacer { rate }
    }

    /// Given `sent` frames after `elapsed`, returns `Ok(n)`: send up to `n` now (`n` at most
    /// `max_chunk`), or `Err(d)`: sleep `d` first.
    pub fn next(&self, sent: u64, elapsed: Duration, max_chunk: u64) -> Result<u64, Duration> {
        let Some(rate) = self.rate else {
            return Ok(max_chunk);
        };
        let rate = rate.max(1);
        // Allow bursts of up to 1 ms worth of frames (at least one).
        let burst = (rate / 1000).max(1);
        let due = (elapsed.as_secs_f64() * rate as f64) as u64 + burst;
        if sent < due {
            Ok((due - sent).min(max_chunk))
        } else {
            let ahead = sent + 1 - due + burst;
            Err(Duration::from_secs_f64(ahead as f64 / rate as f64).min(Duration::from_millis(100)))
        }
    }
}

/// Sends frames per `cfg` until the count or duration is reached or `stop` is set; adds each
/// call's frames to `progress` as it goes (advisory, Relaxed).
///
/// Runs in the calling thread's network namespace and on its CPU.
///
/// # Errors
/// Bad frame spec, no such interface, no method working.
pub fn run(cfg: &GenConfig, stop: &AtomicBool, progress: &AtomicU64) -> Result<GenReport> {
    cfg.frames.validate()?;
    let ifindex = fastpath_harness::packet::ifindex(&cfg.interface)
        .with_context(|| format!("generator interface `{}`", cfg.interface))?;
    let templates = cfg.frames.templates();
    let mut fallback_reason = None;
    match cfg.method {
        MethodChoice::Only(Method::AfPacket) => {}
        MethodChoice::Only(Method::XdpLive) => {
            let live = Live::load(cfg).context("loading the XDP_TX program")?;
            return run_live(cfg, ifindex, &templates[0], stop, progress, &live);
        }
        MethodChoice::Auto => match Live::load(cfg) {
            Ok(live) => match probe_live(cfg, &live, ifindex, &templates[0]) {
                Ok(()) => return run_live(cfg, ifindex, &templates[0], stop, progress, &live),
                Err(why) => fallback_reason = Some(why),
            },
            Err(e) => fallback_reason = Some(format!("cannot load the XDP_TX program: {e}")),
        },
    }
    let mut r = run_af_packet(cfg, ifindex, &templates, stop, progress)?;
    r.fallback_reason = fallback_reason;
    Ok(r)
}

/// Sends a few live frames and checks that they worked (and, if `cfg.probe`, that the
/// interface's TX counters moved).
fn probe_live(cfg: &GenConfig, live: &Live, ifindex: u32, frame: &[u8]) -> Result<(), String> {
    const PROBE: u32 = 1024;
    // Without the counter check the probe only proves that live frames run: its frames are
    // dropped by the program (limit 0), so a receiver never sees frames the report does not
    // count.
    let limit = if cfg.probe { None } else { Some(0) };
    live.state
        .configure(None, PACE_BURST, limit)
        .map_err(|e| format!("configuring the generator: {e}"))?;
    let before = link_counters(&cfg.interface).ok();
    bpf::test_run_live(&live.prog, frame, ifindex, 0, PROBE, LIVE_BATCH)
        .map_err(|e| format!("XDP live frames failed: {e}"))?;
    if !cfg.probe {
        return Ok(());
    }
    let (Some(b), Ok(a)) = (before, link_counters(&cfg.interface)) else {
        return Ok(()); // cannot tell: trust the call
    };
    let moved = (a.tx_packets + a.tx_dropped).saturating_sub(b.tx_packets + b.tx_dropped);
    if moved == 0 {
        return Err(format!(
            "XDP live frames left no trace in `{}`'s TX counters (a veth whose peer has no \
             native XDP program drops them silently; force with --method xdp-live)",
            cfg.interface
        ));
    }
    Ok(())
}

fn limits_reached(cfg: &GenConfig, sent: u64, start: Instant, stop: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed)
        || cfg.count.is_some_and(|c| sent >= c)
        || cfg.duration.is_some_and(|d| start.elapsed() >= d)
}

/// The live-frames program and its state map (rate, limit, counters).
struct Live {
    state: GenState,
    prog: XdpProgram,
}

impl Live {
    /// Loads the paced program for `cfg`'s flows (unpaced and unlimited until configured).
    fn load(cfg: &GenConfig) -> fastpath::Result<Live> {
        let state = GenState::new(None, PACE_BURST, None)?;
        let prog = XdpProgram::tx_paced(&state, BASE_SRC_PORT, cfg.frames.flows)?;
        Ok(Live { state, prog })
    }
}

/// One live-frames call that runs until the limits are reached or `stop` is set: a watcher
/// thread reads the program's counters every millisecond (`progress`) and, at a limit,
/// interrupts the call with a signal (repeated until the call has returned: a signal that
/// lands just before the call starts is lost). The program paces and stops at `cfg.count`
/// itself, so the count is exact.
fn run_live(
    cfg: &GenConfig,
    ifindex: u32,
    frame: &[u8],
    stop: &AtomicBool,
    progress: &AtomicU64,
    live: &Live,
) -> Result<GenReport> {
    live.state
        .configure(cfg.rate, PACE_BURST, cfg.count)
        .context("configuring the generator's rate")?;
    process::prepare_interrupt().context("installing the generator's wake-up handler")?;
    let tid = process::thread_id();
    // Relaxed: the flags only say "stop now" / "the call loop ended"; no data travels with them
    // (the counters are read from the map after the join).
    let limit = AtomicBool::new(false);
    let returned = AtomicBool::new(false);
    let start = Instant::now();
    let (result, first) = thread::scope(|s| {
        // Returns when the first frame went out (within its 1-ms polling): a call spends its
        // first ~30 ms setting up, which is not sending time.
        let watcher = s.spawn(|| {
            let mut first = None;
            while !returned.load(Ordering::Relaxed) {
                let sent = live.state.read().map_or(0, |c| c.tx);
                if sent > 0 && first.is_none() {
                    first = Some(Instant::now());
                }
                progress.store(sent, Ordering::Relaxed);
                if limits_reached(cfg, sent, start, stop) {
                    limit.store(true, Ordering::Relaxed);
                    let _ = process::interrupt(tid);
                }
                thread::sleep(Duration::from_millis(1));
            }
            first
        });
        let r = loop {
            if limit.load(Ordering::Relaxed) {
                break Ok(());
            }
            match bpf::test_run_live(&live.prog, frame, ifindex, 0, cfg.repeat.max(1), LIVE_BATCH) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => break Err(e).context("BPF_PROG_TEST_RUN (XDP live frames)"),
            }
        };
        returned.store(true, Ordering::Relaxed);
        (r, watcher.join().unwrap_or(None))
    });
    let elapsed = first.unwrap_or(start).elapsed();
    result?;
    let counts = live
        .state
        .read()
        .context("reading the generator's counters")?;
    progress.store(counts.tx, Ordering::Relaxed);
    Ok(GenReport {
        method: Method::XdpLive,
        fallback_reason: None,
        sent: counts.tx,
        flow0: Some(counts.flow0),
        elapsed,
    })
}

fn run_af_packet(
    cfg: &GenConfig,
    ifindex: u32,
    templates: &[Vec<u8>],
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<GenReport> {
    const BATCH: usize = PacketTx::MAX_BATCH;
    let tx = PacketTx::open(ifindex).context("opening an AF_PACKET socket for sending")?;
    // One batch cycles through the flows frame by frame; `cycle` holds it twice so that any
    // rotation of it, up to a whole batch long, is one contiguous sub-slice.
    let cycle: Vec<&[u8]> = (0..2 * BATCH)
        .map(|i| templates[(i % BATCH) % templates.len()].as_slice())
        .collect();
    let pacer = Pacer::new(cfg.rate);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut off = 0usize;
    while !limits_reached(cfg, sent, start, stop) {
        let mut n = match pacer.next(sent, start.elapsed(), BATCH as u64) {
            Ok(n) => n as usize,
            Err(d) => {
                thread::sleep(d);
                continue;
            }
        };
        if let Some(c) = cfg.count {
            n = n.min((c - sent) as usize);
        }
        // Rotate so that successive short batches still cycle through the flows.
        let k = tx
            .send(&cycle[off..off + n])
            .context("sendmmsg on AF_PACKET")?;
        off = (off + k) % BATCH;
        sent += k as u64;
        progress.fetch_add(k as u64, Ordering::Relaxed);
        if k == 0 {
            thread::yield_now(); // device queue full
        }
    }
    Ok(GenReport {
        method: Method::AfPacket,
        fallback_reason: None,
        sent,
        flow0: None,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use fastpath_harness::frame::checksum;

    #[test]
    fn frames_have_the_size_and_valid_checksums() {
        for size in [60, 64, 100, 1514] {
            let spec = FrameSpec::new(size);
            spec.validate().unwrap();
            let f = build_frame(&spec, 3);
            assert_eq!(f.len(), size);
            assert_eq!(&f[0..6], &DEFAULT_DST_MAC);
            assert_eq!(u16::from_be_bytes([f[12], f[13]]), 0x0800);
            // IPv4 header checksums to 0xffff.
            assert_eq!(checksum(&f[14..34], 0), 0);
            assert_eq!(usize::from(u16::from_be_bytes([f[16], f[17]])), size - 14);
            // UDP: pseudo header + datagram checksums to 0xffff.
            let mut pseudo = [0u8; 12];
            pseudo[0..4].copy_from_slice(&f[26..30]);
            pseudo[4..8].copy_from_slice(&f[30..34]);
            pseudo[9] = 17;
            pseudo[10..12].copy_from_slice(&f[38..40]);
            assert_eq!(checksum(&f[34..], u32::from(!checksum(&pseudo, 0))), 0);
            assert_eq!(u16::from_be_bytes([f[34], f[35]]), BASE_SRC_PORT + 3);
            assert_eq!(&f[42..46], b"FPLB");
        }
    }

    #[test]
    fn flows_vary_the_source_port_only() {
        let mut spec = FrameSpec::new(64);
        spec.flows = 4;
        let t = spec.templates();
        assert_eq!(t.len(), 4);
        for (i, f) in t.iter().enumerate() {
            assert_eq!(u16::from_be_bytes([f[34], f[35]]), BASE_SRC_PORT + i as u16);
            assert_eq!(f[..34], t[0][..34]);
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(FrameSpec::new(59).validate().is_err());
        assert!(FrameSpec::new(1515).validate().is_err());
        let mut s = FrameSpec::new(64);
        s.flows = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn pacer_limits_the_rate() {
        let p = Pacer::new(None);
        assert_eq!(p.next(1 << 40, Duration::ZERO, 77), Ok(77));
        let p = Pacer::new(Some(1000));
        // At t=0 a 1-frame burst (1 ms worth) is allowed.
        assert_eq!(p.next(0, Duration::ZERO, 1 << 20), Ok(1));
        // After 1 s, 1000 more are due.
        assert_eq!(p.next(1, Duration::from_secs(1), 1 << 20), Ok(1000));
        assert_eq!(p.next(10, Duration::from_secs(1), 64), Ok(64));
        // Ahead of schedule: sleep.
        assert!(p.next(2000, Duration::from_secs(1), 64).is_err());
    }
}
