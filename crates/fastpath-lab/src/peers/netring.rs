//! The Rust crate netring (TPACKET_V3 `Capture` and AF_XDP `XdpSocket`), through the
//! `netring-peer` harness in `crates/netring-peer`: `SIGUSR1` makes it print
//! `netring-peer snapshot packets=N drops=D t_ns=T`, with `T` its own monotonic clock read
//! together with the count, so the window is the difference of the two `T`s (exact, whatever the
//! signal latency).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fastpath_harness::process::{self, find_on_path, is_executable};

use super::{strings, PeerCount};
use crate::testbed::RX_IF;

/// The line that says it receives.
pub(super) const READY: &str = "netring-peer ready";

/// `taskset -c CPU BIN --mode MODE --iface fplr0 --seconds S`; `seconds` bounds the harness's
/// life should the lab die without stopping it.
pub(super) fn argv(cpu: &str, bin: &str, mode: &str, seconds: u64) -> Vec<String> {
    strings(&[
        "taskset",
        "-c",
        cpu,
        bin,
        "--mode",
        mode,
        "--iface",
        RX_IF,
        "--seconds",
        &seconds.to_string(),
    ])
}

/// The counts in its exit output: the exit line.
pub(super) fn final_count(all: &[&str]) -> Option<PeerCount> {
    all.iter()
        .rev()
        .filter_map(|l| parse_netring(l))
        .find(|l| l.last)
        .map(|l| l.count)
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

    /// Finds the harness, building it only from fastpath's own source tree:
    /// 1. `$FASTPATH_NETRING_PEER`, if set (it must name an executable);
    /// 2. [`MANIFEST`](Self::MANIFEST) in the checkout the running binary was built from (its
    ///    path is compiled in), if nobody but root (or the user running) can write it, the
    ///    directories above it, or their `.cargo/config.toml` and `rust-toolchain.toml`:
    ///    `cargo build --release --manifest-path M --target-dir <crate>/target` (a no-op when
    ///    up to date; the first build downloads and compiles netring, aya and their
    ///    dependencies), binary `<crate>/target/release/netring-peer`; cargo is `$CARGO`,
    ///    `cargo` on `PATH` or `~/.cargo/bin/cargo`;
    /// 3. `netring-peer` next to the running binary, then on `PATH`.
    ///
    /// Never a manifest found from the current directory or anywhere else: building runs the
    /// crate's build scripts, and the lab runs as root.
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
        let mut refused = None;
        if let Some(m) = Self::own_manifest() {
            let dir = m
                .parent()
                .expect("the manifest path ends in crates/netring-peer/Cargo.toml");
            match check_trusted(dir, process::euid()) {
                Ok(()) => return Self::build(&m, progress),
                Err(why) => refused = Some(format!("not building {}: {why}; ", m.display())),
            }
        }
        let sibling = std::env::current_exe()
            .ok()
            .and_then(|e| e.canonicalize().ok())
            .and_then(|e| e.parent().map(|d| d.join("netring-peer")))
            .filter(|p| is_executable(p));
        if let Some(path) = sibling.or_else(|| find_on_path("netring-peer")) {
            if let Some(r) = &refused {
                progress(&format!("netring peer: {r}using {}", path.display()));
            }
            return Ok(NetringPeer { path });
        }
        Err(format!(
            "{}netring-peer not found: run a lab built from a fastpath checkout that only root \
             can write (it builds {} with cargo) or set {}=/path/to/netring-peer",
            refused.unwrap_or_default(),
            Self::MANIFEST,
            Self::ENV
        ))
    }

    /// The harness's manifest in the checkout this binary was built from, if it is still there.
    fn own_manifest() -> Option<PathBuf> {
        // crates/fastpath-lab -> the checkout.
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.parent()?;
        Some(checkout.join(Self::MANIFEST)).filter(|m| m.is_file())
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

/// Why `crate_dir` must not be built from, if it must not. `cargo build` runs the crate's
/// build scripts and reads `.cargo/config.toml` (which can name any program to run) and
/// `rust-toolchain.toml` in every directory above it, all as the user running the lab: root.
/// So every directory from `/` down to the crate, those configuration files, and everything
/// under the crate (its `target/` included: cargo runs what it built there) must be owned by
/// root or by `euid`, and writable by nobody else (see [`mode_problem`]).
fn check_trusted(crate_dir: &Path, euid: u32) -> std::result::Result<(), String> {
    let dir = crate_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", crate_dir.display()))?;
    let check = |p: &Path, m: &fs::Metadata, above: bool| match mode_problem(
        m.uid(),
        m.gid(),
        m.mode(),
        m.is_dir(),
        above,
        euid,
    ) {
        Some(why) => Err(format!(
            "{} is {why} (cargo would run code from there as this user); make it root's \
                 and not writable by others, or set {} to a built binary",
            p.display(),
            NetringPeer::ENV
        )),
        None => Ok(()),
    };
    for a in dir.ancestors().skip(1) {
        let m = fs::metadata(a).map_err(|e| format!("{}: {e}", a.display()))?;
        check(a, &m, true)?;
        for config in [
            ".cargo",
            ".cargo/config",
            ".cargo/config.toml",
            "rust-toolchain",
            "rust-toolchain.toml",
        ] {
            let p = a.join(config);
            if let Ok(m) = fs::metadata(&p) {
                check(&p, &m, false)?;
            }
        }
    }
    // Everything under the crate, without following directory symlinks (a symlink's target
    // is checked as a file).
    let mut todo = vec![dir];
    while let Some(d) = todo.pop() {
        let m = fs::metadata(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        check(&d, &m, false)?;
        let entries = fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            let lm = fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            if lm.is_dir() {
                todo.push(p);
            } else {
                let m = fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                check(&p, &m, false)?;
            }
        }
    }
    Ok(())
}

/// What is wrong with a file or directory (owner `uid`, group `gid`, `mode`) that code run by
/// `euid` must be able to trust, if anything: owned by someone other than root or `euid`,
/// writable by everyone, or writable by a group other than root's. A directory above the
/// crate (`above`) may be writable by everyone if it is sticky (`/tmp`): others cannot
/// replace what root owns there.
fn mode_problem(
    uid: u32,
    gid: u32,
    mode: u32,
    is_dir: bool,
    above: bool,
    euid: u32,
) -> Option<&'static str> {
    let sticky_above = above && is_dir && mode & 0o1000 != 0;
    if uid != 0 && uid != euid {
        Some("owned by another user")
    } else if mode & 0o002 != 0 && !sticky_above {
        Some("writable by everyone")
    } else if mode & 0o020 != 0 && gid != 0 && !sticky_above {
        Some("writable by a group other than root's")
    } else {
        None
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

#[cfg(test)]
mod test {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    use fastpath_testutil::TempDir;

    use super::*;

    #[test]
    fn modes_that_can_be_trusted() {
        let me = 1000;
        assert_eq!(mode_problem(0, 0, 0o100644, false, false, me), None);
        assert_eq!(mode_problem(me, me, 0o40755, true, false, me), None);
        assert_eq!(
            mode_problem(1001, 0, 0o100644, false, false, me),
            Some("owned by another user")
        );
        assert_eq!(
            mode_problem(0, 0, 0o100666, false, false, me),
            Some("writable by everyone")
        );
        assert_eq!(
            mode_problem(0, 100, 0o40775, true, false, me),
            Some("writable by a group other than root's")
        );
        assert_eq!(mode_problem(0, 0, 0o40775, true, false, me), None);
        // /tmp above the checkout: sticky, so fine; the checkout itself may not be.
        assert_eq!(mode_problem(0, 0, 0o41777, true, true, me), None);
        assert_eq!(
            mode_problem(0, 0, 0o41777, true, false, me),
            Some("writable by everyone")
        );
        assert_eq!(
            mode_problem(0, 0, 0o40777, true, true, me),
            Some("writable by everyone")
        );
    }

    #[test]
    fn a_tree_others_can_write_is_not_trusted() {
        let tmp = TempDir::new("fplab-trust");
        let krate = tmp.path().join("checkout/crates/netring-peer");
        fs::create_dir_all(krate.join("src")).unwrap();
        fs::write(krate.join("Cargo.toml"), "[package]\n").unwrap();
        fs::write(krate.join("src/main.rs"), "fn main() {}\n").unwrap();
        let me = process::euid();
        let chmod =
            |p: &Path, mode| fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        for p in [
            tmp.path(),
            &tmp.path().join("checkout"),
            &tmp.path().join("checkout/crates"),
        ] {
            chmod(p, 0o755);
        }
        assert_eq!(check_trusted(&krate, me), Ok(()));
        chmod(&krate.join("src"), 0o777);
        let e = check_trusted(&krate, me).unwrap_err();
        assert!(
            e.contains("netring-peer/src is writable by everyone"),
            "{e}"
        );
        chmod(&krate.join("src"), 0o755);
        chmod(&krate.join("src/main.rs"), 0o646);
        assert!(check_trusted(&krate, me).unwrap_err().contains("main.rs"));
        chmod(&krate.join("src/main.rs"), 0o644);
        // A directory above the crate.
        chmod(&tmp.path().join("checkout"), 0o777);
        assert!(check_trusted(&krate, me)
            .unwrap_err()
            .contains("checkout is writable"));
        chmod(&tmp.path().join("checkout"), 0o755);
        // Cargo configuration above the crate.
        fs::create_dir(tmp.path().join("checkout/.cargo")).unwrap();
        fs::write(tmp.path().join("checkout/.cargo/config.toml"), "").unwrap();
        chmod(&tmp.path().join("checkout/.cargo/config.toml"), 0o666);
        assert!(check_trusted(&krate, me)
            .unwrap_err()
            .contains("config.toml"));
        chmod(&tmp.path().join("checkout/.cargo/config.toml"), 0o644);
        assert_eq!(check_trusted(&krate, me), Ok(()));
        // Owned by us, but we are not who runs it.
        if me != 0 {
            assert!(check_trusted(&krate, me + 1).is_err());
        }
    }

    /// Set in the copy of this test binary that [`locate_builds_only_its_own_checkout`]
    /// runs.
    const PROBE: &str = "FASTPATH_LAB_LOCATE_PROBE";

    /// A manifest planted above the current directory (a user's home, a shared /tmp) is never
    /// built: `locate` runs in a copy of this test binary (so its own location has no
    /// checkout above it) from inside the planted tree, with a `cargo` that records what it
    /// is asked to build and fails.
    #[test]
    fn locate_builds_only_its_own_checkout() {
        if std::env::var_os(PROBE).is_some() {
            let r = NetringPeer::locate(&mut |l| eprintln!("{l}"));
            eprintln!("locate: {r:?}");
            return;
        }
        let tmp = TempDir::new("fplab-locate");
        let planted = tmp.path().join("planted");
        let krate = planted.join("crates/netring-peer");
        fs::create_dir_all(krate.join("src")).unwrap();
        fs::write(krate.join("Cargo.toml"), "[package]\nname = \"evil\"\n").unwrap();
        fs::write(krate.join("src/main.rs"), "fn main() {}\n").unwrap();
        let calls = tmp.path().join("calls");
        let cargo = tmp.path().join("cargo");
        fs::write(
            &cargo,
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$FPLAB_CALLS\"\nexit 1\n",
        )
        .unwrap();
        fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).unwrap();
        let bin = tmp.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let probe = bin.join("probe");
        fs::copy(std::env::current_exe().unwrap(), &probe).unwrap();
        let out = Command::new(&probe)
            .args([
                "--exact",
                "peers::netring::test::locate_builds_only_its_own_checkout",
                "--test-threads",
                "1",
                "--nocapture",
            ])
            .current_dir(planted.join("crates"))
            .env(PROBE, "1")
            .env("CARGO", &cargo)
            .env("FPLAB_CALLS", &calls)
            .env_remove(NetringPeer::ENV)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("locate: "),
            "the probe did not run: {stderr}"
        );
        let calls = fs::read_to_string(&calls).unwrap_or_default();
        assert!(
            !calls.contains(planted.to_str().unwrap()),
            "cargo was asked to build the planted manifest: {calls}"
        );
        // If it built anything, it was the checkout this crate was compiled from.
        let own = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/netring-peer/Cargo.toml")
            .canonicalize()
            .unwrap();
        for c in calls.lines() {
            assert!(c.contains(own.to_str().unwrap()), "{c}");
        }
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
