//! Minimal rtnetlink client: which XDP programs an interface has (`RTM_GETLINK`, `IFLA_XDP`),
//! and the legacy attach/detach (`RTM_SETLINK`, `IFLA_XDP_FD`) for kernels without XDP links.
//!
//! Message building and parsing are sans-IO functions over byte slices (unit tested with literal
//! bytes); only [`transact`] touches the kernel. Requests go to the network
//! namespace of the calling thread (a fresh socket per request).
//!
//! Constants keep their UAPI names (`linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_link.h`);
//! they are defined here because libc lacks several of them on some targets.
//!
//! # References
//! - <https://man7.org/linux/man-pages/man7/rtnetlink.7.html>
//! - <https://docs.kernel.org/userspace-api/netlink/intro.html>

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::bpf::lossy_until_nul;
use crate::{Error, Result};

// linux/netlink.h
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSG_ERROR: u16 = 0x2;
const NLMSG_DONE: u16 = 0x3;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
const NETLINK_ROUTE: libc::c_int = 0;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;

// linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
const IFINFOMSG_LEN: usize = 16;

// linux/if_link.h
const IFLA_IFNAME: u16 = 3;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;

/// `XDP_FLAGS_UPDATE_IF_NOEXIST`: fail with `EBUSY` if a program is attached.
pub(crate) const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
/// `XDP_FLAGS_SKB_MODE`: generic XDP, run on the skb after allocation.
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, run in the driver before skb allocation.
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `XDP_FLAGS_HW_MODE`: offloaded to the NIC.
pub(crate) const XDP_FLAGS_HW_MODE: u32 = 1 << 3;

/// `XDP_ATTACHED_*`: what `IFLA_XDP_ATTACHED` reports.
pub(crate) const XDP_ATTACHED_NONE: u8 = 0;
pub(crate) const XDP_ATTACHED_MULTI: u8 = 4;

/// The XDP state of one interface, from `RTM_NEWLINK`'s `IFLA_XDP` nest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkXdp {
    pub(crate) ifindex: u32,
    pub(crate) ifname: String,
    /// `IFLA_XDP_ATTACHED` (`XDP_ATTACHED_*`).
    pub(crate) attached: u8,
    /// Program id per mode, 0 when none.
    pub(crate) drv_prog_id: u32,
    pub(crate) skb_prog_id: u32,
    pub(crate) hw_prog_id: u32,
}

/// A parsed reply to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `RTM_NEWLINK` for the requested interface.
    Link(LinkXdp),
    /// `NLMSG_ERROR` with error 0.
    Ack,
    /// `NLMSG_ERROR` with `-errno`, and the extended-ack message if the kernel sent one.
    Error { errno: i32, extack: String },
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_u16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_ne_bytes());
}

fn push_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_ne_bytes());
}

/// Append one attribute with a 4-byte payload.
fn push_attr_u32(b: &mut Vec<u8>, ty: u16, v: u32) {
    push_u16(b, 8);
    push_u16(b, ty);
    push_u32(b, v);
}

/// `nlmsghdr` + `ifinfomsg` for `ifindex`; `nlmsg_len` is patched by [`finish`].
fn header(ty: u16, flags: u16, seq: u32, ifindex: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    push_u32(&mut b, 0); // nlmsg_len, patched
    push_u16(&mut b, ty);
    push_u16(&mut b, flags);
    push_u32(&mut b, seq);
    push_u32(&mut b, 0); // nlmsg_pid: to the kernel
    b.push(libc::AF_UNSPEC as u8); // ifi_family
    b.push(0); // __ifi_pad
    push_u16(&mut b, 0); // ifi_type
    push_u32(&mut b, ifindex); // ifi_index (int, same bits)
    push_u32(&mut b, 0); // ifi_flags
    push_u32(&mut b, 0); // ifi_change
    b
}

fn finish(mut b: Vec<u8>) -> Vec<u8> {
    let len = b.len() as u32;
    b[..4].copy_from_slice(&len.to_ne_bytes());
    b
}

