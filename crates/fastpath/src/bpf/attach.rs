//! Putting an XDP program on an interface through a `bpf_link` ([`XdpAttachment`]), and seeing
//! what is there ([`attached`]). The policy lives here: never replace someone else's program
//! unless asked, never fall back to generic mode by itself, netlink only on kernels without XDP
//! links. The messages and syscalls are in `sys/netlink.rs` and `sys/bpf.rs`.
//!
//! Guarantees:
//! - [`XdpAttachment::attach`] never silently replaces a program someone else attached: unless
//!   `replace` is set it fails with [`Error::XdpAlreadyAttached`], naming the program.
//! - Native mode never falls back to generic mode by itself: a driver without native XDP gives
//!   [`Error::Unsupported`], whose text says that generic mode must be asked for.
//! - An attachment made through a `bpf_link` (every kernel since 5.9) disappears with the
//!   process, even on `kill -9`: the kernel detaches when the last link fd is closed.
//!
//! # References
//! - <https://docs.kernel.org/bpf/redirect.html>
//! - <https://docs.kernel.org/networking/af_xdp.html>

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::XdpProgram;
use crate::sys::bpf as sys;
use crate::sys::netlink::{
    self, LinkXdp, XDP_ATTACHED_MULTI, XDP_ATTACHED_NONE, XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE,
    XDP_FLAGS_SKB_MODE,
};
use crate::{Error, Result};

/// Where an XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Native (driver) mode, `XDP_FLAGS_DRV_MODE`: before any skb is allocated. Fast; needs
    /// driver support (veth, virtio_net, most 10G+ NICs; not `lo`).
    Native,
    /// Generic (skb) mode, `XDP_FLAGS_SKB_MODE`: works on every interface, after skb allocation,
    /// so several times slower. Never chosen implicitly.
    Generic,
    /// Offloaded to the NIC, `XDP_FLAGS_HW_MODE`. Only reported by [`attached`]; fastpath does
    /// not attach in this mode.
    Offload,
}

