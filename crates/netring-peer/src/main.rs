//! `netring-peer`: the Rust peer of `fastpath lab`. Receives on one interface with the
//! [`netring`] crate, reads every byte of every packet (the same `touch` as fastpath's lab rows),
//! and reports how many packets it read.
//!
//! ```text
//! netring-peer --mode v3|xdp --iface IF [--seconds S] [--attach native|generic] [--frames N]
//! ```
//!
//! - `v3`: `netring::Capture` (AF_PACKET TPACKET_V3), configured like fastpath's `mmap` row:
//!   32 blocks of 1 MiB, 2048-byte frames, 1 ms block timeout, promiscuous, no rxhash request;
//!   batches from `Capture::next_batch_blocking` (one retired block each).
//! - `xdp`: `netring::XdpSocket` (AF_XDP, queue 0) with netring's redirect-all XDP program
//!   attached in **native** mode (`XdpFlags::DRV_MODE`). netring's default is generic (SKB)
//!   mode, which does receive on veth from an ordinary sender, but the lab's XDP live-frames
//!   generator needs a native program on the receiving veth (veth drops frames sent to it
//!   with `XDP_TX` otherwise) and generic and native programs cannot coexist on one device.
//!   8192 frames of 2048 bytes (`--frames`), all of them in the fill ring (`XdpMode::Rx`),
//!   need_wakeup, batches of up to 64 from `XdpSocket::next_batch_blocking` (which polls only
//!   when the RX ring is empty). netring sizes all four rings alike (`frame_count` rounded up
//!   to a power of two): fill 8192 as fastpath's, RX 8192 (fastpath: 4096; netring cannot
//!   size them apart).
//!
//! Output (machine-readable, `key=value`):
//! - stderr, once bound: `netring-peer ready mode=.. iface=.. ...`;
//! - stdout, on `SIGUSR1`: `netring-peer snapshot packets=N drops=D t_ns=T`;
//! - stdout, at exit (`SIGINT`, `SIGTERM`, or `--seconds` after bind):
//!   `netring-peer packets=N seconds=S pps=R drops=D t_ns=T`.
//!
//! `packets` and `drops` are cumulative since bind; `t_ns` is this process's monotonic clock
//! since the ready line, read together with the counts (so a snapshot pair gives an exact
//! window, whatever the signal latency); `seconds` runs from the first batch to the end and
//! `pps` counts the packets after that first batch over it. `drops`: TPACKET_V3 `tp_drops`;
//! AF_XDP `rx_dropped + rx_ring_full` (as fastpath counts them).
//!
//! Dropping the socket detaches the XDP program (netring holds it by a `bpf_link`, which the
//! kernel also releases if this process dies).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netring::xdp::XdpFlags;
use netring::{Capture, XdpMode, XdpSocket};

/// Set by `SIGINT`/`SIGTERM`.
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by `SIGUSR1`: print a snapshot.
static SNAPSHOT: AtomicBool = AtomicBool::new(false);

/// How long one wait for packets may block (the loop checks the flags in between).
const POLL: Duration = Duration::from_millis(20);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: one atomic store.
    if sig == libc::SIGUSR1 {
        SNAPSHOT.store(true, Ordering::Relaxed);
    } else {
        STOP.store(true, Ordering::Relaxed);
    }
}

fn install_handlers() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: `sigaction` is zero-initialisable plain data; the handler only does an atomic
        // store, which is async-signal-safe.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    V3,
    Xdp,
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    iface: String,
    /// Stop this long after bind (`None`: at SIGINT/SIGTERM).
    seconds: Option<Duration>,
    /// XDP attach mode (xdp mode): native (`DRV_MODE`, default) or generic (`SKB_MODE`,
    /// netring's own default; kept for comparison).
    generic: bool,
    /// UMEM frames (xdp mode), also the size of every ring.
    frames: usize,
}

const USAGE: &str =
    "usage: netring-peer --mode v3|xdp --iface IF [--seconds S] [--attach native|generic] [--frames N]\n\
    Receives on IF with netring (v3: TPACKET_V3 Capture; xdp: AF_XDP XdpSocket with N UMEM\n\
    frames, default 8192, and its XDP program attached in native mode unless --attach generic),\n\
    reads every byte of every packet, prints counts on SIGUSR1 and at exit (SIGINT, SIGTERM, or\n\
    S seconds after bind; S = 0 or absent: run until signalled).";

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut mode, mut iface, mut seconds, mut generic, mut frames) =
        (None, None, None, false, 8192);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--mode" => {
                mode = Some(match value()?.as_str() {
                    "v3" => Mode::V3,
                    "xdp" => Mode::Xdp,
                    m => return Err(format!("`{m}` is not a mode (choose v3 or xdp)")),
                });
            }
            "--iface" => iface = Some(value()?),
            "--attach" => {
                generic = match value()?.as_str() {
                    "native" => false,
                    "generic" => true,
                    m => return Err(format!("`{m}` is not an attach mode (native or generic)")),
                };
            }
            "--frames" => {
                let v = value()?;
                frames = v
                    .parse()
                    .ok()
                    .filter(|n: &usize| (64..=1 << 20).contains(n))
                    .ok_or_else(|| format!("`{v}` is not a frame count (64 to 1048576)"))?;
            }
            "--seconds" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("`{v}` is not a number of seconds"))?;
                seconds = (s > 0.0).then(|| Duration::from_secs_f64(s));
            }
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument `{a}`")),
        }
    }
    Ok(Args {
        mode: mode.ok_or("--mode is required")?,
        iface: iface.ok_or("--iface is required")?,
        seconds,
        generic,
        frames,
    })
}

