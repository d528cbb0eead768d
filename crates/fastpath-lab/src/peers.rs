//! Peer tools measured beside fastpath: tcpdump, netsniff-ng, dpdk-testpmd (af_packet and
//! af_xdp vdevs) and the Rust crate netring (TPACKET_V3 and AF_XDP, through the `netring-peer`
//! harness in `crates/netring-peer`). Each runs as a child process in the receiver namespace
//! (`ip netns exec`), pinned to the receiver CPU, in its own process group (a terminal's Ctrl-C
//! reaches only the lab, which stops the peer itself).
//!
//! How each peer's "packets delivered to user space" is read:
//! - tcpdump: `SIGUSR1` makes it print `N packets captured, ...` at any time: the lab takes a
//!   snapshot at the start and at the end of the window (exact window).
//! - netring-peer: `SIGUSR1` makes it print `netring-peer snapshot packets=N drops=D t_ns=T`,
//!   with `T` its own monotonic clock read together with the count: the window is the
//!   difference of the two `T`s (exact, whatever the signal latency).
//! - netsniff-ng: only its summary at exit (`N packets incoming`); the window runs from the
//!   generator's start to the `SIGINT` (it receives nothing before the generator starts).
//! - dpdk-testpmd: `--stats-period 1` prints cumulative `RX-packets` every second; the window
//!   runs between two such lines (timestamped when read).
//!
//! The output parsers are sans-IO and unit-tested.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fastpath_harness::process::{find_on_path, is_executable};
use std::os::unix::process::CommandExt;

use crate::testbed::{Testbed, RX_IF};

/// A peer tool the lab knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// `tcpdump -w /dev/null` (libpcap, TPACKET_V3).
    Tcpdump,
    /// `netsniff-ng --out /dev/null -t others` (TPACKET_V3).
    NetsniffNg,
    /// `dpdk-testpmd` rxonly on a `net_af_packet` vdev.
    TestpmdAfPacket,
    /// `dpdk-testpmd` rxonly on a `net_af_xdp` vdev.
    TestpmdAfXdp,
    /// `netring-peer --mode v3`: the netring crate's TPACKET_V3 `Capture`.
    NetringV3,
    /// `netring-peer --mode xdp`: the netring crate's AF_XDP `XdpSocket` (native attach).
    NetringXdp,
}

/// Where a snapshot comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// `SIGUSR1` snapshots (tcpdump).
    Signal,
    /// Periodic cumulative lines (testpmd).
    Periodic,
    /// Only the total at exit (netsniff-ng).
    AtExit,
}

