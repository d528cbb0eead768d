//! Network namespace and veth guards.
//!
//! Guarantees: a [`NetNs`] is entered on the thread that created it and left
//! (and deleted) when it is dropped, including during unwinding after a test
//! panic; its drop never panics. Interfaces are created through
//! `ip -n NAME ...`, so they always land in this namespace regardless of the
//! calling thread's current one.

use std::ffi::CString;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys;

/// Where `ip netns add` bind-mounts namespace files.
const NETNS_RUN_DIR: &str = "/var/run/netns";

/// Process-wide counter making namespace names unique across threads.
/// Relaxed is enough: only uniqueness of the returned values matters.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A named network namespace, entered on the current thread.
///
/// [`NetNs::new`] runs `ip netns add NAME`, sets
/// `net.ipv6.conf.{all,default}.disable_ipv6=1` and brings `lo` up inside it,
/// and moves the calling thread into it with `setns(2)`. Sockets the thread
/// opens afterwards (and processes it spawns) live in the namespace.
///
/// Dropping it moves the thread back to the namespace it was in before and
/// runs `ip netns del NAME`. The kernel destroys the namespace (and the veths
/// in it) once the last reference is gone: sockets opened inside keep it
/// alive until they are closed, but the name disappears from
/// `ip netns list` immediately. Drop never panics; failures go to stderr.
///
/// `!Send`: `setns` affects only the calling thread, so the guard must be
/// dropped on the thread that created it.
///
/// Per-thread pitfalls (verified on 6.18):
/// - `/proc/sys/net/...` follows the *reading thread's* namespace, but
///   `/proc/net/...` (= `/proc/self/net`) follows the main thread's: read
///   `/proc/thread-self/net/...` instead.
/// - `/sys/class/net` shows the namespace of whoever mounted `/sys`, i.e.
///   the host. Use [`NetNs::exec`] (which remounts `/sys`) or `ip`.
/// - Threads spawned from inside start inside; threads spawned before stay
///   outside. So do child processes.
///
/// # Examples
///
/// ```no_run
/// let ns = fastpath_testutil::NetNs::new("fpt");
/// let veth = ns.veth_pair("fpa", "fpb");
/// assert!(veth.a_index > 0);
/// ```
// Implementation: this file.
pub struct NetNs {
    name: String,
    /// `/proc/thread-self/ns/net` as it was before we entered.
    prev: File,
    /// Cleared once the thread is back in `prev`; then Drop skips setns.
    entered: bool,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for NetNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetNs")
            .field("name", &self.name)
            .field("entered", &self.entered)
            .finish()
    }
}

impl NetNs {
    /// Creates and enters a namespace named `"{prefix}-{pid}-{counter}"`.
    ///
    /// # Panics
    ///
    /// If any step fails (usually: not root, or `ip` missing). Probe with
    /// [`crate::is_root`] and [`crate::require!`] first; use
    /// [`NetNs::try_new`] to handle the error instead.
    #[track_caller]
    pub fn new(prefix: &str) -> NetNs {
        match NetNs::try_new(prefix) {
            Ok(ns) => ns,
            Err(e) => panic!("NetNs::new({prefix:?}): {e}"),
        }
    }

    /// Like [`NetNs::new`], returning the error instead of panicking.
    ///
    /// `prefix` must be 1..=8 characters of `[a-z0-9_]`.
    ///
    /// Before creating its own, it removes namespaces named
    /// `"{prefix}-{pid}-*"` whose process no longer exists (left behind by a
    /// test run that was killed before Drop could run).
    pub fn try_new(prefix: &str) -> io::Result<NetNs> {
        check_prefix(prefix)?;
        remove_stale(prefix);
        let pid = std::process::id();
        let name = loop {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let name = format!("{prefix}-{pid}-{id}");
            // A previous process with our pid may have left this name behind.
            if !ns_path(&name).exists() {
                break name;
            }
        };
        run_ip(&["netns", "add", &name])?;
        // From here on, failure must delete the namespace again.
        match enter(&name) {
            Ok(prev) => {
                let ns = NetNs {
                    name,
                    prev,
                    entered: true,
                    _not_send: PhantomData,
                };
                ns.configure()?; // on error, `ns` drops: leave + delete
                Ok(ns)
            }
            Err(e) => {
                if let Err(del) = run_ip(&["netns", "del", &name]) {
                    eprintln!("fastpath-testutil: cleanup of netns {name} failed: {del}");
                }
                Err(e)
            }
        }
    }

