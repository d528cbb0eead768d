//! The testbed: two private network namespaces joined by one veth pair.
//!
//! ```text
//!   netns fplg-<pid>                 netns fplr-<pid>
//!   generator (CPU g) ── fplg0 ═══ fplr0 ── receiver / peer tool (CPU r)
//! ```
//!
//! Guarantees:
//! - Nothing outside the two namespaces is touched: both are created with `ip netns add`, IPv6 is
//!   disabled in them before any link exists (so the kernel sends nothing by itself), and the
//!   veth ends are created directly inside them.
//! - [`Testbed`] deletes the veth pair and both namespaces when dropped (also while unwinding
//!   from a panic). XDP programs attached to the veth ends go with the links. A testbed left
//!   behind by a killed lab (`kill -9`) is removed by the next lab that starts.
//! - Namespaces are entered per thread ([`Testbed::enter_gen`], [`Testbed::enter_rx`]: `setns(2)`); the calling thread of
//!   [`Testbed::new`] stays where it was. Tools run with `ip netns exec`, which also gives them a
//!   `/sys` that shows the namespace's interfaces.
//!
//! The namespace, veth and pinning primitives are `fastpath-harness`'s; what is the lab's own is
//! the policy: the names, the two layouts, threaded NAPI and where its kthread runs.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fastpath_harness::ethtool::{EthtoolStats, EthtoolValues};
use fastpath_harness::netns::{self, Namespace};
use fastpath_harness::veth::{self, VethEnd, VethOptions};
use fastpath_harness::{cpu, process};
use serde::{Deserialize, Serialize};

/// The generator's end of the veth pair.
pub const GEN_IF: &str = "fplg0";
/// The receiver's end of the veth pair.
pub const RX_IF: &str = "fplr0";
/// Prefix of the generator namespace's name (`fplg-<pid>`).
pub const GEN_NS_PREFIX: &str = "fplg-";
/// Prefix of the receiver namespace's name (`fplr-<pid>`).
pub const RX_NS_PREFIX: &str = "fplr-";

/// Where the kernel's receive work and the receiver run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Threaded NAPI on the receiving veth; that kernel thread and the receiver share one CPU,
    /// the generator has the other (the seed's single-core picture).
    OneCore,
    /// The receiving veth's NAPI runs in softirq on the generator's CPU; the receiver is alone
    /// on the other CPU (shows the receiver's own cost and headroom).
    Split,
}

impl Layout {
    /// The name used on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Layout::OneCore => "one-core",
            Layout::Split => "split",
        }
    }

    /// One line saying who runs where.
    pub fn describe(self, gen_cpu: usize, rx_cpu: usize) -> String {
        match self {
            Layout::OneCore => format!(
                "one-core: generator on CPU{gen_cpu}; receiver and the {RX_IF} NAPI kthread on CPU{rx_cpu}"
            ),
            Layout::Split => format!(
                "split: generator and kernel receive work on CPU{gen_cpu}; receiver alone on CPU{rx_cpu}"
            ),
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "one-core" => Ok(Layout::OneCore),
            "split" => Ok(Layout::Split),
            _ => Err(format!("`{s}` is not a layout (choose one-core or split)")),
        }
    }
}

/// Interface counters as `/proc/net/dev` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// `rx_packets` (on veth: every frame its XDP program ran on, dropped ones included).
    pub rx_packets: u64,
    /// `rx_dropped`.
    pub rx_dropped: u64,
    /// `tx_packets`.
    pub tx_packets: u64,
    /// `tx_dropped`.
    pub tx_dropped: u64,
}

/// Parses the line of `ifname` out of `/proc/net/dev` text (sans-IO).
pub fn parse_net_dev(text: &str, ifname: &str) -> Option<LinkCounters> {
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() != ifname {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if f.len() < 16 {
            return None;
        }
        return Some(LinkCounters {
            rx_packets: f[1],
            rx_dropped: f[3],
            tx_packets: f[9],
            tx_dropped: f[11],
        });
    }
    None
}

/// Counters of `ifname` in the calling thread's network namespace
/// (`/proc/thread-self/net/dev`: `/proc/net` would show the main thread's namespace).
///
/// # Errors
/// The file cannot be read or has no line for `ifname`.
pub fn link_counters(ifname: &str) -> Result<LinkCounters> {
    let text = fs::read_to_string("/proc/thread-self/net/dev")
        .context("reading /proc/thread-self/net/dev")?;
    parse_net_dev(&text, ifname).ok_or_else(|| anyhow!("no interface `{ifname}` in this namespace"))
}