impl Peer {
    /// Row name.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Tcpdump => "tcpdump",
            Peer::NetsniffNg => "netsniff-ng",
            Peer::TestpmdAfPacket => "testpmd-af_packet",
            Peer::TestpmdAfXdp => "testpmd-af_xdp",
            Peer::NetringV3 => "netring-v3",
            Peer::NetringXdp => "netring-xdp",
        }
    }

    /// The executable.
    pub fn binary(self) -> &'static str {
        match self {
            Peer::Tcpdump => "tcpdump",
            Peer::NetsniffNg => "netsniff-ng",
            Peer::TestpmdAfPacket | Peer::TestpmdAfXdp => "dpdk-testpmd",
            Peer::NetringV3 | Peer::NetringXdp => "netring-peer",
        }
    }

    /// The Debian package that has it (netring rows: none, the lab builds the harness; see
    /// [`NetringPeer`]).
    pub fn package(self) -> &'static str {
        match self {
            Peer::Tcpdump => "tcpdump",
            Peer::NetsniffNg => "netsniff-ng",
            Peer::TestpmdAfPacket | Peer::TestpmdAfXdp => "dpdk-dev",
            Peer::NetringV3 | Peer::NetringXdp => "-",
        }
    }

    /// Whether it is run through the `netring-peer` harness, which the lab builds with cargo
    /// instead of finding it on `PATH`.
    pub fn is_netring(self) -> bool {
        matches!(self, Peer::NetringV3 | Peer::NetringXdp)
    }

    /// Whether the lab must attach an XDP_PASS program to the receiving veth first (veth runs
    /// NAPI, needed for live frames and threaded NAPI, only with a program attached). The
    /// af_xdp vdev and netring's `XdpSocket` attach their own.
    pub fn needs_pass_program(self) -> bool {
        !matches!(self, Peer::TestpmdAfXdp | Peer::NetringXdp)
    }

    pub(crate) fn window(self) -> Window {
        match self {
            Peer::Tcpdump | Peer::NetringV3 | Peer::NetringXdp => Window::Signal,
            Peer::NetsniffNg => Window::AtExit,
            Peer::TestpmdAfPacket | Peer::TestpmdAfXdp => Window::Periodic,
        }
    }

    /// Whether the executable is on `PATH` (netring rows: see [`NetringPeer::locate`]).
    pub fn installed(self) -> bool {
        which(self.binary())
    }

    /// The command line (after `ip netns exec NS`). `harness` is the `netring-peer` binary
    /// (netring rows only); `seconds` bounds the harness's life should the lab die without
    /// stopping it.
    fn argv(
        self,
        rx_cpu: usize,
        other_cpu: usize,
        harness: Option<&Path>,
        seconds: u64,
    ) -> Vec<String> {
        let cpu = rx_cpu.to_string();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        match self {
            Peer::Tcpdump => {
                let mut v = s(&["taskset", "-c", &cpu, "tcpdump", "-i", RX_IF]);
                v.extend(s(&["-w", "/dev/null", "-B", "65536", "-s", "65535", "-n"]));
                v
            }
            // -Q: do not touch IRQ affinities; -b: bind to the receiver CPU.
            Peer::NetsniffNg => s(&[
                "taskset",
                "-c",
                &cpu,
                "netsniff-ng",
                "--in",
                RX_IF,
                "--out",
                "/dev/null",
                "-t",
                "others",
                "--silent",
                "-b",
                &cpu,
                "-Q",
            ]),
            Peer::TestpmdAfPacket | Peer::TestpmdAfXdp => {
                let vdev = if self == Peer::TestpmdAfXdp {
                    format!("net_af_xdp0,iface={RX_IF},start_queue=0,queue_count=1")
                } else {
                    format!("net_af_packet0,iface={RX_IF},blocksz=4096,framesz=2048,framecnt=4096")
                };
                let lcores = format!("{other_cpu},{rx_cpu}");
                // --no-huge: no huge pages to reserve (that would change the machine);
                // --no-shconf/--no-telemetry and a private --file-prefix: nothing shared left in
                // /var/run/dpdk (--in-memory conflicts with --no-huge). 16k mbufs (36 MB) fit in -m 128.
                s(&[
                    "stdbuf",
                    "-oL",
                    "dpdk-testpmd",
                    "-l",
                    &lcores,
                    "--main-lcore",
                    &other_cpu.to_string(),
                    "--no-pci",
                    "--no-huge",
                    "--no-shconf",
                    "--no-telemetry",
                    "--file-prefix",
                    &dpdk_prefix(),
                    "-m",
                    "128",
                    "--vdev",
                    &vdev,
                    "--",
                    "--forward-mode=rxonly",
                    "--auto-start",
                    "--stats-period",
                    "1",
                    "--nb-cores=1",
                    "--rxd=2048",
                    "--total-num-mbufs=16384",
                ])
            }
            Peer::NetringV3 | Peer::NetringXdp => {
                let bin = harness.map_or_else(
                    || self.binary().to_owned(),
                    |p| p.to_string_lossy().into_owned(),
                );
                let mode = if self == Peer::NetringV3 { "v3" } else { "xdp" };
                s(&[
                    "taskset",
                    "-c",
                    &cpu,
                    &bin,
                    "--mode",
                    mode,
                    "--iface",
                    RX_IF,
                    "--seconds",
                    &seconds.to_string(),
                ])
            }
        }
    }

    /// The line that says the tool is receiving.
    fn ready_marker(self) -> &'static str {
        match self {
            Peer::Tcpdump => "listening on",
            Peer::NetsniffNg => "Running!",
            Peer::TestpmdAfPacket | Peer::TestpmdAfXdp => "Port statistics",
            Peer::NetringV3 | Peer::NetringXdp => "netring-peer ready",
        }
    }
}

/// testpmd's `--file-prefix`: `fplab-<pid>`, removed by [`remove_dpdk_runtime_dir`].
fn dpdk_prefix() -> String {
    format!("fplab-{}", std::process::id())
}

