//! Network namespaces: a named one that is deleted when dropped ([`Namespace`]), and a guard
//! that also holds the creating thread inside it ([`NetNs`], what tests use).
//!
//! Guarantees: a [`NetNs`] is entered on the thread that created it and left
//! (and deleted) when it is dropped, including during unwinding after a test
//! panic; no drop here ever panics. Interfaces are created through
//! `ip -n NAME ...`, so they always land in the intended namespace regardless
//! of the calling thread's current one.
//!
//! Ownership: every [`Namespace`] holds an [`NsLock`] (an exclusive `flock` on
//! `LOCK_DIR/NAME.lock`) from before it exists until after it is deleted, and
//! [`remove_stale`] deletes only namespaces whose lock nobody holds. A lock,
//! unlike a pid in the name, means the same in every pid namespace and cannot
//! be taken over by a reused pid; the kernel releases it when its holder dies,
//! however it dies.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::ip::{self, annotate, LinkInfo};
use crate::veth::{self, Veth, VethEnd, VethOptions};
use crate::{process, sys};

/// Where `ip netns add` bind-mounts namespace files.
pub const NETNS_RUN_DIR: &str = "/var/run/netns";

/// `/var/run/netns/NAME`: the file `ip netns add NAME` creates.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Writes `1` to `net.ipv6.conf.{all,default}.disable_ipv6` of the *calling thread's*
/// namespace (`/proc/sys/net` resolves against the netns of the thread doing the lookup), so
/// the kernel starts no DAD/MLD/RS on interfaces: `default` covers interfaces created later,
/// `all` the existing ones (lo). Call it before any veth exists. No IPv6 in the kernel:
/// nothing to do.
///
/// # Errors
/// A knob exists but cannot be written.
pub fn disable_ipv6() -> io::Result<()> {
    for knob in ["all", "default"] {
        let path = format!("/proc/sys/net/ipv6/conf/{knob}/disable_ipv6");
        match fs::write(&path, "1") {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(annotate(e, &format!("write 1 to {path}"))),
        }
    }
    Ok(())
}

/// Where the namespaces' ownership locks live ([`NsLock`]): `NAME.lock` per namespace.
pub const LOCK_DIR: &str = "/var/run/fastpath-harness/netns";

/// `LOCK_DIR/NAME.lock`.
pub fn lock_path(name: &str) -> PathBuf {
    Path::new(LOCK_DIR).join(format!("{name}.lock"))
}

/// Proof that this process owns the namespace `NAME`: an exclusive `flock(2)` on
/// [`lock_path`]`(NAME)`, held from before the namespace is created until after it is
/// deleted. Dropping it unlinks the file, then closes it (which releases the lock).
///
/// The kernel releases the lock when the holder dies (`kill -9` included), so "the lock is
/// free" proves "no live owner" in every pid namespace that shares `/var/run`, where a pid in
/// the name proves nothing (another pid namespace, or a reused pid).
// Implementation: this file.
#[derive(Debug)]
pub struct NsLock {
    /// Never read: open for as long as the lock is held; closing it releases the lock.
    _file: File,
    path: PathBuf,
}

impl NsLock {
    /// Takes the lock of `name` if no live process holds it: `Ok(None)` when one does.
    ///
    /// # Errors
    /// [`LOCK_DIR`] or the lock file cannot be created (not root) or locked.
    pub fn try_acquire(name: &str) -> io::Result<Option<NsLock>> {
        fs::create_dir_all(LOCK_DIR).map_err(|e| annotate(e, &format!("create {LOCK_DIR}")))?;
        let path = lock_path(name);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|e| annotate(e, &format!("open {}", path.display())))?;
            if !sys::try_lock_exclusive(file.as_fd())
                .map_err(|e| annotate(e, &format!("flock {}", path.display())))?
            {
                return Ok(None);
            }
            // The last holder may have unlinked the file between our open and our lock: then
            // the lock is on a file nobody else can find any more. Only a lock on the file the
            // path names now counts; otherwise open the path again.
            let held = file.metadata()?;
            match fs::metadata(&path) {
                Ok(m) if (m.dev(), m.ino()) == (held.dev(), held.ino()) => {
                    return Ok(Some(NsLock { _file: file, path }))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(annotate(e, &format!("stat {}", path.display()))),
            }
        }
    }
}

impl Drop for NsLock {
    fn drop(&mut self) {
        // Unlink first, close (unlock) after, as `_file` drops: whoever opens the path later
        // finds a new file, or detects the unlinked one (see `try_acquire`).
        let _ = fs::remove_file(&self.path);
    }
}

