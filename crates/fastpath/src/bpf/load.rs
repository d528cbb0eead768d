//! Loading XDP programs: [`XdpProgram`], a program in the kernel, and [`XdpAction`], what it
//! returns. The programs fastpath loads are built in `crate::unstable::xdp_prog`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::insn::Insn;
use crate::sys::bpf as sys;
use crate::Result;

/// An XDP program's verdict (`enum xdp_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XdpAction {
    /// `XDP_ABORTED` (0): drop and fire the `xdp_exception` tracepoint.
    Aborted = 0,
    /// `XDP_DROP` (1).
    Drop = 1,
    /// `XDP_PASS` (2): on to the kernel stack.
    Pass = 2,
    /// `XDP_TX` (3): back out of the interface it came in on.
    Tx = 3,
    /// `XDP_REDIRECT` (4): to another interface, CPU or AF_XDP socket.
    Redirect = 4,
}

impl XdpAction {
    /// The action for a raw return value, `None` for values the kernel treats as invalid.
    pub fn from_raw(v: u32) -> Option<XdpAction> {
        Some(match v {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            _ => return None,
        })
    }
}

/// A loaded XDP program (type `BPF_PROG_TYPE_XDP`, expected attach type `BPF_XDP`).
///
/// Dropping it closes our fd; the kernel keeps the program while an attachment uses it.
// Implementation: this file (the program builders: `xdp_prog.rs`); the syscall in `sys/bpf.rs`.
#[derive(Debug)]
pub struct XdpProgram {
    fd: OwnedFd,
    id: u32,
    name: &'static str,
    restores_vlan: bool,
    rx_timestamps: bool,
}

impl XdpProgram {
    /// Loads `insns` as an XDP program called `name` (at most 15 characters of
    /// `[A-Za-z0-9_.]`, shown by `bpftool prog` and `ip link`).
    ///
    /// # Errors
    /// [`Error::VerifierRejected`](crate::Error::VerifierRejected) with the verifier log;
    /// [`Error::NotPermitted`](crate::Error::NotPermitted) without `CAP_BPF`/`CAP_NET_ADMIN`;
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a bad name.
    pub fn load(name: &'static str, insns: &[Insn]) -> Result<XdpProgram> {
        let fd = sys::prog_load(&sys::LoadSpec::XDP, name, insns)?;
        XdpProgram::loaded(fd, name, false)
    }

    /// The program behind `fd`, just loaded as `name`.
    pub(crate) fn loaded(
        fd: OwnedFd,
        name: &'static str,
        restores_vlan: bool,
    ) -> Result<XdpProgram> {
        let id = sys::prog_info(fd.as_fd())?.id;
        Ok(XdpProgram {
            fd,
            id,
            name,
            restores_vlan,
            rx_timestamps: false,
        })
    }

    /// Loads `insns` as an XDP program called `name` bound to device `ifindex`
    /// (`BPF_F_XDP_DEV_BOUND_ONLY`: it may call the device's XDP metadata kfuncs and attaches to
    /// `ifindex` only). Returns the fd for [`XdpProgram::loaded`], so that the caller can tell a
    /// failed load from a failure after it.
    ///
    /// # Errors
    /// As [`XdpProgram::load`]; any error for a driver that cannot bind programs or a kernel
    /// before 6.3.
    pub(crate) fn load_dev_bound(
        name: &'static str,
        insns: &[Insn],
        ifindex: u32,
    ) -> Result<OwnedFd> {
        let spec = sys::LoadSpec {
            prog_flags: sys::BPF_F_XDP_DEV_BOUND_ONLY,
            prog_ifindex: ifindex,
            ..sys::LoadSpec::XDP
        };
        sys::prog_load(&spec, name, insns)
    }

    /// Whether the program puts back VLAN tags the device moved out of frames (see
    /// [`XdpProgram::redirect_native`]).
    pub fn restores_vlan(&self) -> bool {
        self.restores_vlan
    }

    /// Whether the program writes each frame's receive timestamp from the driver's XDP
    /// metadata into the 8 bytes before the frame (see [`XdpProgram::redirect_native_with`]).
    pub fn rx_timestamps(&self) -> bool {
        self.rx_timestamps
    }

    /// Marks the program as writing receive timestamps before each frame.
    pub(crate) fn with_rx_timestamps(mut self) -> XdpProgram {
        self.rx_timestamps = true;
        self
    }

    /// The kernel's id for this program (`bpftool prog show id <id>`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The name given at load time.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl AsFd for XdpProgram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for v in 0..5 {
            assert_eq!(XdpAction::from_raw(v).map(|a| a as u32), Some(v));
        }
        assert_eq!(XdpAction::from_raw(5), None);
    }
}
