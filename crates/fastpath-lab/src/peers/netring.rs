//! The Rust crate netring (TPACKET_V3 `Capture` and AF_XDP `XdpSocket`), through the
//! `netring-peer` harness in `crates/netring-peer`: `SIGUSR1` makes it print
//! `netring-peer snapshot packets=N drops=D t_ns=T`, with `T` its own monotonic clock read
//! together with the count, so the window is the difference of the two `T`s (exact, whatever the
//! signal latency).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fastpath_harness::process::{find_on_path, is_executable};

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

#[cfg(test)]
mod test {
    use super::*;

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
