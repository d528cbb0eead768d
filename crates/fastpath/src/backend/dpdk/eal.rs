//! The DPDK Environment Abstraction Layer: device names, EAL arguments, and initialisation once
//! per process.
//!
//! The EAL cannot be initialised twice, nor torn down and initialised again. fastpath
//! initialises it the first time a `dpdk` handle opens, with arguments built from that handle's
//! device and the user's pass-through arguments ([`DpdkConfig::eal_args`]); later handles reuse
//! it, and their devices are attached with `rte_dev_probe` (hotplug). A failed initialisation is
//! remembered and reported again: the process must restart to retry.
//!
//! Threads: `rte_eal_init` probes the devices given with `--vdev` on the calling thread (so
//! net_af_packet's socket lives in that thread's network namespace), and starts its own helper
//! threads from it, which inherit that namespace. fastpath pins nothing: by default the main
//! lcore may run on every CPU the caller may run on (`--lcores 0@(<cpus>)`), so the calling
//! thread's affinity is unchanged. Each thread that receives or sends registers as a non-EAL
//! lcore ([`ensure_lcore`]) so it gets its own mempool cache.
//!
//! [`DpdkConfig::eal_args`]: crate::DpdkConfig::eal_args
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::{c_char, c_int, CString};
use std::sync::OnceLock;

use super::ffi;
use crate::{Error, Result};

/// The memory fastpath asks the EAL for by default (`-m 256`), in MiB.
const DEFAULT_MEM_MB: u64 = 256;

/// What `-i` names for the dpdk backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Device {
    /// A PCI device bound to a DPDK-capable driver (vfio-pci), e.g. `0000:03:00.0`. The ethdev
    /// port is named after the full address.
    Pci(String),
    /// A virtual device: `net_af_packet0,iface=veth0`, `net_af_xdp0,iface=..`, `net_ring0`,
    /// `net_null0`.
    Vdev {
        /// The whole spec, passed to `--vdev` or `rte_dev_probe`.
        spec: String,
        /// The device (and port) name: the spec up to the first comma.
        name: String,
        /// The driver: the name without its trailing instance number.
        driver: String,
        /// The kernel interface the driver opens (`iface=`), if any.
        iface: Option<String>,
    },
    /// A port number, for devices attached through the user's own EAL arguments.
    Port(u16),
}

impl Device {
    /// Parses `-i`.
    pub(crate) fn parse(s: &str) -> Result<Device> {
        let bad = |why: String| Error::InvalidConfig {
            field: "interface",
            why,
        };
        let s = s.trim();
        if let Ok(p) = s.parse::<u16>() {
            return Ok(Device::Port(p));
        }
        if let Some(pci) = parse_pci(s) {
            return Ok(Device::Pci(pci));
        }
        let name = s.split(',').next().unwrap_or_default();
        let is_vdev_name = name.starts_with("net_")
            && name.len() > 4
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !is_vdev_name {
            return Err(bad(format!(
                "`{s}` is not a DPDK device: give a PCI address bound to vfio-pci \
                 (0000:03:00.0), a virtual device (net_af_packet0,iface={s} to capture a kernel \
                 interface; net_af_xdp0,iface=..; net_ring0; net_null0) or a port number"
            )));
        }
        if s.contains(char::is_whitespace) {
            return Err(bad(format!("`{s}`: a vdev spec has no spaces")));
        }
        let driver = name
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_owned();
        let iface = s
            .split(',')
            .skip(1)
            .find_map(|kv| kv.strip_prefix("iface="))
            .map(str::to_owned);
        Ok(Device::Vdev {
            spec: s.to_owned(),
            name: name.to_owned(),
            driver,
            iface,
        })
    }

    /// The ethdev port name (`rte_eth_dev_get_port_by_name`), `None` for a port number.
    pub(crate) fn port_name(&self) -> Option<&str> {
        match self {
            Device::Pci(a) => Some(a),
            Device::Vdev { name, .. } => Some(name),
            Device::Port(_) => None,
        }
    }

    /// What `rte_dev_probe` attaches, `None` for a port number.
    pub(crate) fn devargs(&self) -> Option<&str> {
        match self {
            Device::Pci(a) => Some(a),
            Device::Vdev { spec, .. } => Some(spec),
            Device::Port(_) => None,
        }
    }
}