/// Deletes (`ip netns del`) the namespaces in `/var/run/netns` that `owner` calls ours (it
/// returns the pid in the name, `None` for a name that is not ours) and that no live process
/// owns:
/// - a namespace with a lock file ([`NsLock`]) is stale when nobody holds the lock, whatever
///   the pid in its name says (its owner may live in another pid namespace);
/// - a namespace without one was made by a fastpath from before the locks (or its owner failed
///   to delete it and is gone or going): then the pid is all there is, and it is stale when
///   that pid is not this process and [`process::alive`] says it is gone.
///
/// Best effort; returns each name it tried to delete with the outcome, for the caller to report
/// or not.
pub fn remove_stale(owner: impl Fn(&str) -> Option<u32>) -> Vec<(String, io::Result<()>)> {
    let Ok(dir) = fs::read_dir(NETNS_RUN_DIR) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut tried = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = owner(name) else { continue };
        if lock_path(name).exists() {
            match NsLock::try_acquire(name) {
                // Held by us now: no one can be creating it; it may have been deleted by its
                // owner meanwhile.
                Ok(Some(_lock)) if path(name).exists() => {
                    tried.push((name.to_owned(), ip::ip(&["netns", "del", name])));
                }
                Ok(_) => {}
                Err(e) => tried.push((name.to_owned(), Err(e))),
            }
        } else if pid != me && i32::try_from(pid).is_ok_and(|p| !process::alive(p)) {
            tried.push((name.to_owned(), ip::ip(&["netns", "del", name])));
        }
    }
    tried
}

/// A named network namespace (`ip netns add NAME`) that this process owns (it holds its
/// [`NsLock`]): deleted (`ip netns del NAME`) by [`Namespace::delete`] or when dropped.
///
/// Creating one enters nothing: threads join it with [`Namespace::enter`], tools run in it
/// with [`Namespace::exec`]. The kernel destroys the namespace (and the interfaces in it) once
/// the last reference is gone: sockets or threads inside keep it alive after the delete, but
/// the name disappears from `ip netns list` at once.
// Implementation: this file.
pub struct Namespace {
    name: String,
    /// `/var/run/netns/NAME`, open: what `setns` takes.
    file: File,
    /// Set once `ip netns del` has been tried; then Drop does nothing.
    deleted: bool,
    /// Ownership, released after the delete.
    lock: Option<NsLock>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .field("deleted", &self.deleted)
            .finish()
    }
}