    /// Silences IPv6 and brings `lo` up. Runs with the thread already inside.
    fn configure(&self) -> io::Result<()> {
        // /proc/sys/net resolves against the netns of the *thread* doing the
        // lookup (current->nsproxy), so this writes the new namespace's
        // values. `default` covers interfaces created later, `all` the
        // existing ones (lo). Must happen before any veth exists, or the
        // kernel starts DAD/MLD/RS on it. No IPv6 in the kernel: nothing to do.
        for knob in ["all", "default"] {
            let path = format!("/proc/sys/net/ipv6/conf/{knob}/disable_ipv6");
            match fs::write(&path, "1") {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(annotate(e, &format!("write 1 to {path}"))),
            }
        }
        self.ip(&["link", "set", "dev", "lo", "up"])
    }

    /// The namespace name, as shown by `ip netns list`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A [`Command`] running `ip netns exec NAME cmd args...`.
    ///
    /// `ip netns exec` also gives the child a private mount namespace with
    /// `/sys` remounted, so tools that read `/sys/class/net` see this
    /// namespace's interfaces.
    pub fn exec<I, S>(&self, cmd: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, cmd]).args(args);
        c
    }

    /// Runs `ip -n NAME args...`, failing with `ip`'s stderr if it exits
    /// non-zero.
    ///
    /// # Errors
    ///
    /// Spawning `ip` failed, or it exited non-zero.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run_ip(&full)
    }

    /// Creates a veth pair `a`/`b` with one queue each; see
    /// [`NetNs::veth_pair_with`].
    #[track_caller]
    pub fn veth_pair(&self, a: &str, b: &str) -> Veth {
        self.veth_pair_with(a, b, &VethOptions::default())
    }

    /// Creates a veth pair with `queues` RX and TX queues on each end (for
    /// multi-queue AF_XDP tests); see [`NetNs::veth_pair_with`].
    #[track_caller]
    pub fn veth_pair_queues(&self, a: &str, b: &str, queues: u32) -> Veth {
        self.veth_pair_with(
            a,
            b,
            &VethOptions {
                queues: Some(queues),
                ..VethOptions::default()
            },
        )
    }

    /// Creates a veth pair `a`/`b` inside this namespace.
    ///
    /// Both ends are up, have IPv6 disabled and no IPv4 address, so the
    /// kernel itself sends nothing on them. Names must be valid interface
    /// names (1..=15 bytes, IFNAMSIZ).
    ///
    /// # Panics
    ///
    /// If `ip` fails (names taken or too long, not root, ...).
    #[track_caller]
    pub fn veth_pair_with(&self, a: &str, b: &str, opts: &VethOptions) -> Veth {
        match self.try_veth_pair(a, b, opts) {
            Ok(v) => v,
            Err(e) => panic!("veth pair {a}/{b} in netns {}: {e}", self.name),
        }
    }

    /// Like [`NetNs::veth_pair_with`], returning the error.
    ///
    /// # Errors
    ///
    /// A name is invalid, or an `ip` command failed.
    pub fn try_veth_pair(&self, a: &str, b: &str, opts: &VethOptions) -> io::Result<Veth> {
        check_ifname(a)?;
        check_ifname(b)?;
        let (mtu, queues) = (
            opts.mtu.map(|m| m.to_string()),
            opts.queues.map(|q| q.to_string()),
        );
        let per_end = |args: &mut Vec<String>, name: &str| {
            args.extend(["name".into(), name.into()]);
            if let Some(q) = &queues {
                args.extend([
                    "numrxqueues".into(),
                    q.clone(),
                    "numtxqueues".into(),
                    q.clone(),
                ]);
            }
            if let Some(m) = &mtu {
                args.extend(["mtu".into(), m.clone()]);
            }
        };
        let mut args: Vec<String> = vec!["link".into(), "add".into()];
        per_end(&mut args, a);
        args.extend(["type".into(), "veth".into(), "peer".into()]);
        per_end(&mut args, b);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ip(&args)?;
        for end in [a, b] {
            // Already 1 via conf.default; set per interface anyway so the
            // guarantee does not depend on the default having been written.
            self.disable_ipv6(end)?;
            self.ip(&["link", "set", "dev", end, "up"])?;
        }
        self.wait_links_settled()?;
        let (a_index, a_mac) = self.link_info(a)?;
        let (b_index, b_mac) = self.link_info(b)?;
        Ok(Veth {
            a: a.to_owned(),
            b: b.to_owned(),
            a_index,
            b_index,
            a_mac,
            b_mac,
        })
    }

    /// `ip -n NAME link set dev IF up`, then waits until the kernel has
    /// finished the resulting carrier changes (see
    /// [`NetNs::wait_links_settled`]).
    ///
    /// # Errors
    ///
    /// `ip` failed (e.g. no such interface), or the links did not settle.
    pub fn set_up(&self, ifname: &str) -> io::Result<()> {
        self.ip(&["link", "set", "dev", ifname, "up"])?;
        self.wait_links_settled()
    }

    /// `ip -n NAME link set dev IF down`, then waits like
    /// [`NetNs::set_up`].
    ///
    /// # Errors
    ///
    /// `ip` failed (e.g. no such interface), or the links did not settle.
    pub fn set_down(&self, ifname: &str) -> io::Result<()> {
        self.ip(&["link", "set", "dev", ifname, "down"])?;
        self.wait_links_settled()
    }

    /// Waits (up to 2 s) until, for every interface in the namespace, the
    /// carrier flag (`LOWER_UP`) agrees with the operational state (`UP`).
    ///
    /// Why: when a veth end comes up, the kernel turns the carrier on for
    /// both ends at once, but the *peer's* TX queue is only activated later
    /// by the linkwatch worker (`dev_activate` defers while carrier is off).
    /// Until then its queue is `noop_qdisc`, which drops frames while
    /// `sendto` still reports success. Linkwatch sets operstate just before
    /// activating, so this is the observable end of the transition.
    ///
    /// # Errors
    ///
    /// `ip` failed, or the links were still changing after 2 s.
    pub fn wait_links_settled(&self) -> io::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let out = ip_output(&["-n", &self.name, "-o", "link", "show"])?;
            let pending: Vec<&str> = out.lines().filter(|l| !link_settled(l)).collect();
            if pending.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("links in netns {} did not settle: {pending:?}", self.name),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Ifindex of `ifname` in this namespace (`ip -n NAME -o link show`).
    ///
    /// # Errors
    ///
    /// `ip` failed (e.g. no such interface) or printed something unexpected.
    pub fn ifindex(&self, ifname: &str) -> io::Result<u32> {
        self.link_info(ifname).map(|(idx, _)| idx)
    }

    /// `net.ipv6.conf.IF.disable_ipv6=1`, written through `ip netns exec`
    /// so it works from any thread. Missing IPv6 support is not an error.
    fn disable_ipv6(&self, ifname: &str) -> io::Result<()> {
        let path = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
        if !Path::new("/proc/sys/net/ipv6").exists() {
            return Ok(());
        }
        let out = self
            .exec("sh", ["-c", "echo 1 > \"$1\"", "sh", &path])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| annotate(e, "spawn ip netns exec sh"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "write 1 to {path} in netns {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Parses `N: IF@PEER: <...> ... link/ether MAC brd ...` from
    /// `ip -n NAME -o link show dev IF`.
    fn link_info(&self, ifname: &str) -> io::Result<(u32, [u8; 6])> {
        let out = ip_output(&["-n", &self.name, "-o", "link", "show", "dev", ifname])?;
        let bad = || io::Error::other(format!("unexpected `ip link show` output: {out:?}"));
        let index = out
            .split(':')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(bad)?;
        let mac = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .and_then(parse_mac)
            .ok_or_else(bad)?;
        Ok((index, mac))
    }

    /// Leaves the namespace (if still inside) and deletes it.
    fn teardown(&mut self) -> io::Result<()> {
        if self.entered {
            sys::setns_net(self.prev.as_fd())
                .map_err(|e| annotate(e, "setns back to the previous netns"))?;
            self.entered = false;
        }
        run_ip(&["netns", "del", &self.name])
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            // Never panic in Drop: we may already be unwinding.
            eprintln!(
                "fastpath-testutil: cleanup of netns {} failed: {e}",
                self.name
            );
        }
    }
}