/// `RTM_GETLINK` for one interface, without statistics.
pub(crate) fn build_getlink(seq: u32, ifindex: u32) -> Vec<u8> {
    let mut b = header(RTM_GETLINK, NLM_F_REQUEST, seq, ifindex);
    push_attr_u32(&mut b, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    finish(b)
}

/// `RTM_SETLINK` with `IFLA_XDP { IFLA_XDP_FD = fd, IFLA_XDP_FLAGS = flags }`, acked.
/// `fd = -1` detaches the program of the mode in `flags`.
pub(crate) fn build_setlink_xdp(seq: u32, ifindex: u32, fd: i32, flags: u32) -> Vec<u8> {
    let mut b = header(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifindex);
    push_u16(&mut b, 4 + 8 + 8); // nest: header + two u32 attributes
    push_u16(&mut b, IFLA_XDP | NLA_F_NESTED);
    push_attr_u32(&mut b, IFLA_XDP_FD, fd as u32);
    push_attr_u32(&mut b, IFLA_XDP_FLAGS, flags);
    finish(b)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Iterate `(type without flags, payload)` over a run of netlink attributes. Stops at the first
/// malformed attribute.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let ty = u16_at(b, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

fn bad(why: &str) -> Error {
    Error::Syscall {
        call: "recv(NETLINK_ROUTE)",
        source: io::Error::new(io::ErrorKind::InvalidData, why.to_owned()),
    }
}

/// Parse one datagram of replies; returns the reply to `seq`, or `None` if the datagram holds
/// none (the caller then reads on).
pub(crate) fn parse_reply(buf: &[u8], seq: u32) -> Result<Option<Reply>> {
    let mut rest = buf;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32_at(rest, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(bad("truncated netlink message"));
        }
        let ty = u16_at(rest, 4).unwrap_or(0);
        let flags = u16_at(rest, 6).unwrap_or(0);
        let msg_seq = u32_at(rest, 8).unwrap_or(0);
        let msg = &rest[..len];
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        if msg_seq != seq {
            continue;
        }
        let body = &msg[NLMSG_HDRLEN..];
        match ty {
            NLMSG_ERROR => return parse_error(body, flags).map(Some),
            NLMSG_DONE => return Ok(Some(Reply::Ack)),
            RTM_NEWLINK => return parse_newlink(body).map(|l| Some(Reply::Link(l))),
            _ => continue,
        }
    }
    Ok(None)
}

/// `struct nlmsgerr { int error; struct nlmsghdr msg; }` then, with `NLM_F_ACK_TLVS`, attributes
/// after the echoed request (only its header when `NLM_F_CAPPED`).
fn parse_error(body: &[u8], flags: u16) -> Result<Reply> {
    let error = u32_at(body, 0).ok_or_else(|| bad("short NLMSG_ERROR"))? as i32;
    if error == 0 {
        return Ok(Reply::Ack);
    }
    let mut extack = String::new();
    if flags & NLM_F_ACK_TLVS != 0 {
        let echoed = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            align4(u32_at(body, 4).unwrap_or(0) as usize)
        };
        if let Some(tlvs) = body.get(4 + echoed..) {
            for (ty, payload) in attrs(tlvs) {
                if ty == NLMSGERR_ATTR_MSG {
                    extack = lossy_until_nul(payload);
                }
            }
        }
    }
    Ok(Reply::Error {
        errno: error.wrapping_neg(),
        extack,
    })
}