/// `DDDD:BB:DD.F` or `BB:DD.F` (hex) → the full lowercase form DPDK names the port by.
fn parse_pci(s: &str) -> Option<String> {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let (rest, func) = s.rsplit_once('.')?;
    if func.len() != 1 || !matches!(func.as_bytes()[0], b'0'..=b'7') {
        return None;
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (dom, bus, dev) = match parts.as_slice() {
        [d, b, v] if hex(d, 4) => (*d, *b, *v),
        [b, v] => ("0000", *b, *v),
        _ => return None,
    };
    if !hex(bus, 2) || !hex(dev, 2) {
        return None;
    }
    Some(format!("{dom}:{bus}:{dev}.{func}").to_ascii_lowercase())
}

/// Whether `user` already sets any of `opts` (as `--opt`, `--opt=..` or a short `-x`/`-xVAL`).
fn has_opt(user: &[String], opts: &[&str]) -> bool {
    user.iter().any(|a| {
        opts.iter().any(|o| {
            a == o
                || (o.starts_with("--") && a.starts_with(&format!("{o}=")))
                || (o.len() == 2 && !o.starts_with("--") && a.starts_with(o) && a.len() > 2)
        })
    })
}

/// The EAL arguments for a first handle on `dev`: fastpath's defaults, then the user's.
///
/// Defaults, each left out when the user's arguments already set it:
/// - `--lcores 0@(<cpus>)`: one main lcore allowed on every CPU in `cpus` (the caller's
///   affinity), so initialising pins nothing;
/// - a vdev: `--vdev <spec> --no-pci`; a PCI device: `-a <address>`;
/// - `-m 256`, and `--no-huge --no-shconf` unless at least that much is free in reserved huge
///   pages, `--in-memory` if it is (either way: no files in /var/run/dpdk, no hugetlbfs mount);
/// - `--no-telemetry`, `--log-level=lib.eal:error` (quiet, errors still printed).
pub(crate) fn eal_args(
    dev: &Device,
    user: &[String],
    huge_free: u64,
    cpus: &[usize],
) -> Vec<String> {
    let mut a: Vec<String> = vec!["fastpath".into()];
    let mut push = |v: &[&str]| a.extend(v.iter().map(|s| (*s).to_owned()));
    if !has_opt(user, &["-l", "-c", "--lcores"]) {
        let list = cpu_list(cpus);
        if list.is_empty() {
            push(&["-l", "0"]);
        } else {
            push(&["--lcores", &format!("0@({list})")]);
        }
    }
    match dev {
        Device::Vdev { spec, name, .. } => {
            let named = user.iter().any(|u| {
                let v = u.strip_prefix("--vdev=").unwrap_or(u);
                v == name || v.starts_with(&format!("{name},"))
            });
            if !named {
                push(&["--vdev", spec]);
            }
            if !has_opt(user, &["--no-pci", "-a", "--allow", "-b", "--block"]) {
                push(&["--no-pci"]);
            }
        }
        Device::Pci(addr) => {
            if !has_opt(user, &["-a", "--allow", "-b", "--block"]) {
                push(&["-a", addr]);
            }
        }
        Device::Port(_) => {}
    }
    let mem_mb = match user_mem_mb(user) {
        Some(mb) => mb,
        None if has_opt(user, &["--socket-mem"]) => 0,
        None => {
            push(&["-m", &DEFAULT_MEM_MB.to_string()]);
            DEFAULT_MEM_MB
        }
    };
    let no_huge = has_opt(user, &["--no-huge"])
        || (!has_opt(user, &["--huge-dir", "--socket-mem"]) && huge_free < mem_mb << 20);
    if no_huge && !has_opt(user, &["--no-huge"]) {
        push(&["--no-huge"]);
    }
    // No files in /var/run/dpdk and no multi-process channel. `--in-memory` also needs no
    // hugetlbfs mount, but the EAL refuses it with `--no-huge` (which implies legacy memory).
    if !has_opt(
        user,
        &["--in-memory", "--file-prefix", "--proc-type", "--no-shconf"],
    ) {
        push(&[if no_huge {
            "--no-shconf"
        } else {
            "--in-memory"
        }]);
    }
    if !has_opt(user, &["--no-telemetry", "--telemetry"]) {
        push(&["--no-telemetry"]);
    }
    if !has_opt(user, &["--log-level"]) {
        push(&["--log-level=lib.eal:error"]);
    }
    a.extend(user.iter().cloned());
    a
}

/// The value of the user's `-m MB` / `-mMB`, if given.
fn user_mem_mb(user: &[String]) -> Option<u64> {
    let i = user
        .iter()
        .position(|a| a.starts_with("-m") && !a.starts_with("--"))?;
    let v = match user[i].as_str() {
        "-m" => user.get(i + 1)?.as_str(),
        a => &a[2..],
    };
    v.parse().ok()
}

/// `0-3,6`-style list of CPU numbers (sorted, deduplicated).
fn cpu_list(cpus: &[usize]) -> String {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        while i + 1 < v.len() && v[i + 1] == v[i] + 1 {
            i += 1;
        }
        out.push(if v[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", v[i])
        });
        i += 1;
    }
    out.join(",")
}