/// Removes `/var/run/dpdk/fplab-<pid>`, the (empty) runtime directory testpmd leaves behind,
/// and `/var/run/dpdk` itself if `created_parent` (it did not exist before) and it is empty.
pub fn remove_dpdk_runtime_dir(created_parent: bool) {
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", dpdk_prefix()));
    if created_parent {
        let _ = std::fs::remove_dir("/var/run/dpdk");
    }
}

/// Whether `name` is an executable on `PATH`.
fn which(name: &str) -> bool {
    find_on_path(name).is_some()
}

/// Packets a peer delivered, and what it says the kernel dropped, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCount {
    /// Packets delivered to (and processed by) the tool.
    pub delivered: u64,
    /// Packets the kernel (or the PMD) dropped before the tool saw them.
    pub dropped: u64,
}

/// Parses tcpdump's `N packets captured, M packets received by filter, K packets dropped by
/// kernel` (the `SIGUSR1` line) or the three lines it prints at exit.
pub fn parse_tcpdump(lines: &[impl AsRef<str>]) -> Option<PeerCount> {
    let mut captured = None;
    let mut dropped = 0;
    for l in lines {
        for part in l.as_ref().trim_start_matches("tcpdump: ").split(',') {
            let part = part.trim();
            if let Some(n) = part.strip_suffix(" packets captured") {
                captured = n.trim().parse().ok();
            } else if let Some(n) = part.strip_suffix(" packets dropped by kernel") {
                dropped = n.trim().parse().unwrap_or(0);
            }
        }
    }
    captured.map(|delivered| PeerCount { delivered, dropped })
}

/// Parses netsniff-ng's exit summary (`N  packets incoming (U unread on exit)`,
/// `P  packets passed filter`, `F  packets failed filter (out of space)`): delivered is the
/// incoming count minus the unread ones, dropped the "failed filter (out of space)" ones.
pub fn parse_netsniff(lines: &[impl AsRef<str>]) -> Option<PeerCount> {
    let mut incoming = None;
    let mut unread = 0u64;
    let mut dropped = 0u64;
    for l in lines {
        let l = l
            .as_ref()
            .trim_matches(|c: char| c == '\r' || c.is_whitespace());
        let mut it = l.split_whitespace();
        let Some(n) = it.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let rest: String = it.collect::<Vec<_>>().join(" ");
        if rest.starts_with("packets incoming") {
            incoming = Some(n);
            if let Some(u) = rest
                .split('(')
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse().ok())
            {
                unread = u;
            }
        } else if rest.starts_with("packets failed filter") {
            dropped = n;
        }
    }
    incoming.map(|i| PeerCount {
        delivered: i.saturating_sub(unread),
        dropped,
    })
}

/// Parses one testpmd periodic statistics block: the cumulative `RX-packets` and
/// `RX-missed` of port 0 from lines such as
/// `  RX-packets: 123        RX-missed: 4          RX-bytes:  7872`.
pub fn parse_testpmd_block(lines: &[impl AsRef<str>]) -> Option<PeerCount> {
    let mut out = None;
    for l in lines {
        let l = l.as_ref();
        if !l.contains("RX-packets:") {
            continue;
        }
        let field = |name: &str| -> Option<u64> {
            let i = l.find(name)? + name.len();
            l[i..].split_whitespace().next()?.parse().ok()
        };
        let delivered = field("RX-packets:")?;
        let dropped = field("RX-missed:").unwrap_or(0);
        out = Some(PeerCount { delivered, dropped });
        break; // port 0 comes first
    }
    out
}

/// One report line of `netring-peer`: `netring-peer snapshot packets=N drops=D t_ns=T` (on
/// `SIGUSR1`) or `netring-peer packets=N seconds=S pps=R drops=D t_ns=T` (at exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetringLine {
    /// Cumulative packets read and kernel drops since the harness bound its socket.
    pub count: PeerCount,
    /// The harness's monotonic clock when it read the count, ns since its ready line.
    pub t_ns: u64,
    /// Whether it is the exit line.
    pub last: bool,
}