/// The two namespaces and the veth pair. See the module docs.
#[derive(Debug)]
pub struct Testbed {
    layout: Layout,
    /// The generator namespace; deleted on drop.
    gen: Namespace,
    /// The receiver namespace; deleted on drop.
    rx: Namespace,
    gen_cpu: usize,
    rx_cpu: usize,
    rx_ifindex: u32,
    /// `ethtool -S fplg0` / `fplr0` (their sockets live in the namespaces).
    gen_stats: EthtoolStats,
    rx_stats: EthtoolStats,
    torn_down: bool,
}

/// Checks what the lab needs before it changes anything: root and the `ip` tool.
///
/// # Errors
/// A message naming what is missing and how to get it.
pub fn check_prerequisites() -> Result<()> {
    if !process::is_root() {
        bail!(
            "fastpath lab needs root: it creates network namespaces and a veth pair and attaches \
             XDP programs (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF); run it with sudo"
        );
    }
    match Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => bail!("the `ip` tool (iproute2) is missing: install it (apt-get install iproute2)"),
    }
}

/// Deletes namespaces `fplg-<pid>`/`fplr-<pid>` that no live lab owns (left by a lab killed by
/// `kill -9`): ownership is the namespace's lock ([`netns::NsLock`], held for the testbed's
/// life), not the pid in the name, which may belong to another pid namespace. Best effort,
/// silent.
fn remove_stale() {
    let _ = netns::remove_stale(|name| {
        name.strip_prefix(GEN_NS_PREFIX)
            .or_else(|| name.strip_prefix(RX_NS_PREFIX))?
            .parse()
            .ok()
    });
}

/// Runs `f` on a new thread inside the namespace `ns`, and returns its result.
fn run_in<T: Send>(ns: &Namespace, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    thread::scope(|s| {
        thread::Builder::new()
            .name("fplab-ns".into())
            .spawn_scoped(s, || {
                ns.enter().context("setns(CLONE_NEWNET)")?;
                f()
            })
            .context("spawning a thread")?
            .join()
            .unwrap_or_else(|_| Err(anyhow!("a namespace helper thread panicked")))
    })
}

impl Testbed {
    /// Builds the testbed for `layout`: namespaces `fplg-<pid>` and `fplr-<pid>`, IPv6 off, the
    /// veth pair `fplg0`/`fplr0` with both ends up. The generator will run on the first CPU this
    /// process may use and the receiver on the second (both on the first if there is only one).
    ///
    /// # Errors
    /// Not root, `ip` missing, no network namespace or veth support in the kernel, names taken
    /// (another testbed of this process is alive). Whatever was created is removed again.
    pub fn new(layout: Layout) -> Result<Testbed> {
        check_prerequisites()?;
        remove_stale();
        let pid = std::process::id();
        let gen_ns = format!("{GEN_NS_PREFIX}{pid}");
        let rx_ns = format!("{RX_NS_PREFIX}{pid}");
        for ns in [&gen_ns, &rx_ns] {
            if netns::path(ns).exists() {
                bail!(
                    "network namespace {ns} exists already and belongs to a live testbed (this \
                     process's, or a lab's with the same pid in another pid namespace)"
                );
            }
        }
        // From here on, dropping `gen` and `rx` deletes whatever exists.
        let gen = Namespace::create(&gen_ns).context(
            "cannot create a network namespace (does the kernel have CONFIG_NET_NS, and is \
             /var/run writable?)",
        )?;
        let rx = Namespace::create(&rx_ns).context("cannot create a network namespace")?;
        run_in(&gen, || Ok(netns::disable_ipv6()?))?;
        run_in(&rx, || Ok(netns::disable_ipv6()?))?;
        veth::add(
            None,
            &VethEnd::in_netns(GEN_IF, gen.name()),
            &VethEnd::in_netns(RX_IF, rx.name()),
            &VethOptions::default(),
        )
        .context("cannot create a veth pair (does the kernel have CONFIG_VETH? `modprobe veth`)")?;
        for (ns, ifname) in [(&gen, GEN_IF), (&rx, RX_IF)] {
            ns.ip(&["link", "set", "dev", "lo", "up"])?;
            ns.ip(&["link", "set", "dev", ifname, "up"])?;
        }
        let rx_ifindex = run_in(&rx, || Ok(fastpath_harness::packet::ifindex(RX_IF)?))?;
        let gen_stats = run_in(&gen, || Ok(EthtoolStats::open(GEN_IF)?))
            .context("reading fplg0's driver statistics")?;
        let rx_stats = run_in(&rx, || Ok(EthtoolStats::open(RX_IF)?))
            .context("reading fplr0's driver statistics")?;
        let cpus = cpu::allowed_cpus();
        let gen_cpu = cpus.first().copied().unwrap_or(0);
        let rx_cpu = cpus.get(1).copied().unwrap_or(gen_cpu);
        let tb = Testbed {
            layout,
            gen,
            rx,
            gen_cpu,
            rx_cpu,
            rx_ifindex,
            gen_stats,
            rx_stats,
            torn_down: false,
        };
        tb.wait_carrier()?; // on error, `tb` drops: veth and namespaces go
        Ok(tb)
    }