/// Options for [`NetNs::veth_pair_with`]; `None` keeps the kernel default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VethOptions {
    /// MTU of both ends.
    pub mtu: Option<u32>,
    /// `numrxqueues`/`numtxqueues` of both ends (kernel default: 1).
    pub queues: Option<u32>,
}

/// A veth pair created by [`NetNs::veth_pair`]; frames sent on `a` arrive on
/// `b` and vice versa.
///
/// Plain data: the interfaces go away with their namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    /// Name of the first end.
    pub a: String,
    /// Name of the second end.
    pub b: String,
    /// Ifindex of `a` (in the namespace).
    pub a_index: u32,
    /// Ifindex of `b` (in the namespace).
    pub b_index: u32,
    /// MAC address of `a`.
    pub a_mac: [u8; 6],
    /// MAC address of `b`.
    pub b_mac: [u8; 6],
}

/// Enters `/var/run/netns/NAME` on this thread, returning the previous netns.
fn enter(name: &str) -> io::Result<File> {
    let prev = File::open("/proc/thread-self/ns/net")
        .map_err(|e| annotate(e, "open /proc/thread-self/ns/net"))?;
    let path = ns_path(name);
    let target = File::open(&path).map_err(|e| annotate(e, &format!("open {}", path.display())))?;
    sys::setns_net(target.as_fd())
        .map_err(|e| annotate(e, &format!("setns({}, CLONE_NEWNET)", path.display())))?;
    Ok(prev)
}