/// Every byte of the packet, summed: the proof that user space read it. The same as
/// `touch` in fastpath-lab's `run.rs`.
#[inline]
fn touch(data: &[u8]) -> u64 {
    let data = std::hint::black_box(data);
    data.iter().fold(0u64, |a, &b| a.wrapping_add(u64::from(b)))
}

/// Counts and clocks shared by both modes.
struct Tally {
    ready: Instant,
    deadline: Option<Instant>,
    packets: u64,
    /// End of the first batch and the packet count then.
    first: Option<(Instant, u64)>,
    acc: u64,
}

impl Tally {
    fn new(seconds: Option<Duration>) -> Tally {
        let ready = Instant::now();
        Tally {
            ready,
            deadline: seconds.map(|s| ready + s),
            packets: 0,
            first: None,
            acc: 0,
        }
    }

    #[inline]
    fn batch_done(&mut self, n: u64) {
        self.packets += n;
        if self.first.is_none() && n > 0 {
            self.first = Some((Instant::now(), self.packets));
        }
    }

    fn running(&self) -> bool {
        !STOP.load(Ordering::Relaxed) && self.deadline.is_none_or(|d| Instant::now() < d)
    }

    fn t_ns(&self, at: Instant) -> u128 {
        at.duration_since(self.ready).as_nanos()
    }

    fn snapshot(&self, drops: u64) {
        let now = Instant::now();
        println!(
            "netring-peer snapshot packets={} drops={drops} t_ns={}",
            self.packets,
            self.t_ns(now)
        );
    }

    fn finish(&self, drops: u64) {
        let now = Instant::now();
        let (seconds, pps) = match self.first {
            Some((t, n)) => {
                let s = now.duration_since(t).as_secs_f64();
                let pps = if s > 0.0 {
                    (self.packets - n) as f64 / s
                } else {
                    0.0
                };
                (s, pps)
            }
            None => (0.0, 0.0),
        };
        std::hint::black_box(self.acc);
        println!(
            "netring-peer packets={} seconds={seconds:.6} pps={pps:.0} drops={drops} t_ns={}",
            self.packets,
            self.t_ns(now)
        );
    }
}

fn run_v3(args: &Args) -> Result<(), String> {
    let mut cap = Capture::builder()
        .interface(&args.iface)
        .block_size(1 << 20)
        .block_count(32)
        .frame_size(2048)
        .block_timeout_ms(1)
        .promiscuous(true)
        .fill_rxhash(false)
        .build()
        .map_err(|e| {
            format!(
                "opening a TPACKET_V3 capture on {}: {}",
                args.iface,
                chain(&e)
            )
        })?;
    eprintln!(
        "netring-peer ready mode=v3 iface={} blocks=32x1MiB frame=2048 ring_bytes={}",
        args.iface,
        cap.ring_len()
    );
    receive(&mut cap, args.seconds)
}

/// Folds every byte of every packet into `acc`; returns the packet count.
fn touch_all<'a>(packets: impl Iterator<Item = &'a [u8]>, acc: &mut u64) -> u64 {
    let mut n = 0u64;
    for data in packets {
        *acc = acc.wrapping_add(touch(data));
        n += 1;
    }
    n
}

/// A netring receiver as [`receive`] sees it.
trait Source {
    /// Waits up to `timeout` for one batch, folds every byte of it into `acc` and returns how
    /// many packets it held (0 when none came).
    fn touch_batch(&mut self, timeout: Duration, acc: &mut u64) -> Result<u64, netring::Error>;
    /// What the kernel dropped so far.
    fn drops(&self) -> u64;
}

impl Source for Capture {
    fn touch_batch(&mut self, timeout: Duration, acc: &mut u64) -> Result<u64, netring::Error> {
        let Some(batch) = self.next_batch_blocking(timeout)? else {
            return Ok(0);
        };
        Ok(touch_all((&batch).into_iter().map(|p| p.data()), acc))
    }

    fn drops(&self) -> u64 {
        self.cumulative_stats().map_or(0, |s| u64::from(s.drops))
    }
}

