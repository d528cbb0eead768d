//! The `ip` tool (iproute2) and what its `-o link show` lines say.
//!
//! Everything that changes links or namespaces goes through `ip` rather than
//! hand-written netlink: the commands read like the shell lines a developer
//! would type, and `ip -n NAME ...` acts inside a namespace whatever the
//! calling thread's own namespace is.

use std::io;
use std::process::{Command, Stdio};

/// Runs `ip args...`, returning stdout; errors carry the command and stderr.
///
/// # Errors
/// Spawning `ip` failed (is iproute2 installed?), or it exited non-zero.
pub fn ip_output(args: &[&str]) -> io::Result<String> {
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

/// Runs `ip args...`, failing with `ip`'s stderr if it exits non-zero.
///
/// # Errors
/// As [`ip_output`].
pub fn ip(args: &[&str]) -> io::Result<()> {
    ip_output(args).map(drop)
}

/// What one `ip -o link show` line says about a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// The interface index.
    pub index: u32,
    /// The `link/ether` address.
    pub mac: [u8; 6],
    /// Whether the carrier is on (`LOWER_UP` among the flags).
    pub lower_up: bool,
}

impl LinkInfo {
    /// Parses `N: IF@PEER: <FLAGS> ... link/ether MAC brd ...`; `None` for a line without an
    /// index or an Ethernet address.
    pub fn parse(line: &str) -> Option<LinkInfo> {
        let index = line.split(':').next()?.trim().parse().ok()?;
        let mac = line
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .and_then(parse_mac)?;
        Some(LinkInfo {
            index,
            mac,
            lower_up: flags(line).split(',').any(|f| f == "LOWER_UP"),
        })
    }
}

/// `ip -n NETNS -o link show dev IF`, parsed.
///
/// # Errors
/// `ip` failed (e.g. no such interface) or printed something unexpected.
pub fn link_info(netns: &str, ifname: &str) -> io::Result<LinkInfo> {
    let out = ip_output(&["-n", netns, "-o", "link", "show", "dev", ifname])?;
    LinkInfo::parse(&out)
        .ok_or_else(|| io::Error::other(format!("unexpected `ip link show` output: {out:?}")))
}

/// The flags between `<` and `>` of an `ip -o link show` line.
fn flags(line: &str) -> &str {
    line.split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map_or("", |(f, _)| f)
}

/// One `ip -o link show` line: carrier (`LOWER_UP`) agrees with operstate.
/// `state UNKNOWN` (lo, devices without operstate) counts as settled.
pub fn link_settled(line: &str) -> bool {
    let carrier = flags(line).split(',').any(|f| f == "LOWER_UP");
    match line.split_whitespace().skip_while(|w| *w != "state").nth(1) {
        Some("UNKNOWN") | None => true,
        Some(state) => carrier == (state == "UP"),
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Checks an interface name the way the kernel will (`dev_valid_name`): 1..=15 bytes
/// (IFNAMSIZ is 16 including the NUL), not `.` or `..`, no `/`, `:`, whitespace or NUL.
///
/// # Errors
/// `InvalidInput`, naming the name.
pub fn check_ifname(name: &str) -> io::Result<()> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?} (1..=15 bytes)"),
        ))
    }
}

/// Prefixes an error's message with what was being done.
pub(crate) fn annotate(e: io::Error, what: &str) -> io::Error {
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
    fn link_lines() {
        let up = "7: fplr0@if8: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 02:00:0a:ff:10:01 brd ff:ff:ff:ff:ff:ff link-netns fplg-1";
        assert_eq!(
            LinkInfo::parse(up),
            Some(LinkInfo {
                index: 7,
                mac: [2, 0, 0x0a, 0xff, 0x10, 1],
                lower_up: true
            })
        );
        let down = up.replace(",LOWER_UP", "");
        assert!(!LinkInfo::parse(&down).unwrap().lower_up);
        let lo = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00";
        assert_eq!(LinkInfo::parse(lo), None);
        assert_eq!(LinkInfo::parse("garbage"), None);
    }

    #[test]
    fn ifname_checks() {
        assert!(check_ifname("fpa0").is_ok());
        assert!(check_ifname("0123456789abcde").is_ok());
        assert!(check_ifname("0123456789abcdef").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a\0b").is_err());
        assert!(check_ifname("").is_err());
    }
}