impl Namespace {
    /// Takes the namespace's [`NsLock`], runs `ip netns add NAME`, then opens
    /// `/var/run/netns/NAME` (deleting the namespace again if that fails).
    ///
    /// # Errors
    /// A live process holds the name's lock (`AlreadyExists`), the lock cannot be taken (not
    /// root), `ip` failed (the name exists, no CONFIG_NET_NS) or the file cannot be opened.
    pub fn create(name: &str) -> io::Result<Namespace> {
        let lock = NsLock::try_acquire(name)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "netns {name} belongs to a live process (it holds {})",
                    lock_path(name).display()
                ),
            )
        })?;
        ip::ip(&["netns", "add", name])?;
        let p = path(name);
        match File::open(&p) {
            Ok(file) => Ok(Namespace {
                name: name.to_owned(),
                file,
                deleted: false,
                lock: Some(lock),
            }),
            Err(e) => {
                if let Err(del) = ip::ip(&["netns", "del", name]) {
                    eprintln!("fastpath-harness: cleanup of netns {name} failed: {del}");
                }
                Err(annotate(e, &format!("open {}", p.display())))
            }
        }
    }

    /// The namespace name, as shown by `ip netns list`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `setns(2)`: moves the *calling thread* into this namespace. Sockets the thread opens
    /// afterwards (and threads and processes it starts) live in it.
    ///
    /// # Errors
    /// `setns` failed (no CAP_SYS_ADMIN).
    pub fn enter(&self) -> io::Result<()> {
        sys::setns_net(self.file.as_fd())
    }

    /// A [`Command`] running `ip netns exec NAME cmd args...`.
    ///
    /// `ip netns exec` also gives the child a private mount namespace with
    /// `/sys` remounted, so tools that read `/sys/class/net` see this
    /// namespace's interfaces.
    pub fn exec<I, S>(&self, cmd: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
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
        ip::ip(&full)
    }

    /// `ip -n NAME -o link show dev IF`, parsed.
    ///
    /// # Errors
    ///
    /// `ip` failed (e.g. no such interface) or printed something unexpected.
    pub fn link_info(&self, ifname: &str) -> io::Result<LinkInfo> {
        ip::link_info(&self.name, ifname)
    }

    /// Creates a veth pair `a`/`b` inside this namespace.
    ///
    /// Both ends are up, have IPv6 disabled and no IPv4 address, so the
    /// kernel itself sends nothing on them (provided the namespace's
    /// `conf.default` was set by [`disable_ipv6`] before). Names must be valid
    /// interface names (1..=15 bytes, IFNAMSIZ).
    ///
    /// # Errors
    ///
    /// A name is invalid, or an `ip` command failed.
    pub fn veth_pair(&self, a: &str, b: &str, opts: &VethOptions) -> io::Result<Veth> {
        veth::add(Some(&self.name), &VethEnd::here(a), &VethEnd::here(b), opts)?;
        for end in [a, b] {
            // Already 1 via conf.default; set per interface anyway so the
            // guarantee does not depend on the default having been written.
            self.disable_ipv6_on(end)?;
            self.ip(&["link", "set", "dev", end, "up"])?;
        }
        self.wait_links_settled()?;
        let a_info = self.link_info(a)?;
        let b_info = self.link_info(b)?;
        Ok(Veth {
            a: a.to_owned(),
            b: b.to_owned(),
            a_index: a_info.index,
            b_index: b_info.index,
            a_mac: a_info.mac,
            b_mac: b_info.mac,
        })
    }

    /// `ip -n NAME link set dev IF up`, then waits until the kernel has
    /// finished the resulting carrier changes (see
    /// [`Namespace::wait_links_settled`]).
    ///
    /// # Errors
    ///
    /// `ip` failed (e.g. no such interface), or the links did not settle.
    pub fn set_up(&self, ifname: &str) -> io::Result<()> {
        self.ip(&["link", "set", "dev", ifname, "up"])?;
        self.wait_links_settled()
    }

    /// `ip -n NAME link set dev IF down`, then waits like
    /// [`Namespace::set_up`].
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
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let out = ip::ip_output(&["-n", &self.name, "-o", "link", "show"])?;
            let pending: Vec<&str> = out.lines().filter(|l| !ip::link_settled(l)).collect();
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("links in netns {} did not settle: {pending:?}", self.name),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `net.ipv6.conf.IF.disable_ipv6=1`, written through `ip netns exec`
    /// so it works from any thread. Missing IPv6 support is not an error.
    fn disable_ipv6_on(&self, ifname: &str) -> io::Result<()> {
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

    /// `ip netns del NAME` now. Tried once: a second call, and the drop, do nothing.
    ///
    /// # Errors
    /// `ip` failed.
    pub fn delete(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.deleted, true) {
            return Ok(());
        }
        let r = ip::ip(&["netns", "del", &self.name]);
        // Released either way: if the delete failed, the namespace is left without a lock
        // file, and `remove_stale` treats it by our pid once we are gone.
        self.lock = None;
        r
    }
}

impl AsFd for Namespace {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            // Never panic in Drop: we may already be unwinding.
            eprintln!(
                "fastpath-harness: cleanup of netns {} failed: {e}",
                self.name
            );
        }
    }
}

/// Process-wide counter making [`NetNs`] names unique across threads.
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
/// let ns = fastpath_harness::netns::NetNs::new("fpt");
/// let veth = ns.veth_pair("fpa", "fpb");
/// assert!(veth.a_index > 0);
/// ```
// Implementation: this file.
pub struct NetNs {
    ns: Namespace,
    /// `/proc/thread-self/ns/net` as it was before we entered.
    prev: File,
    /// Cleared once the thread is back in `prev`; then Drop skips setns.
    entered: bool,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for NetNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetNs")
            .field("name", &self.ns.name)
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
    /// [`crate::process::is_root`] (and the tests' `require!`) first; use
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
    ///
    /// # Errors
    ///
    /// A bad prefix, or creating, entering or configuring the namespace failed.
    pub fn try_new(prefix: &str) -> io::Result<NetNs> {
        check_prefix(prefix)?;
        for (name, r) in remove_stale(|name| stale_owner(prefix, name)) {
            match r {
                Ok(()) => eprintln!("fastpath-harness: removed stale netns {name}"),
                Err(e) => eprintln!("fastpath-harness: could not remove stale netns {name}: {e}"),
            }
        }
        let pid = std::process::id();
        let name = loop {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let name = format!("{prefix}-{pid}-{id}");
            // A previous process with our pid may have left this name behind.
            if !path(&name).exists() {
                break name;
            }
        };
        // From here on, failure deletes the namespace again (`ns` drops).
        let ns = Namespace::create(&name)?;
        let prev = File::open("/proc/thread-self/ns/net")
            .map_err(|e| annotate(e, "open /proc/thread-self/ns/net"))?;
        ns.enter().map_err(|e| {
            annotate(
                e,
                &format!("setns({}, CLONE_NEWNET)", path(&name).display()),
            )
        })?;
        let ns = NetNs {
            ns,
            prev,
            entered: true,
            _not_send: PhantomData,
        };
        ns.configure()?; // on error, `ns` drops: leave + delete
        Ok(ns)
    }