impl Source for XdpSocket {
    fn touch_batch(&mut self, timeout: Duration, acc: &mut u64) -> Result<u64, netring::Error> {
        let Some(batch) = self.next_batch_blocking(timeout)? else {
            return Ok(0);
        };
        Ok(touch_all((&batch).into_iter().map(|p| p.data()), acc))
    }

    fn drops(&self) -> u64 {
        self.statistics()
            .map_or(0, |s| s.rx_dropped + s.rx_ring_full)
    }
}

/// Receives until `seconds` are up (or SIGINT/SIGTERM), printing a snapshot line on each SIGUSR1 and
/// the exit line at the end.
fn receive(rx: &mut impl Source, seconds: Option<Duration>) -> Result<(), String> {
    let mut t = Tally::new(seconds);
    while t.running() {
        let n = rx
            .touch_batch(POLL, &mut t.acc)
            .map_err(|e| format!("receiving: {e}"))?;
        t.batch_done(n);
        if SNAPSHOT.swap(false, Ordering::Relaxed) {
            t.snapshot(rx.drops());
        }
    }
    t.finish(rx.drops());
    Ok(())
}

/// `e` and its sources, `: `-separated (netring's Display leaves the errno out).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

/// How long to retry a bind that fails with `EBUSY`: the previous AF_XDP socket on the queue
/// (the lab's preceding row) may still be releasing its buffer pool, which the kernel finishes
/// from a workqueue after `close`.
const BUSY_RETRY: Duration = Duration::from_secs(3);

fn open_xdp(args: &Args) -> Result<XdpSocket, String> {
    let start = Instant::now();
    let mut busy = 0u32;
    loop {
        let r = XdpSocket::builder()
            .interface(&args.iface)
            .queue_id(0)
            .frame_size(2048)
            .frame_count(args.frames)
            .mode(XdpMode::Rx)
            .need_wakeup(true)
            .with_default_program()
            .xdp_attach_flags(if args.generic {
                XdpFlags::SKB_MODE
            } else {
                XdpFlags::DRV_MODE
            })
            .build();
        match r {
            Ok(x) => {
                if busy > 0 {
                    eprintln!(
                        "netring-peer: bind found queue 0 busy (EBUSY) {busy} times; bound after {} ms",
                        start.elapsed().as_millis()
                    );
                }
                return Ok(x);
            }
            Err(netring::Error::Bind(e))
                if e.raw_os_error() == Some(libc::EBUSY)
                    && start.elapsed() < BUSY_RETRY
                    && !STOP.load(Ordering::Relaxed) =>
            {
                busy += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(format!(
                    "opening an AF_XDP socket on {} queue 0: {}",
                    args.iface,
                    chain(&e)
                ))
            }
        }
    }
}

fn run_xdp(args: &Args) -> Result<(), String> {
    let mut xsk = open_xdp(args)?;
    eprintln!(
        "netring-peer ready mode=xdp iface={} queue=0 frames={}x2048 rings={} attach={} zerocopy={}",
        args.iface,
        args.frames,
        args.frames.next_power_of_two(),
        if args.generic { "generic" } else { "native" },
        xsk.is_zerocopy()
    );
    receive(&mut xsk, args.seconds)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("netring-peer: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = install_handlers() {
        eprintln!("netring-peer: error: installing signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let r = match args.mode {
        Mode::V3 => run_v3(&args),
        Mode::Xdp => run_xdp(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netring-peer: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse_args(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn arguments() {
        let a = args("--mode xdp --iface fplr0 --seconds 2.5").unwrap();
        assert_eq!(a.mode, Mode::Xdp);
        assert_eq!(a.iface, "fplr0");
        assert_eq!(a.seconds, Some(Duration::from_millis(2500)));
        assert_eq!(
            args("--iface x --mode v3 --seconds 0").unwrap().seconds,
            None
        );
        assert!(args("--mode v4 --iface x").is_err());
        assert!(args("--mode v3").is_err());
        assert!(args("--iface x --seconds").is_err());
        assert!(args("--mode v3 --iface x --seconds -1").is_err());
        assert!(!args("--mode xdp --iface x").unwrap().generic);
        assert!(
            args("--mode xdp --iface x --attach generic")
                .unwrap()
                .generic
        );
        assert!(args("--mode xdp --iface x --attach hw").is_err());
        assert_eq!(args("--mode xdp --iface x").unwrap().frames, 8192);
        assert_eq!(
            args("--mode xdp --iface x --frames 4096").unwrap().frames,
            4096
        );
        assert!(args("--mode xdp --iface x --frames 8").is_err());
        assert_eq!(args("--help").unwrap_err(), "");
    }

    #[test]
    fn touch_sums_bytes() {
        assert_eq!(touch(&[1, 2, 255]), 258);
    }
}