/// Parses one `netring-peer` report line (see [`NetringLine`]); `None` for any other line.
pub fn parse_netring(line: &str) -> Option<NetringLine> {
    let rest = line.trim().strip_prefix("netring-peer ")?;
    let (last, rest) = match rest.strip_prefix("snapshot ") {
        Some(r) => (false, r),
        None => (true, rest),
    };
    let (mut packets, mut drops, mut t_ns) = (None, 0, None);
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        match k {
            "packets" => packets = Some(v.parse().ok()?),
            "drops" => drops = v.parse().ok()?,
            "t_ns" => t_ns = Some(v.parse().ok()?),
            _ => {}
        }
    }
    Some(NetringLine {
        count: PeerCount {
            delivered: packets?,
            dropped: drops,
        },
        t_ns: t_ns?,
        last,
    })
}

/// The `netring-peer` harness (`crates/netring-peer`, its own cargo workspace so the main
/// build never compiles netring's dependency tree): where its binary is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetringPeer {
    /// The executable.
    pub path: PathBuf,
}

impl NetringPeer {
    /// Environment variable naming a built `netring-peer` binary (skips the search and build).
    pub const ENV: &'static str = "FASTPATH_NETRING_PEER";
    /// The harness's manifest, relative to the fastpath source tree.
    pub const MANIFEST: &'static str = "crates/netring-peer/Cargo.toml";

    /// Finds the harness, building it when the fastpath source tree is at hand:
    /// 1. `$FASTPATH_NETRING_PEER`, if set (it must name an executable);
    /// 2. [`MANIFEST`](Self::MANIFEST) in a parent directory of the running `fastpath`
    ///    binary or of the current directory: `cargo build --release --manifest-path M
    ///    --target-dir <crate>/target` (a no-op when up to date; the first build downloads
    ///    and compiles netring, aya and their dependencies), binary
    ///    `<crate>/target/release/netring-peer`; cargo is `$CARGO`, `cargo` on `PATH` or
    ///    `~/.cargo/bin/cargo`;
    /// 3. `netring-peer` next to the running binary, then on `PATH`.
    ///
    /// # Errors
    /// Not found or the build failed: a message saying why and how to fix it (the rows'
    /// "not installed" note).
    pub fn locate(progress: &mut dyn FnMut(&str)) -> std::result::Result<NetringPeer, String> {
        if let Some(p) = std::env::var_os(Self::ENV) {
            let path = PathBuf::from(p);
            return if is_executable(&path) {
                Ok(NetringPeer { path })
            } else {
                Err(format!(
                    "{}={} is not an executable file (build it: cargo build --release \
                     --manifest-path {})",
                    Self::ENV,
                    path.display(),
                    Self::MANIFEST
                ))
            };
        }
        let exe = std::env::current_exe()
            .ok()
            .and_then(|e| e.canonicalize().ok());
        let roots = exe
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .into_iter()
            .chain(std::env::current_dir().ok());
        let manifest = roots
            .flat_map(|r| {
                r.ancestors()
                    .map(|a| a.join(Self::MANIFEST))
                    .collect::<Vec<_>>()
            })
            .find(|m| m.is_file());
        if let Some(m) = manifest {
            return Self::build(&m, progress);
        }
        let sibling = exe
            .as_deref()
            .and_then(Path::parent)
            .map(|d| d.join("netring-peer"))
            .filter(|p| is_executable(p));
        if let Some(path) = sibling.or_else(|| find_on_path("netring-peer")) {
            return Ok(NetringPeer { path });
        }
        Err(format!(
            "netring-peer not found: run the lab from the fastpath source tree (it builds {} \
             with cargo) or set {}=/path/to/netring-peer",
            Self::MANIFEST,
            Self::ENV
        ))
    }

    /// Builds the harness; if cargo is missing or the build fails but an earlier build is
    /// there, uses that one (saying so).
    fn build(manifest: &Path, progress: &mut dyn FnMut(&str)) -> std::result::Result<Self, String> {
        let dir = manifest
            .parent()
            .expect("the manifest path ends in crates/netring-peer/Cargo.toml");
        let target = dir.join("target");
        let bin = target.join("release").join("netring-peer");
        match Self::cargo_build(manifest, dir, &target, progress) {
            Ok(()) if is_executable(&bin) => {}
            Ok(()) => {
                return Err(format!(
                    "cargo built the netring peer but {} is missing",
                    bin.display()
                ))
            }
            Err(why) if is_executable(&bin) => progress(&format!(
                "netring peer: {why}; using the earlier build (it may be stale)"
            )),
            Err(why) => return Err(why),
        }
        progress(&format!("netring peer: {}", bin.display()));
        Ok(NetringPeer { path: bin })
    }