impl Mode {
    fn flag(self) -> u32 {
        match self {
            Mode::Native => XDP_FLAGS_DRV_MODE,
            Mode::Generic => XDP_FLAGS_SKB_MODE,
            Mode::Offload => XDP_FLAGS_HW_MODE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
            Mode::Offload => "offload",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An XDP program found on an interface by [`attached`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedProgram {
    /// Program id.
    pub id: u32,
    /// Program name, `None` if it could not be read (needs `CAP_SYS_ADMIN`).
    pub name: Option<String>,
    /// The mode it is attached in.
    pub mode: Mode,
}

fn programs_of(state: &LinkXdp) -> Vec<(Mode, u32)> {
    if state.attached == XDP_ATTACHED_NONE {
        return Vec::new();
    }
    let mut v = Vec::new();
    for (mode, id) in [
        (Mode::Native, state.drv_prog_id),
        (Mode::Generic, state.skb_prog_id),
        (Mode::Offload, state.hw_prog_id),
    ] {
        if id != 0 {
            v.push((mode, id));
        }
    }
    debug_assert!(state.attached != XDP_ATTACHED_MULTI || v.len() > 1);
    v
}

/// The name of program `id`, if it can be opened and read.
fn prog_name(id: u32) -> Option<String> {
    let fd = sys::prog_get_fd_by_id(id).ok()?;
    let info = sys::prog_info(fd.as_fd()).ok()?;
    Some(sys::lossy_until_nul(&info.name))
}

/// The XDP programs attached to interface `ifindex` (in the calling thread's namespace), one per
/// mode in use; empty if none. Asks rtnetlink (`RTM_GETLINK`, `IFLA_XDP`), as `ip link` does.
///
/// # Errors
/// [`Error::NoSuchInterface`] for an unknown index; [`Error::Syscall`] otherwise.
pub fn attached(ifindex: u32) -> Result<Vec<AttachedProgram>> {
    let state = netlink::get_link_xdp(ifindex)?;
    Ok(programs_of(&state)
        .into_iter()
        .map(|(mode, id)| AttachedProgram {
            id,
            name: prog_name(id),
            mode,
        })
        .collect())
}

fn already_attached(state: &LinkXdp, mode: Mode, id: u32) -> Error {
    Error::XdpAlreadyAttached {
        ifname: state.ifname.clone(),
        ifindex: state.ifindex,
        id,
        name: prog_name(id).unwrap_or_else(|| "<unknown>".to_owned()),
        mode: mode.name(),
    }
}

/// Detach program `id` (mode `mode`) from the interface, whoever attached it: through netlink
/// if it was attached that way, else by finding its `bpf_link` and detaching that
/// (`BPF_LINK_DETACH`, as `bpftool link detach` does; the owner's fd then points to a dead link).
fn remove_existing(state: &LinkXdp, mode: Mode, id: u32) -> Result<()> {
    let by_netlink = netlink::set_link_xdp_fd(state.ifindex, -1, mode.flag());
    match by_netlink {
        Ok(()) => return Ok(()),
        // "Can't replace active BPF XDP link": a link owns the hook.
        Err(ref e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => return Err(e),
    }
    let mut next = 0;
    while let Some(link_id) = sys::link_get_next_id(next)? {
        next = link_id;
        let Ok(link) = sys::link_get_fd_by_id(link_id) else {
            continue; // gone meanwhile
        };
        let info = sys::link_info(link.as_fd())?;
        if info.r#type == sys::BPF_LINK_TYPE_XDP
            && info.prog_id == id
            && info.xdp_ifindex == state.ifindex
        {
            return sys::link_detach(link.as_fd());
        }
    }
    Err(Error::Syscall {
        call: "BPF_LINK_DETACH",
        source: std::io::Error::other(format!(
            "program {id} on `{}` is held by a bpf_link that could not be found",
            state.ifname
        )),
    })
}

/// Kernel version from `/proc/sys/kernel/osrelease` ("6.18.44-..." -> (6, 18)).
fn kernel_version() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = s.trim().split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[derive(Debug)]
enum How {
    /// A `bpf_link`: closing the fd detaches.
    Link(OwnedFd),
    /// Legacy netlink attachment (kernels before 5.9): detached explicitly on drop.
    Netlink,
}

/// An XDP program attached to an interface. Dropping it detaches the program.
///
/// Made with a `bpf_link` where the kernel has them (5.9+), so the program also goes away when
/// the process dies, even by `kill -9`. On older kernels it falls back to the netlink attach
/// (`IFLA_XDP_FD`), detached on drop only: a killed process leaves the program attached.
// Implementation: this file.
#[derive(Debug)]
pub struct XdpAttachment {
    ifindex: u32,
    ifname: String,
    mode: Mode,
    prog_id: u32,
    how: How,
}

impl XdpAttachment {
    /// Attaches `prog` to interface `ifindex` (in the calling thread's namespace) in `mode`.
    ///
    /// First asks rtnetlink whether a program is attached already (in any mode). If one is and
    /// `replace` is false, fails with [`Error::XdpAlreadyAttached`] naming it; if `replace` is
    /// true, detaches it first (there is a short window with no program, in which frames go to
    /// the kernel stack).
    ///
    /// # Errors
    /// - [`Error::XdpAlreadyAttached`] as above (also when another program appears meanwhile);
    /// - [`Error::Unsupported`] if `mode` is [`Mode::Native`] and the driver has no native XDP:
    ///   the message says generic mode is the fallback and must be asked for;
    /// - [`Error::NoSuchInterface`], [`Error::NotPermitted`] (`CAP_NET_ADMIN`, plus
    ///   `CAP_SYS_ADMIN` to name or replace another program), [`Error::Syscall`].
    pub fn attach(
        prog: &XdpProgram,
        ifindex: u32,
        mode: Mode,
        replace: bool,
    ) -> Result<XdpAttachment> {
        if mode == Mode::Offload {
            return Err(Error::Unsupported {
                backend: "xdp",
                why: "hardware offload needs a program bound to the device at load time".into(),
                fix: "attach in Mode::Native",
            });
        }
        let state = netlink::get_link_xdp(ifindex)?;
        let existing = programs_of(&state);
        if let Some(&(m, id)) = existing.first() {
            if !replace {
                return Err(already_attached(&state, m, id));
            }
            for &(m, id) in &existing {
                remove_existing(&state, m, id)?;
            }
        }
        let attachment = |how| XdpAttachment {
            ifindex,
            ifname: state.ifname.clone(),
            mode,
            prog_id: prog.id(),
            how,
        };
        let e = match sys::link_create_xdp(prog.as_fd(), ifindex, mode.flag()) {
            Ok(link) => return Ok(attachment(How::Link(link))),
            Err(e) => e,
        };
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) if mode == Mode::Native => Err(Error::Unsupported {
                backend: "xdp",
                why: format!(
                    "the driver of `{}` has no native XDP (bpf_link_create: EOPNOTSUPP)",
                    state.ifname
                ),
                fix: "generic (skb) mode is the fallback and must be asked for explicitly: \
                      Mode::Generic (CLI `--xdp-mode generic`); it is several times slower",
            }),
            // Someone attached meanwhile, or (EEXIST) the other mode is in use.
            Some(libc::EBUSY) | Some(libc::EEXIST) => {
                let now = netlink::get_link_xdp(ifindex)?;
                match programs_of(&now).first() {
                    Some(&(m, id)) => Err(already_attached(&now, m, id)),
                    None => Err(sys::bpf_error("bpf(BPF_LINK_CREATE)", "CAP_NET_ADMIN", e)),
                }
            }
            // Kernels before 5.9 have no XDP links and say EINVAL.
            Some(libc::EINVAL) if kernel_version().is_some_and(|v| v < (5, 9)) => {
                netlink::set_link_xdp_fd(
                    ifindex,
                    prog.as_fd().as_raw_fd(),
                    mode.flag() | netlink::XDP_FLAGS_UPDATE_IF_NOEXIST,
                )?;
                Ok(attachment(How::Netlink))
            }
            _ => Err(sys::bpf_error("bpf(BPF_LINK_CREATE)", "CAP_NET_ADMIN", e)),
        }
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface name at attach time.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The mode attached in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The attached program's id.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// Whether the attachment is a `bpf_link` (false: the netlink fallback of old kernels).
    pub fn is_link(&self) -> bool {
        matches!(self.how, How::Link(_))
    }

    /// Detaches now, reporting failure (dropping detaches too, silently). When this returns,
    /// the program is off the interface (`BPF_LINK_DETACH`, not just a close).
    ///
    /// # Errors
    /// [`Error::Syscall`] from `BPF_LINK_DETACH`, or the `RTM_SETLINK` error of the netlink
    /// fallback.
    pub fn detach(mut self) -> Result<()> {
        self.detach_inner()
    }

    fn detach_inner(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.how, How::Netlink) {
            // Closing the last fd of the link would detach it too (bpf_link_release), but ours
            // may not be the last: a fork in another thread duplicates the fd table until the
            // child execs. BPF_LINK_DETACH detaches now whoever else holds the link; it answers 0
            // for a link someone already detached (replace = true elsewhere).
            How::Link(fd) => {
                self.prog_id = 0;
                sys::link_detach(fd.as_fd())
            }
            How::Netlink if self.prog_id == 0 => Ok(()),
            How::Netlink => {
                let id = std::mem::take(&mut self.prog_id);
                // Only if our program is still the one attached: never remove another's.
                let state = netlink::get_link_xdp(self.ifindex)?;
                if programs_of(&state).contains(&(self.mode, id)) {
                    netlink::set_link_xdp_fd(self.ifindex, -1, self.mode.flag())?;
                }
                Ok(())
            }
        }
    }
}

impl Drop for XdpAttachment {
    fn drop(&mut self) {
        // Errors can only come from the netlink fallback; there is nobody to report them to.
        let _ = self.detach_inner();
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn programs_of_lists_each_mode() {
        let mut s = LinkXdp::default();
        assert!(programs_of(&s).is_empty());
        s.attached = 1;
        s.drv_prog_id = 9;
        assert_eq!(programs_of(&s), [(Mode::Native, 9)]);
        s.attached = XDP_ATTACHED_MULTI;
        s.hw_prog_id = 11;
        assert_eq!(programs_of(&s), [(Mode::Native, 9), (Mode::Offload, 11)]);
    }

    #[test]
    fn kernel_version_parses() {
        let v = kernel_version().expect("/proc/sys/kernel/osrelease is readable on Linux");
        assert!(v >= (3, 0));
    }

    /// `replace = true` over programs attached the legacy way (netlink, as `ip link set xdp` and
    /// libxdp do), in the same and in the other mode. Root; skipped otherwise.
    #[test]
    fn replace_takes_over_netlink_attached_programs() {
        use fastpath_testutil::{have_cmd, is_root, require, NetNs};
        require!(is_root() && have_cmd("ip"), "needs root and `ip`");
        let ns = NetNs::new("fpbu");
        let v = ns.veth_pair("fpbu_a", "fpbu_b");
        let old = XdpProgram::pass().unwrap();
        let new = XdpProgram::drop().unwrap();
        for old_mode in [Mode::Native, Mode::Generic] {
            netlink::set_link_xdp_fd(v.a_index, old.as_fd().as_raw_fd(), old_mode.flag()).unwrap();
            match XdpAttachment::attach(&new, v.a_index, Mode::Native, false) {
                Err(Error::XdpAlreadyAttached { id, name, mode, .. }) => {
                    assert_eq!(
                        (id, name.as_str(), mode),
                        (old.id(), "fastpath_pass", old_mode.name())
                    );
                }
                other => panic!("expected XdpAlreadyAttached, got {other:?}"),
            }
            let att = XdpAttachment::attach(&new, v.a_index, Mode::Native, true).unwrap();
            assert!(att.is_link());
            let now = attached(v.a_index).unwrap();
            assert_eq!(now.len(), 1);
            assert_eq!((now[0].id, now[0].mode), (new.id(), Mode::Native));
            drop(att);
            assert!(attached(v.a_index).unwrap().is_empty());
        }
    }

    /// The netlink fallback (kernels before 5.9) detaches on drop, but only its own program.
    /// Root; skipped otherwise.
    #[test]
    fn netlink_fallback_drop_removes_only_its_own_program() {
        use fastpath_testutil::{have_cmd, is_root, require, NetNs};
        require!(is_root() && have_cmd("ip"), "needs root and `ip`");
        let ns = NetNs::new("fpbu");
        let v = ns.veth_pair("fpbu_a", "fpbu_b");
        let ours = XdpProgram::pass().unwrap();
        let theirs = XdpProgram::drop().unwrap();
        let fallback = |prog: &XdpProgram| {
            netlink::set_link_xdp_fd(v.a_index, prog.as_fd().as_raw_fd(), XDP_FLAGS_SKB_MODE)
                .unwrap();
            XdpAttachment {
                ifindex: v.a_index,
                ifname: v.a.clone(),
                mode: Mode::Generic,
                prog_id: prog.id(),
                how: How::Netlink,
            }
        };
        let att = fallback(&ours);
        assert!(!att.is_link());
        att.detach().unwrap();
        assert!(attached(v.a_index).unwrap().is_empty());

        // Someone replaced our program meanwhile: dropping ours must leave theirs alone.
        let att = fallback(&ours);
        netlink::set_link_xdp_fd(v.a_index, theirs.as_fd().as_raw_fd(), XDP_FLAGS_SKB_MODE)
            .unwrap();
        drop(att);
        assert_eq!(attached(v.a_index).unwrap()[0].id, theirs.id());
        netlink::set_link_xdp_fd(v.a_index, -1, XDP_FLAGS_SKB_MODE).unwrap();
        assert!(attached(v.a_index).unwrap().is_empty());
    }
}
