//! Generic netlink, just enough to ask the `netdev` family what a device's XDP path can do
//! (`NETDEV_CMD_DEV_GET`: `xdp-features`, `xdp-rx-metadata-features`; Linux 6.3+).
//!
//! Message building and parsing are sans-IO; [`netdev_features`] does the I/O, on a fresh socket
//! in the calling thread's network namespace.
//!
//! # References
//! - <https://docs.kernel.org/userspace-api/netlink/genetlink-legacy.html>
//! - `Documentation/netlink/specs/netdev.yaml`

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::{Error, Result};

const NETLINK_GENERIC: libc::c_int = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLMSG_ERROR: u16 = 0x2;
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XDP_RX_METADATA_FEATURES: u16 = 5;

/// `enum netdev_xdp_act` bits.
pub(crate) const NETDEV_XDP_ACT_BASIC: u64 = 1 << 0;
pub(crate) const NETDEV_XDP_ACT_REDIRECT: u64 = 1 << 1;
pub(crate) const NETDEV_XDP_ACT_XSK_ZEROCOPY: u64 = 1 << 3;
/// `enum netdev_xdp_rx_metadata` bits.
pub(crate) const NETDEV_XDP_RX_METADATA_TIMESTAMP: u64 = 1 << 0;
pub(crate) const NETDEV_XDP_RX_METADATA_VLAN_TAG: u64 = 1 << 2;

/// What the `netdev` family says about one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NetdevFeatures {
    /// `xdp-features` (`NETDEV_XDP_ACT_*`).
    pub(crate) xdp: u64,
    /// `xdp-rx-metadata-features` (`NETDEV_XDP_RX_METADATA_*`).
    pub(crate) rx_metadata: u64,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(b: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    b.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(payload);
    b.resize(align4(b.len()), 0);
}

/// A request: netlink header, genetlink header (`cmd`, version 1), attributes.
fn request(family: u16, cmd: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; NLMSG_HDRLEN];
    b[4..6].copy_from_slice(&family.to_ne_bytes());
    b[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b[8..12].copy_from_slice(&1u32.to_ne_bytes()); // seq
    b.extend_from_slice(&[cmd, 1, 0, 0]);
    for (ty, p) in attrs {
        push_attr(&mut b, *ty, p);
    }
    let len = b.len() as u32;
    b[..4].copy_from_slice(&len.to_ne_bytes());
    b
}

/// The attributes of the first reply in `buf`, or the errno of an error reply.
fn reply_attrs(buf: &[u8]) -> std::result::Result<&[u8], i32> {
    let len = buf.get(..4).map_or(0, |b| {
        u32::from_ne_bytes(b.try_into().unwrap_or_default()) as usize
    });
    let ty = buf
        .get(4..6)
        .map_or(0, |b| u16::from_ne_bytes(b.try_into().unwrap_or_default()));
    if len < NLMSG_HDRLEN || len > buf.len() {
        return Err(libc::EBADMSG);
    }
    if ty == NLMSG_ERROR {
        let errno = buf.get(16..20).map_or(libc::EBADMSG, |b| {
            -i32::from_ne_bytes(b.try_into().unwrap_or_default())
        });
        return Err(errno);
    }
    buf.get(NLMSG_HDRLEN + GENL_HDRLEN..len)
        .ok_or(libc::EBADMSG)
}

/// `(type, payload)` of each attribute in `b`; stops at a malformed one.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16::from_ne_bytes(b.get(..2)?.try_into().ok()?) as usize;
        let ty = u16::from_ne_bytes(b.get(2..4)?.try_into().ok()?) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let p = &b[4..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, p))
    })
}

fn u64_of(p: &[u8]) -> u64 {
    match p.len() {
        8 => u64::from_ne_bytes(p.try_into().unwrap_or_default()),
        4 => u64::from(u32::from_ne_bytes(p.try_into().unwrap_or_default())),
        _ => 0,
    }
}

/// Sends `req` on a fresh generic netlink socket and returns the reply datagram.
fn transact(req: &[u8]) -> Result<Vec<u8>> {
    let call = "netlink(NETLINK_GENERIC)";
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_GENERIC,
        )
    };
    if fd < 0 {
        return Err(Error::last_os(call));
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a live slice of req.len() bytes; unaddressed netlink sends go to the
    // kernel, which answers inside the call.
    if unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(Error::last_os(call));
    }
    let mut buf = vec![0u8; 8192];
    // SAFETY: `buf` is a live buffer of buf.len() writable bytes.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(Error::last_os(call));
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The `netdev` family's view of `ifindex`; `None` where the kernel has no such family
/// (before 6.3) or does not answer.
pub(crate) fn netdev_features(ifindex: u32) -> Option<NetdevFeatures> {
    let req = request(
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        &[(CTRL_ATTR_FAMILY_NAME, b"netdev\0")],
    );
    let reply = transact(&req).ok()?;
    let family = attrs(reply_attrs(&reply).ok()?)
        .find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID)
        .and_then(|(_, p)| Some(u16::from_ne_bytes(p.get(..2)?.try_into().ok()?)))?;
    let req = request(
        family,
        NETDEV_CMD_DEV_GET,
        &[(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes())],
    );
    let reply = transact(&req).ok()?;
    let mut f = NetdevFeatures::default();
    for (ty, p) in attrs(reply_attrs(&reply).ok()?) {
        match ty {
            NETDEV_A_DEV_XDP_FEATURES => f.xdp = u64_of(p),
            NETDEV_A_DEV_XDP_RX_METADATA_FEATURES => f.rx_metadata = u64_of(p),
            _ => {}
        }
    }
    Some(f)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn request_layout_and_reply_parsing() {
        let r = request(0x10, 3, &[(2, b"netdev\0")]);
        assert_eq!(r.len(), 16 + 4 + 12);
        assert_eq!(
            u32::from_ne_bytes(r[..4].try_into().unwrap()) as usize,
            r.len()
        );
        assert_eq!(&r[16..20], &[3, 1, 0, 0]);
        // An error reply carries -errno.
        let mut e = vec![0u8; 36];
        e[..4].copy_from_slice(&36u32.to_ne_bytes());
        e[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        e[16..20].copy_from_slice(&(-libc::ENODEV).to_ne_bytes());
        assert_eq!(reply_attrs(&e), Err(libc::ENODEV));
        assert_eq!(reply_attrs(&[1, 2]), Err(libc::EBADMSG));
        let mut ok = request(
            0x20,
            1,
            &[(3, &7u64.to_ne_bytes()), (5, &5u64.to_ne_bytes())],
        );
        ok[4..6].copy_from_slice(&0x20u16.to_ne_bytes());
        let got: Vec<(u16, u64)> = attrs(reply_attrs(&ok).unwrap())
            .map(|(t, p)| (t, u64_of(p)))
            .collect();
        assert_eq!(got, [(3, 7), (5, 5)]);
    }
}