    fn cargo_build(
        manifest: &Path,
        dir: &Path,
        target: &Path,
        progress: &mut dyn FnMut(&str),
    ) -> std::result::Result<(), String> {
        let cargo = cargo_command().ok_or_else(|| {
            format!(
                "cargo not found (needed to build the netring peer): install Rust \
                 (https://rustup.rs) or set CARGO, or build it elsewhere with `cargo build \
                 --release --manifest-path {}` and set {}",
                Self::MANIFEST,
                Self::ENV
            )
        })?;
        progress(&format!(
            "netring peer: cargo build --release --manifest-path {} (the first build downloads \
             and compiles netring and aya)",
            manifest.display()
        ));
        let out = Command::new(&cargo)
            .args(["build", "--release", "--manifest-path"])
            .arg(manifest)
            .arg("--target-dir")
            .arg(target)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("running {}: {e}", cargo.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let why = err
            .lines()
            .filter(|l| l.starts_with("error"))
            .take(2)
            .collect::<Vec<_>>()
            .join(" | ");
        Err(format!(
            "building the netring peer failed ({}): {why}; see `cargo build --release \
             --manifest-path {}`, or set {} to a built binary",
            out.status,
            manifest.display(),
            Self::ENV
        ))
    }
}

/// cargo: `$CARGO` (set under `cargo run`), `cargo` on `PATH`, or `~/.cargo/bin/cargo`.
fn cargo_command() -> Option<PathBuf> {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .filter(|p| is_executable(p))
        .or_else(|| find_on_path("cargo"))
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cargo/bin/cargo"))
                .filter(|p| is_executable(p))
        })
}

/// A running peer.
#[derive(Debug)]
pub struct PeerRun {
    peer: Peer,
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
    /// When the ready line was read: the lab-clock origin of netring-peer's `t_ns`.
    origin: Instant,
}