fn ns_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Deletes `{prefix}-{pid}-{n}` namespaces whose `pid` is gone. Best effort.
fn remove_stale(prefix: &str) {
    let Ok(dir) = fs::read_dir(NETNS_RUN_DIR) else {
        return;
    };
    let me = std::process::id();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((pid, id)) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.split_once('-'))
        else {
            continue;
        };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), id.parse::<u32>()) else {
            continue;
        };
        if pid != me && i32::try_from(pid).is_ok_and(|p| !sys::pid_alive(p)) {
            match run_ip(&["netns", "del", name]) {
                Ok(()) => eprintln!("fastpath-testutil: removed stale netns {name}"),
                Err(e) => eprintln!("fastpath-testutil: could not remove stale netns {name}: {e}"),
            }
        }
    }
}

fn check_prefix(prefix: &str) -> io::Result<()> {
    let ok = (1..=8).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("netns prefix {prefix:?} must be 1..=8 of [a-z0-9_]"),
        ))
    }
}

fn check_ifname(name: &str) -> io::Result<()> {
    // IFNAMSIZ is 16 including the NUL; '/', ':' and whitespace are rejected
    // by the kernel (dev_valid_name).
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
        && CString::new(name).is_ok();
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?} (1..=15 bytes)"),
        ))
    }
}

/// One `ip -o link show` line: carrier (`LOWER_UP`) agrees with operstate.
/// `state UNKNOWN` (lo, devices without operstate) counts as settled.
fn link_settled(line: &str) -> bool {
    let flags = line
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map_or("", |(f, _)| f);
    let carrier = flags.split(',').any(|f| f == "LOWER_UP");
    match line.split_whitespace().skip_while(|w| *w != "state").nth(1) {
        Some("UNKNOWN") | None => true,
        Some(state) => carrier == (state == "UP"),
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Runs `ip args...`, returning stdout; errors carry the command and stderr.
fn ip_output(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| annotate(e, "spawn `ip` (is iproute2 installed?)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn run_ip(args: &[&str]) -> io::Result<()> {
    ip_output(args).map(drop)
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:00:0a:ff:10:01"),
            Some([2, 0, 0x0a, 0xff, 0x10, 1])
        );
        assert_eq!(parse_mac("02:00:0a:ff:10"), None);
        assert_eq!(parse_mac("02:00:0a:ff:10:01:02"), None);
        assert_eq!(parse_mac("zz:00:0a:ff:10:01"), None);
    }

    #[test]
    fn settled_lines() {
        let up = "3: fa@fb: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT";
        let pending = "3: fa@fb: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state LOWERLAYERDOWN";
        let nocarrier =
            "3: fa@fb: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 state LOWERLAYERDOWN mode";
        let down = "3: fa@fb: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT";
        let lo = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT";
        assert!(
            link_settled(up) && link_settled(nocarrier) && link_settled(down) && link_settled(lo)
        );
        assert!(!link_settled(pending));
    }

    #[test]
    fn name_checks() {
        assert!(check_prefix("fpt").is_ok());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("Fpt").is_err());
        assert!(check_prefix("fpt-x").is_err());
        assert!(check_ifname("fpa0").is_ok());
        assert!(check_ifname("0123456789abcde").is_ok());
        assert!(check_ifname("0123456789abcdef").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("").is_err());
    }
}