/// Why the EAL could not start (kept for every later caller).
#[derive(Debug, Clone)]
struct EalFailure {
    reason: String,
    fix: &'static str,
}

static EAL: OnceLock<std::result::Result<(), EalFailure>> = OnceLock::new();

/// Initialises the EAL for a first handle on `dev` with `user` arguments; later calls return the
/// first outcome. Concurrent callers wait for the first.
///
/// # Errors
/// [`Error::EalInit`] with the EAL's reason and the likely fix.
pub(crate) fn init(dev: &Device, user: &[String]) -> Result<()> {
    EAL.get_or_init(|| init_now(dev, user))
        .clone()
        .map_err(|f| Error::EalInit {
            reason: f.reason,
            fix: f.fix,
        })
}

fn init_now(dev: &Device, user: &[String]) -> std::result::Result<(), EalFailure> {
    // SAFETY: takes nothing, returns a constant.
    let stats = unsafe { ffi::fp_sizeof_rte_eth_stats() };
    // SAFETY: as above.
    let pkt = unsafe { ffi::fp_sizeof_fp_pkt() };
    if stats != std::mem::size_of::<ffi::rte_eth_stats>()
        || pkt != std::mem::size_of::<ffi::fp_pkt>()
    {
        return Err(EalFailure {
            reason: format!(
                "struct sizes differ between fastpath and the DPDK headers it was built with \
                 (rte_eth_stats {stats} vs {} bytes)",
                std::mem::size_of::<ffi::rte_eth_stats>()
            ),
            fix: "rebuild fastpath against the installed DPDK (cargo clean -p fastpath)",
        });
    }
    let args = eal_args(dev, user, huge_pages_free(), &allowed_cpus());
    let shown = args.join(" ");
    let mut owned = Vec::with_capacity(args.len());
    for a in &args {
        owned.push(CString::new(a.as_str()).map_err(|_| EalFailure {
            reason: format!("argument `{a}` contains a NUL byte"),
            fix: "check --dpdk-args",
        })?);
    }
    // The EAL keeps pointers into argv (and may permute it): the strings live as long as the
    // process, which initialises the EAL at most once.
    let argv: &mut [*mut c_char] = Box::leak(
        owned
            .into_iter()
            .map(CString::into_raw)
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let argc = (argv.len() - 1) as c_int;
    // SAFETY: `argv` holds `argc` valid NUL-terminated strings followed by NULL, all leaked so
    // they outlive the EAL; this runs once per process (OnceLock), as rte_eal_init requires.
    let rc = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
    if rc >= 0 {
        return Ok(());
    }
    let err = ffi::errno();
    Err(EalFailure {
        reason: format!("rte_eal_init({shown}): {}", ffi::strerror(err)),
        fix: match err {
            libc::EACCES | libc::EPERM => {
                "run as root: the EAL needs CAP_SYS_ADMIN and CAP_IPC_LOCK for its memory, and \
                 CAP_NET_RAW for net_af_packet"
            }
            libc::ENOMEM | libc::ENODEV => {
                "reserve huge pages (echo 256 > /proc/sys/vm/nr_hugepages) or pass \
                 --dpdk-args \"--no-huge -m 256\"; the EAL log above names what failed"
            }
            libc::EINVAL => "check --dpdk-args: an EAL option is malformed (see the EAL log above)",
            libc::EALREADY => {
                "the EAL was already initialised in this process by other code; fastpath \
                 cannot share it"
            }
            _ => "see the EAL log above; rerun with --dpdk-args \"--log-level=debug\"",
        },
    })
}

/// Bytes of reserved, free huge pages (`HugePages_Free` × `Hugepagesize`).
fn huge_pages_free() -> u64 {
    let field = |k| crate::sys::meminfo(k).unwrap_or(0);
    field("HugePages_Free") * field("Hugepagesize") * 1024
}

/// The CPUs the calling thread may run on (`sched_getaffinity`).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t and we pass its exact size; pid 0 = this thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` < CPU_SETSIZE, the size of `set`.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Unregisters the thread's lcore id when the thread exits (ids are a finite resource,
/// `RTE_MAX_LCORE`).
struct LcoreGuard(Cell<bool>);

impl Drop for LcoreGuard {
    fn drop(&mut self) {
        if self.0.get() {
            // SAFETY: this thread registered with rte_thread_register (flag set only on
            // success) and has not unregistered; it is exiting, so nothing uses its lcore id.
            unsafe { ffi::rte_thread_unregister() };
        }
    }
}

thread_local! {
    static LCORE: LcoreGuard = const { LcoreGuard(Cell::new(false)) };
}

/// Gives the calling thread an lcore id (and so a mempool cache) if it has none: once per thread,
/// after the EAL is up. Failure is harmless (the thread then uses the mempool without a cache).
#[inline]
pub(crate) fn ensure_lcore() {
    LCORE.with(|g| {
        if g.0.get() {
            return;
        }
        // SAFETY: reads the thread-local lcore id; the EAL is initialised (handles exist only
        // after `init` succeeded).
        if unsafe { ffi::fp_lcore_id() } != ffi::LCORE_ID_ANY {
            return; // an EAL thread (the one that called rte_eal_init is lcore 0)
        }
        // SAFETY: the EAL is initialised; registering only sets this thread's lcore state.
        if unsafe { ffi::rte_thread_register() } == 0 {
            g.0.set(true);
        }
    });
}

#[cfg(test)]
mod test {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn parses_devices() {
        assert_eq!(
            Device::parse("0000:03:00.0").unwrap(),
            Device::Pci("0000:03:00.0".into())
        );
        assert_eq!(
            Device::parse("03:00.1").unwrap(),
            Device::Pci("0000:03:00.1".into())
        );
        assert_eq!(
            Device::parse("0000:AF:00.0").unwrap(),
            Device::Pci("0000:af:00.0".into())
        );
        assert_eq!(Device::parse("2").unwrap(), Device::Port(2));
        assert_eq!(
            Device::parse("net_af_packet0,iface=fpb,blocksz=4096").unwrap(),
            Device::Vdev {
                spec: "net_af_packet0,iface=fpb,blocksz=4096".into(),
                name: "net_af_packet0".into(),
                driver: "net_af_packet".into(),
                iface: Some("fpb".into()),
            }
        );
        let Device::Vdev {
            name,
            driver,
            iface,
            ..
        } = Device::parse("net_null0").unwrap()
        else {
            panic!("net_null0 is a vdev");
        };
        assert_eq!(
            (name.as_str(), driver.as_str(), iface),
            ("net_null0", "net_null", None)
        );
        for bad in ["eth0", "", "net_", "Net_x0", "0000:03:00.9", "net_ring0, x"] {
            assert!(Device::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let e = Device::parse("eth0").unwrap_err().to_string();
        assert!(e.contains("net_af_packet0,iface=eth0"), "{e}");
    }

    #[test]
    fn default_args_for_a_vdev_without_huge_pages() {
        let dev = Device::parse("net_af_packet0,iface=fpb").unwrap();
        let a = eal_args(&dev, &[], 0, &[0, 1]);
        assert_eq!(
            a,
            s(&[
                "fastpath",
                "--lcores",
                "0@(0-1)",
                "--vdev",
                "net_af_packet0,iface=fpb",
                "--no-pci",
                "-m",
                "256",
                "--no-huge",
                "--no-shconf",
                "--no-telemetry",
                "--log-level=lib.eal:error",
            ])
        );
        // Enough huge pages: use them.
        let a = eal_args(&dev, &[], 512 << 20, &[0, 1]);
        assert!(!a.contains(&"--no-huge".to_owned()));
        assert!(a.contains(&"--in-memory".to_owned()));
    }

    #[test]
    fn default_args_for_pci_and_user_overrides() {
        let dev = Device::parse("0000:03:00.0").unwrap();
        let a = eal_args(
            &dev,
            &s(&["-l", "2-3", "--log-level=debug"]),
            1 << 30,
            &[0, 1, 2, 3],
        );
        assert_eq!(
            a,
            s(&[
                "fastpath",
                "-a",
                "0000:03:00.0",
                "-m",
                "256",
                "--in-memory",
                "--no-telemetry",
                "-l",
                "2-3",
                "--log-level=debug",
            ])
        );
        // The user's own --vdev for this device and memory options win.
        let dev = Device::parse("net_ring0").unwrap();
        let a = eal_args(&dev, &s(&["--vdev=net_ring0", "-m", "64"]), 0, &[0]);
        assert!(!a.iter().any(|x| x == "--vdev"), "{a:?}");
        assert!(a.contains(&"--no-huge".to_owned()), "{a:?}");
        assert_eq!(a.iter().filter(|x| *x == "-m").count(), 1, "{a:?}");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(cpu_list(&[3]), "3");
        assert_eq!(cpu_list(&[]), "");
    }
}