fn parse_newlink(body: &[u8]) -> Result<LinkXdp> {
    if body.len() < IFINFOMSG_LEN {
        return Err(bad("short RTM_NEWLINK"));
    }
    let mut link = LinkXdp {
        ifindex: u32_at(body, 4).unwrap_or(0),
        ..LinkXdp::default()
    };
    for (ty, payload) in attrs(&body[IFINFOMSG_LEN..]) {
        match ty {
            IFLA_IFNAME => {
                link.ifname = lossy_until_nul(payload);
            }
            IFLA_XDP => {
                for (xty, x) in attrs(payload) {
                    match xty {
                        IFLA_XDP_ATTACHED => link.attached = x.first().copied().unwrap_or(0),
                        IFLA_XDP_DRV_PROG_ID => link.drv_prog_id = u32_at(x, 0).unwrap_or(0),
                        IFLA_XDP_SKB_PROG_ID => link.skb_prog_id = u32_at(x, 0).unwrap_or(0),
                        IFLA_XDP_HW_PROG_ID => link.hw_prog_id = u32_at(x, 0).unwrap_or(0),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(link)
}

/// Open an `AF_NETLINK`/`NETLINK_ROUTE` socket with extended acks, capped.
fn open_socket() -> Result<OwnedFd> {
    let call = "socket(AF_NETLINK, NETLINK_ROUTE)";
    // SAFETY: socket() takes integers only and returns a new fd or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(Error::last_os(call));
    }
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
        let one: libc::c_int = 1;
        // SAFETY: `one` is a live c_int and optlen is its size; the kernel only reads it.
        // Failure (kernels before 4.12) only costs the error text, so it is ignored.
        let _ = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_NETLINK,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    Ok(sock)
}

/// Send `req` (sequence `seq`) to the kernel and return its reply.
///
/// rtnetlink handles a request synchronously inside `sendmsg`, so the reply is queued when
/// `send` returns; the receive does not block.
pub(crate) fn transact(call: &'static str, req: &[u8], seq: u32) -> Result<Reply> {
    let sock = open_socket()?;
    // SAFETY: `req` is a live slice of req.len() readable bytes. An unconnected netlink socket
    // without an address sends to the kernel (port id 0).
    let sent = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(Error::last_os(call));
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: `buf` is a live, exclusively borrowed buffer of buf.len() writable bytes; with
        // MSG_PEEK | MSG_TRUNC the kernel copies at most that many and returns the real length.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(Error::last_os(call));
        }
        let n = n as usize;
        if n > buf.len() {
            buf.resize(n, 0);
        }
        // SAFETY: as above, without peeking: consumes the datagram we just measured.
        let got = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if got < 0 {
            return Err(Error::last_os(call));
        }
        if let Some(reply) = parse_reply(&buf[..got as usize], seq)? {
            return Ok(reply);
        }
    }
}

/// Sequence numbers only need to differ between requests on one socket; we use one socket per
/// request, so a constant would do. Keep them distinct anyway for `strace` readability.
fn next_seq() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(1);
    // Relaxed: only uniqueness matters, no data is published through it.
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// The XDP state of interface `ifindex` in the calling thread's network namespace.
pub(crate) fn get_link_xdp(ifindex: u32) -> Result<LinkXdp> {
    let call = "RTM_GETLINK";
    let seq = next_seq();
    match transact(call, &build_getlink(seq, ifindex), seq)? {
        Reply::Link(link) => Ok(link),
        Reply::Error { errno, .. } if errno == libc::ENODEV => Err(Error::NoSuchInterface {
            name: format!("ifindex {ifindex}"),
        }),
        Reply::Error { errno, extack } => Err(nl_error(call, errno, extack)),
        Reply::Ack => Err(bad("RTM_GETLINK answered without a link")),
    }
}

/// Legacy attach (`fd >= 0`) or detach (`fd = -1`) through `RTM_SETLINK`/`IFLA_XDP_FD`.
pub(crate) fn set_link_xdp_fd(ifindex: u32, fd: i32, flags: u32) -> Result<()> {
    let call = "RTM_SETLINK(IFLA_XDP)";
    let seq = next_seq();
    match transact(call, &build_setlink_xdp(seq, ifindex, fd, flags), seq)? {
        Reply::Ack => Ok(()),
        Reply::Error { errno, extack } => Err(nl_error(call, errno, extack)),
        Reply::Link(_) => Err(bad("RTM_SETLINK answered with a link")),
    }
}

/// Build the error for a refused request: with the kernel's text when there is one.
pub(crate) fn nl_error(call: &'static str, errno: i32, extack: String) -> Error {
    let source = io::Error::from_raw_os_error(errno);
    match errno {
        libc::EPERM => Error::NotPermitted {
            call,
            needs: "CAP_NET_ADMIN",
        },
        _ if extack.is_empty() => Error::Syscall { call, source },
        _ => Error::NetlinkRefused {
            call,
            source,
            detail: extack,
        },
    }
}

#[cfg(all(test, target_endian = "little"))]
mod test {
    use super::*;

    #[test]
    fn getlink_request_bytes() {
        let req = build_getlink(7, 3);
        #[rustfmt::skip]
        let want: [u8; 40] = [
            40, 0, 0, 0,  18, 0,  1, 0,  7, 0, 0, 0,  0, 0, 0, 0, // nlmsghdr
            0, 0, 0, 0,  3, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,   // ifinfomsg
            8, 0, 29, 0,  8, 0, 0, 0,                            // IFLA_EXT_MASK = SKIP_STATS
        ];
        assert_eq!(req, want);
    }

    #[test]
    fn setlink_xdp_request_bytes() {
        let req = build_setlink_xdp(9, 4, -1, XDP_FLAGS_DRV_MODE);
        #[rustfmt::skip]
        let want: [u8; 52] = [
            52, 0, 0, 0,  19, 0,  5, 0,  9, 0, 0, 0,  0, 0, 0, 0,
            0, 0, 0, 0,  4, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            20, 0, 43, 0x80,                 // IFLA_XDP | NLA_F_NESTED
            8, 0, 1, 0,  0xff, 0xff, 0xff, 0xff, // IFLA_XDP_FD = -1
            8, 0, 3, 0,  4, 0, 0, 0,          // IFLA_XDP_FLAGS = DRV_MODE
        ];
        assert_eq!(req, want);
    }

    /// An RTM_NEWLINK as the kernel sends it for a veth with a native program (trimmed to the
    /// attributes we read plus one we skip).
    #[test]
    fn parse_newlink_with_xdp() {
        #[rustfmt::skip]
        let msg: Vec<u8> = vec![
            80, 0, 0, 0,  16, 0,  0, 0,  5, 0, 0, 0,  0x10, 0, 0, 0,
            0, 0, 1, 0,  6, 0, 0, 0,  0x43, 0x10, 1, 0,  0, 0, 0, 0,
            9, 0, 3, 0,  b'v', b'e', b't', b'h', b'0', 0, 0, 0,     // IFLA_IFNAME "veth0" (+pad)
            8, 0, 4, 0,  0xdc, 0x05, 0, 0,                        // IFLA_MTU 1500 (skipped)
            28, 0, 43, 0x80,                                      // IFLA_XDP nest
            5, 0, 2, 0,  1, 0, 0, 0,                              // ATTACHED = DRV (+pad)
            8, 0, 5, 0,  42, 0, 0, 0,                             // DRV_PROG_ID = 42
            8, 0, 4, 0,  42, 0, 0, 0,                             // PROG_ID = 42
        ];
        assert_eq!(msg.len(), 80);
        let reply = parse_reply(&msg, 5).unwrap().unwrap();
        assert_eq!(
            reply,
            Reply::Link(LinkXdp {
                ifindex: 6,
                ifname: "veth0".into(),
                attached: 1,
                drv_prog_id: 42,
                skb_prog_id: 0,
                hw_prog_id: 0,
            })
        );
        // Another sequence number: not ours.
        assert_eq!(parse_reply(&msg, 6).unwrap(), None);
    }

    #[test]
    fn parse_ack_and_errors() {
        #[rustfmt::skip]
        let ack: [u8; 36] = [
            36, 0, 0, 0,  2, 0,  0x00, 0x01,  9, 0, 0, 0,  0, 0, 0, 0,
            0, 0, 0, 0,                                    // error 0
            52, 0, 0, 0,  19, 0, 5, 0,  9, 0, 0, 0,  0, 0, 0, 0, // echoed header (capped)
        ];
        assert_eq!(parse_reply(&ack, 9).unwrap(), Some(Reply::Ack));

        // -EBUSY with an extended-ack message, capped.
        let text = b"Can't replace active BPF XDP link\0";
        let tlv_len = 4 + text.len();
        let total = 16 + 4 + 16 + align4(tlv_len);
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&(NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
        m.extend_from_slice(&9u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-libc::EBUSY).to_ne_bytes());
        m.extend_from_slice(&[52, 0, 0, 0, 19, 0, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&(tlv_len as u16).to_ne_bytes());
        m.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        m.extend_from_slice(text);
        m.resize(total, 0);
        assert_eq!(
            parse_reply(&m, 9).unwrap(),
            Some(Reply::Error {
                errno: libc::EBUSY,
                extack: "Can't replace active BPF XDP link".into()
            })
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(parse_reply(&[200, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], 1).is_err());
        assert_eq!(parse_reply(&[1, 2, 3], 1).unwrap(), None);
        // Attribute claiming more bytes than present: iteration stops.
        assert_eq!(attrs(&[50, 0, 3, 0, 1]).count(), 0);
    }
}