    /// Silences IPv6 and brings `lo` up. Runs with the thread already inside.
    fn configure(&self) -> io::Result<()> {
        disable_ipv6()?;
        self.ip(&["link", "set", "dev", "lo", "up"])
    }

    /// The namespace name, as shown by `ip netns list`.
    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// A [`Command`] running `ip netns exec NAME cmd args...`; see [`Namespace::exec`].
    pub fn exec<I, S>(&self, cmd: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ns.exec(cmd, args)
    }

    /// Runs `ip -n NAME args...`; see [`Namespace::ip`].
    ///
    /// # Errors
    ///
    /// Spawning `ip` failed, or it exited non-zero.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        self.ns.ip(args)
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

    /// Creates a veth pair `a`/`b` inside this namespace; see [`Namespace::veth_pair`].
    ///
    /// # Panics
    ///
    /// If `ip` fails (names taken or too long, not root, ...).
    #[track_caller]
    pub fn veth_pair_with(&self, a: &str, b: &str, opts: &VethOptions) -> Veth {
        match self.try_veth_pair(a, b, opts) {
            Ok(v) => v,
            Err(e) => panic!("veth pair {a}/{b} in netns {}: {e}", self.name()),
        }
    }

    /// Like [`NetNs::veth_pair_with`], returning the error.
    ///
    /// # Errors
    ///
    /// A name is invalid, or an `ip` command failed.
    pub fn try_veth_pair(&self, a: &str, b: &str, opts: &VethOptions) -> io::Result<Veth> {
        self.ns.veth_pair(a, b, opts)
    }

    /// `ip -n NAME link set dev IF up`, then waits for the links to settle; see
    /// [`Namespace::set_up`].
    ///
    /// # Errors
    ///
    /// `ip` failed (e.g. no such interface), or the links did not settle.
    pub fn set_up(&self, ifname: &str) -> io::Result<()> {
        self.ns.set_up(ifname)
    }

    /// `ip -n NAME link set dev IF down`, then waits like [`NetNs::set_up`].
    ///
    /// # Errors
    ///
    /// `ip` failed (e.g. no such interface), or the links did not settle.
    pub fn set_down(&self, ifname: &str) -> io::Result<()> {
        self.ns.set_down(ifname)
    }

    /// Waits (up to 2 s) until every link's carrier agrees with its operational state; see
    /// [`Namespace::wait_links_settled`].
    ///
    /// # Errors
    ///
    /// `ip` failed, or the links were still changing after 2 s.
    pub fn wait_links_settled(&self) -> io::Result<()> {
        self.ns.wait_links_settled()
    }

    /// Ifindex of `ifname` in this namespace (`ip -n NAME -o link show`).
    ///
    /// # Errors
    ///
    /// `ip` failed (e.g. no such interface) or printed something unexpected.
    pub fn ifindex(&self, ifname: &str) -> io::Result<u32> {
        self.ns.link_info(ifname).map(|l| l.index)
    }

    /// Leaves the namespace (if still inside) and deletes it.
    fn teardown(&mut self) -> io::Result<()> {
        if self.entered {
            sys::setns_net(self.prev.as_fd())
                .map_err(|e| annotate(e, "setns back to the previous netns"))?;
            self.entered = false;
        }
        self.ns.delete()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            // Never panic in Drop: we may already be unwinding.
            eprintln!(
                "fastpath-harness: cleanup of netns {} failed: {e}",
                self.ns.name
            );
        }
    }
}

/// The owner pid of a [`NetNs`] name `{prefix}-{pid}-{n}`.
fn stale_owner(prefix: &str, name: &str) -> Option<u32> {
    let (pid, id) = name
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.split_once('-'))?;
    let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), id.parse::<u32>()) else {
        return None;
    };
    Some(pid)
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

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn prefix_checks() {
        assert!(check_prefix("fpt").is_ok());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("Fpt").is_err());
        assert!(check_prefix("fpt-x").is_err());
    }

    #[test]
    fn stale_owner_reads_the_pid() {
        assert_eq!(stale_owner("fpt", "fpt-123-4"), Some(123));
        assert_eq!(stale_owner("fpt", "fpt-123"), None);
        assert_eq!(stale_owner("fpt", "fptu-123-4"), None);
        assert_eq!(stale_owner("fpt", "fpt-x-4"), None);
        assert_eq!(stale_owner("fpt", "fpt-1-x"), None);
    }
}