impl PeerRun {
    /// Starts `peer` in `tb`'s receiver namespace (on its receiver CPU) and waits up to
    /// `timeout` for the line saying it receives. `harness` is the `netring-peer` binary
    /// (netring rows; `None`: looked up on `PATH`); `max_life` bounds its run should the lab
    /// die without stopping it.
    ///
    /// # Errors
    /// Spawning failed, or the tool exited or stayed silent (its last lines are quoted).
    pub fn start(
        tb: &Testbed,
        peer: Peer,
        harness: Option<&Path>,
        max_life: Duration,
        timeout: Duration,
    ) -> Result<PeerRun> {
        let argv = peer.argv(
            tb.rx_cpu(),
            tb.gen_cpu(),
            harness,
            max_life.as_secs().max(1),
        );
        let mut cmd: Command = tb.rx_exec(&argv[0], &argv[1..]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", peer.name()))?;
        let (tx, rx) = mpsc::channel();
        let out = child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>);
        for r in [out, err].into_iter().flatten() {
            let tx = tx.clone();
            thread::spawn(move || {
                // Split on \r too: netsniff-ng starts its summary lines with one.
                let mut buf = Vec::new();
                let mut rd = BufReader::new(r);
                loop {
                    buf.clear();
                    match rd.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let s = String::from_utf8_lossy(&buf);
                            for part in s.split('\r') {
                                let part = part.trim_end_matches('\n');
                                if !part.is_empty()
                                    && tx.send((Instant::now(), part.to_owned())).is_err()
                                {
                                    return;
                                }
                            }
                        }
                    }
                }
            });
        }
        drop(tx); // the readers hold the only senders: EOF on both ends the channel
        let mut run = PeerRun {
            peer,
            child,
            lines: rx,
            seen: Vec::new(),
            origin: Instant::now(),
        };
        let marker = peer.ready_marker();
        match run.wait_for(|l| l.contains(marker), timeout) {
            Ok(i) => {
                run.origin = run.seen[i].0;
                Ok(run)
            }
            Err(e) => {
                // DPDK says why in a "Cause:" line; otherwise the last two lines.
                let tail = run
                    .seen
                    .iter()
                    .find(|(_, l)| l.contains("Cause:"))
                    .map_or_else(|| run.tail(2), |(_, l)| l.trim().to_owned());
                run.kill();
                bail!(
                    "{} did not start ({e}); its last output: {tail}",
                    peer.name()
                );
            }
        }
    }

    fn tail(&self, n: usize) -> String {
        let k = self.seen.len().saturating_sub(n);
        let mut t = self.seen[k..]
            .iter()
            .map(|(_, l)| l.trim())
            .collect::<Vec<_>>()
            .join(" | ");
        if t.len() > 200 {
            let mut cut = 200;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t.truncate(cut);
            t.push_str("...");
        }
        t
    }

    /// Reads lines until one satisfies `pred`; returns its index in `seen`.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line.1);
                    self.seen.push(line);
                    if hit {
                        return Ok(self.seen.len() - 1);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => bail!("no output within {timeout:?}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    bail!(
                        "it exited ({})",
                        status.map_or("?".into(), |s| s.to_string())
                    )
                }
            }
        }
    }

    fn signal(&self, sig: i32) {
        // The tool is the child itself: `ip netns exec`, taskset and stdbuf exec into it.
        let pid = self.child.id() as i32;
        fastpath_harness::process::signal(pid, sig);
    }

    /// Takes a snapshot now, for peers that can ([`Window::Signal`] and [`Window::Periodic`]);
    /// returns when it was taken and the counts.
    ///
    /// # Errors
    /// The tool died or did not answer within 3 s.
    pub(crate) fn snapshot(&mut self) -> Result<(Instant, PeerCount)> {
        match self.peer.window() {
            Window::Signal if self.peer.is_netring() => {
                self.signal(libc::SIGUSR1);
                let i = self.wait_for(
                    |l| l.starts_with("netring-peer snapshot"),
                    Duration::from_secs(3),
                )?;
                let l = parse_netring(&self.seen[i].1)
                    .ok_or_else(|| anyhow!("cannot parse `{}`", self.seen[i].1))?;
                // Its own clock, read with the count: snapshot differences are exact.
                Ok((self.origin + Duration::from_nanos(l.t_ns), l.count))
            }
            Window::Signal => {
                let t = Instant::now();
                self.signal(libc::SIGUSR1);
                let i =
                    self.wait_for(|l| l.contains("packets captured"), Duration::from_secs(3))?;
                let line = self.seen[i].1.as_str();
                let c = parse_tcpdump(&[line]).ok_or_else(|| anyhow!("cannot parse `{line}`"))?;
                Ok((t, c))
            }
            Window::Periodic => {
                // Skip what is buffered: the next block header starts a fresh block.
                while let Ok(l) = self.lines.try_recv() {
                    self.seen.push(l);
                }
                self.wait_for(|l| l.contains("Port statistics"), Duration::from_secs(3))?;
                let i = self.wait_for(|l| l.contains("RX-packets:"), Duration::from_secs(3))?;
                let (t, line) = (self.seen[i].0, self.seen[i].1.as_str());
                let c =
                    parse_testpmd_block(&[line]).ok_or_else(|| anyhow!("cannot parse `{line}`"))?;
                Ok((t, c))
            }
            Window::AtExit => bail!("{} reports only at exit", self.peer.name()),
        }
    }

    /// Stops the tool with `SIGINT` (then `SIGKILL` after 5 s) and returns when it was told to
    /// stop and its final counts (`None` if it printed none).
    pub(crate) fn finish(mut self) -> (Instant, Option<PeerCount>, String) {
        let t = Instant::now();
        self.signal(libc::SIGINT);
        let deadline = t + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    self.kill();
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
            }
        }
        // Drain what the reader threads still have (they end at EOF).
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(l);
        }
        let all: Vec<&str> = self.seen.iter().map(|(_, l)| l.as_str()).collect();
        let count = match self.peer {
            Peer::Tcpdump => {
                // The three exit lines come last.
                let k = all.len().saturating_sub(3);
                parse_tcpdump(&all[k..])
            }
            Peer::NetsniffNg => parse_netsniff(&all),
            Peer::TestpmdAfPacket | Peer::TestpmdAfXdp => {
                // The final "Forward statistics" / accumulated block: last RX-packets line.
                all.iter()
                    .rev()
                    .find(|l| l.contains("RX-packets:"))
                    .and_then(|l| parse_testpmd_block(&[l]))
            }
            Peer::NetringV3 | Peer::NetringXdp => all
                .iter()
                .rev()
                .filter_map(|l| parse_netring(l))
                .find(|l| l.last)
                .map(|l| l.count),
        };
        let tail = self.tail(4);
        (t, count, tail)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PeerRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(libc::SIGINT);
            thread::sleep(Duration::from_millis(200));
            self.kill();
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn tcpdump_usr1_and_exit_lines() {
        let usr1 = v(&["tcpdump: 1234 packets captured, 1300 packets received by filter, 66 packets dropped by kernel"]);
        assert_eq!(
            parse_tcpdump(&usr1),
            Some(PeerCount {
                delivered: 1234,
                dropped: 66
            })
        );
        let exit = v(&[
            "5 packets captured",
            "5 packets received by filter",
            "0 packets dropped by kernel",
        ]);
        assert_eq!(
            parse_tcpdump(&exit),
            Some(PeerCount {
                delivered: 5,
                dropped: 0
            })
        );
        assert_eq!(parse_tcpdump(&v(&["listening on fplr0"])), None);
    }

    #[test]
    fn netsniff_summary() {
        let lines = v(&[
            "Running! Hang up with ^C!",
            "           4000000  packets incoming (17 unread on exit)",
            "           4000000  packets passed filter",
            "                12  packets failed filter (out of space)",
            "                 3  sec, 54 usec in total",
        ]);
        assert_eq!(
            parse_netsniff(&lines),
            Some(PeerCount {
                delivered: 3_999_983,
                dropped: 12
            })
        );
        assert_eq!(parse_netsniff(&v(&["nothing"])), None);
    }

    #[test]
    fn testpmd_block() {
        let lines = v(&[
            "  ######################## NIC statistics for port 0  ########################",
            "  RX-packets: 2613394    RX-missed: 17         RX-bytes:  167257216",
            "  RX-errors: 0",
        ]);
        assert_eq!(
            parse_testpmd_block(&lines),
            Some(PeerCount {
                delivered: 2_613_394,
                dropped: 17
            })
        );
        assert_eq!(parse_testpmd_block(&v(&["Port statistics"])), None);
    }

    #[test]
    fn argv_pins_and_names_the_interface() {
        let a = Peer::Tcpdump.argv(1, 0, None, 0);
        assert_eq!(&a[..3], ["taskset", "-c", "1"]);
        assert!(a.contains(&RX_IF.to_owned()));
        let n = Peer::NetsniffNg.argv(1, 0, None, 0);
        assert!(n.windows(2).any(|w| w == ["-t", "others"]));
        let t = Peer::TestpmdAfXdp.argv(1, 0, None, 0);
        assert!(t.iter().any(|x| x.starts_with("net_af_xdp0,iface=fplr0")));
        assert!(t.windows(2).any(|w| w == ["-l", "0,1"]));
        let h = Path::new("/x/netring-peer");
        let r = Peer::NetringXdp.argv(1, 0, Some(h), 70);
        assert_eq!(
            r,
            [
                "taskset",
                "-c",
                "1",
                "/x/netring-peer",
                "--mode",
                "xdp",
                "--iface",
                "fplr0",
                "--seconds",
                "70"
            ]
        );
        assert!(Peer::NetringV3
            .argv(1, 0, Some(h), 70)
            .windows(2)
            .any(|w| w == ["--mode", "v3"]));
    }

    #[test]
    fn netring_lines() {
        assert_eq!(
            parse_netring("netring-peer snapshot packets=1200 drops=3 t_ns=1500000000"),
            Some(NetringLine {
                count: PeerCount {
                    delivered: 1200,
                    dropped: 3
                },
                t_ns: 1_500_000_000,
                last: false
            })
        );
        let last =
            parse_netring("netring-peer packets=9 seconds=2.000000 pps=4 drops=0 t_ns=2500000000")
                .unwrap();
        assert!(last.last);
        assert_eq!(last.count.delivered, 9);
        assert_eq!(
            parse_netring("netring-peer ready mode=v3 iface=fplr0"),
            None
        );
        assert_eq!(parse_netring("tcpdump: 5 packets captured"), None);
        assert_eq!(
            parse_netring("netring-peer snapshot packets=x t_ns=1"),
            None
        );
    }
}
