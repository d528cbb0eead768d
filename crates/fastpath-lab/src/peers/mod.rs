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
//!
//! One file per tool (its command line, its ready line and its output parsers); this file has
//! the [`Peer`] list and [`PeerRun`], the child process they all run as.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fastpath_harness::process::{self, find_on_path};

use crate::testbed::Testbed;

mod netring;
mod netsniff;
mod tcpdump;
mod testpmd;

pub use netring::{parse_netring, NetringLine, NetringPeer};
pub use netsniff::parse_netsniff;
pub use tcpdump::parse_tcpdump;
pub use testpmd::{parse_testpmd_block, remove_dpdk_runtime_dir};

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
        match self {
            Peer::Tcpdump => tcpdump::argv(&cpu),
            Peer::NetsniffNg => netsniff::argv(&cpu),
            Peer::TestpmdAfPacket => testpmd::argv(testpmd::Vdev::AfPacket, rx_cpu, other_cpu),
            Peer::TestpmdAfXdp => testpmd::argv(testpmd::Vdev::AfXdp, rx_cpu, other_cpu),
            Peer::NetringV3 | Peer::NetringXdp => {
                let bin = harness.map_or_else(
                    || self.binary().to_owned(),
                    |p| p.to_string_lossy().into_owned(),
                );
                let mode = if self == Peer::NetringV3 { "v3" } else { "xdp" };
                netring::argv(&cpu, &bin, mode, seconds)
            }
        }
    }

    /// The line that says the tool is receiving.
    fn ready_marker(self) -> &'static str {
        match self {
            Peer::Tcpdump => tcpdump::READY,
            Peer::NetsniffNg => netsniff::READY,
            Peer::TestpmdAfPacket | Peer::TestpmdAfXdp => testpmd::READY,
            Peer::NetringV3 | Peer::NetringXdp => netring::READY,
        }
    }
}

/// `&str`s to owned `String`s (command lines).
fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
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
        let lines = read_lines(&mut child);
        let mut run = PeerRun {
            peer,
            child,
            lines,
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
        process::signal(pid, sig);
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
            Peer::Tcpdump => tcpdump::final_count(&all),
            Peer::NetsniffNg => parse_netsniff(&all),
            Peer::TestpmdAfPacket | Peer::TestpmdAfXdp => testpmd::final_count(&all),
            Peer::NetringV3 | Peer::NetringXdp => netring::final_count(&all),
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

/// Reads the child's stdout and stderr on two threads, line by line (split on `\r` too:
/// netsniff-ng starts its summary lines with one), each line timestamped when read. The
/// channel ends when both reach EOF.
fn read_lines(child: &mut Child) -> mpsc::Receiver<(Instant, String)> {
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
    rx
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testbed::RX_IF;

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
}