    /// Waits (up to 2 s) until both ends report carrier (`LOWER_UP`).
    fn wait_carrier(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let up = [(&self.gen, GEN_IF), (&self.rx, RX_IF)]
                .iter()
                .all(|(ns, ifname)| ns.link_info(ifname).is_ok_and(|l| l.lower_up));
            if up {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the veth pair {GEN_IF}/{RX_IF} did not come up within 2 s");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The core layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The generator namespace's name.
    pub fn gen_ns(&self) -> &str {
        self.gen.name()
    }

    /// The receiver namespace's name.
    pub fn rx_ns(&self) -> &str {
        self.rx.name()
    }

    /// The CPU the generator runs on.
    pub fn gen_cpu(&self) -> usize {
        self.gen_cpu
    }

    /// The CPU the receiver (and, one-core, the NAPI kthread) runs on.
    pub fn rx_cpu(&self) -> usize {
        self.rx_cpu
    }

    /// `fplr0`'s interface index (in the receiver namespace).
    pub fn rx_ifindex(&self) -> u32 {
        self.rx_ifindex
    }

    /// Moves the calling thread into the generator namespace and pins it to the generator CPU.
    ///
    /// # Errors
    /// `setns` or `sched_setaffinity` failed.
    pub fn enter_gen(&self) -> Result<()> {
        self.gen
            .enter()
            .context("setns into the generator namespace")?;
        cpu::pin_to_cpu(0, self.gen_cpu).context("pinning the generator thread")?;
        Ok(())
    }

    /// Moves the calling thread into the receiver namespace and pins it to the receiver CPU.
    ///
    /// # Errors
    /// `setns` or `sched_setaffinity` failed.
    pub fn enter_rx(&self) -> Result<()> {
        self.rx
            .enter()
            .context("setns into the receiver namespace")?;
        cpu::pin_to_cpu(0, self.rx_cpu).context("pinning the receiver thread")?;
        Ok(())
    }

    /// Runs `f` on a helper thread inside the receiver namespace (not pinned).
    ///
    /// # Errors
    /// `setns` failed, or `f`'s error.
    pub fn in_rx<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        run_in(&self.rx, f)
    }

    /// `fplr0`'s counters.
    ///
    /// # Errors
    /// As [`link_counters`].
    pub fn rx_counters(&self) -> Result<LinkCounters> {
        self.in_rx(|| link_counters(RX_IF))
    }

    /// `fplg0`'s counters (in the generator namespace).
    ///
    /// # Errors
    /// As [`link_counters`].
    pub fn gen_counters(&self) -> Result<LinkCounters> {
        run_in(&self.gen, || link_counters(GEN_IF))
    }

    /// `ethtool -S fplg0` now (veth: `tx_queue_0_xdp_xmit`, `tx_queue_0_xdp_xmit_errors`).
    ///
    /// # Errors
    /// The interface is gone.
    pub fn gen_ethtool(&self) -> Result<EthtoolValues> {
        Ok(self.gen_stats.read()?)
    }

    /// `ethtool -S fplr0` now (veth: `rx_queue_0_xdp_packets`, `_xdp_drops`, `_xdp_redirect`,
    /// `_drops`).
    ///
    /// # Errors
    /// The interface is gone.
    pub fn rx_ethtool(&self) -> Result<EthtoolValues> {
        Ok(self.rx_stats.read()?)
    }

    /// The thread ids of `fplr0`'s NAPI kthreads (one-core layout, after [`apply_layout`](Self::apply_layout); empty otherwise).
    pub fn napi_kthreads(&self) -> Vec<i32> {
        if self.layout == Layout::OneCore {
            napi_threads(RX_IF)
        } else {
            Vec::new()
        }
    }

    /// One-core layout: turns on threaded NAPI for `fplr0` and pins its NAPI kthreads to the
    /// receiver CPU. Needs an XDP program on `fplr0` (veth has NAPI only then; the write fails
    /// with EIO otherwise). Split layout: does nothing.
    ///
    /// Kthreads are found by name (`napi/fplr0-<id>`); a second lab running at the same time
    /// has a kthread of the same name, which is pinned to the same CPU number (harmless).
    ///
    /// # Errors
    /// The write to `/sys/class/net/fplr0/threaded` failed, or no kthread appeared.
    pub fn apply_layout(&self) -> Result<()> {
        if self.layout != Layout::OneCore {
            return Ok(());
        }
        let out = self
            .rx_exec(
                "sh",
                ["-c", &format!("echo 1 > /sys/class/net/{RX_IF}/threaded")],
            )
            .stdin(Stdio::null())
            .output()
            .context("running `ip netns exec ... sh`")?;
        if !out.status.success() {
            bail!(
                "cannot turn on threaded NAPI on {RX_IF} (needs an XDP program attached first): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // The kthread is created by the write; give it a moment to show up in /proc.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let pids = napi_threads(RX_IF);
            if !pids.is_empty() {
                for pid in pids {
                    cpu::pin_to_cpu(pid, self.rx_cpu).with_context(|| {
                        format!("pinning the NAPI kthread {pid} to CPU{}", self.rx_cpu)
                    })?;
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("threaded NAPI is on but no napi/{RX_IF}-* kthread appeared");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Removes whatever XDP program is still attached to `fplr0` the legacy (netlink) way, as a
    /// peer tool may leave one behind if it dies (`ip link set dev fplr0 xdp off`). Programs
    /// held by a `bpf_link` (ours) are not touched. Best effort.
    pub fn clear_rx_xdp(&self) {
        let _ = self.rx.ip(&["link", "set", "dev", RX_IF, "xdp", "off"]);
    }

    /// A command `ip netns exec <rx ns> PROGRAM ARGS...`.
    pub fn rx_exec<I, S>(&self, program: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.rx.exec(program, args)
    }

    /// Deletes the veth pair and both namespaces now, reporting the first failure (dropping
    /// does the same silently).
    ///
    /// # Errors
    /// An `ip` command failed.
    pub fn teardown(mut self) -> Result<()> {
        self.teardown_inner()
    }

    fn teardown_inner(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.torn_down, true) {
            return Ok(());
        }
        // Deleting one end deletes both and detaches their XDP programs now, even if a socket
        // or thread still holds a namespace alive.
        let link = self.gen.ip(&["link", "del", "dev", GEN_IF]);
        let a = self.gen.delete();
        let b = self.rx.delete();
        // The link may be gone already with its namespace; that is fine.
        drop(link);
        Ok(a.and(b)?)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Err(e) = self.teardown_inner() {
            eprintln!("fastpath lab: cleanup: {e:#}");
        }
    }
}

/// Pids of the kthreads named `napi/<ifname>-*`.
fn napi_threads(ifname: &str) -> Vec<i32> {
    let prefix = format!("napi/{ifname}-");
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end().starts_with(&prefix))
        })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
 fplr0: 6400000  100000    0    7    0     0          0         0     1234      12    0    3    0     0       0          0
";

    #[test]
    fn net_dev_parses_the_right_line() {
        let c = parse_net_dev(NET_DEV, "fplr0").unwrap();
        assert_eq!(
            c,
            LinkCounters {
                rx_packets: 100_000,
                rx_dropped: 7,
                tx_packets: 12,
                tx_dropped: 3
            }
        );
        assert_eq!(parse_net_dev(NET_DEV, "lo").unwrap().rx_packets, 0);
        assert!(parse_net_dev(NET_DEV, "fplr").is_none());
        assert!(parse_net_dev("garbage", "fplr0").is_none());
    }

    /// A lab in another pid namespace names its namespaces after a pid this one does not have;
    /// while it runs (holding their locks) a lab starting here must not delete them.
    #[test]
    fn stale_cleanup_spares_a_live_labs_namespaces() {
        use fastpath_testutil::{have_cmd, is_root, require};
        require!(is_root() && have_cmd("ip"), "needs root and `ip`");
        // Above any pid_max (2^22): no process here has this pid.
        let name = format!("{GEN_NS_PREFIX}4999999");
        let live = Namespace::create(&name).unwrap();
        remove_stale();
        assert!(
            netns::path(&name).exists(),
            "the live namespace {name} was deleted"
        );
        drop(live);
        assert!(!netns::path(&name).exists());
    }

    #[test]
    fn layouts_round_trip() {
        for l in [Layout::OneCore, Layout::Split] {
            assert_eq!(l.name().parse::<Layout>().unwrap(), l);
        }
        assert!("both".parse::<Layout>().is_err());
    }
}
