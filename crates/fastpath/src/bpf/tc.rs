//! A testbed helper: a tcx egress program that moves every outgoing frame's VLAN tag into the
//! skb's metadata, as a VLAN device does over a device that offloads VLAN insertion (veth
//! does). The peer then receives the tag as metadata, not in the frame bytes: what hardware
//! VLAN stripping looks like to XDP. fastpath's tests use it to check that every rung hands out
//! the tag in place; it needs no `8021q`, `act_vlan` or `cls_matchall` module (Linux 6.6+ for
//! tcx).

use std::os::fd::{AsFd, OwnedFd};

use super::insn::{Insn, Reg};
use crate::sys::bpf as sys;
use crate::Result;

/// `bpf_skb_vlan_push`.
const BPF_FUNC_SKB_VLAN_PUSH: i32 = 18;

/// Instructions: `bpf_skb_vlan_push(skb, htons(tpid), tci)`, then pass the frame on.
pub fn vlan_push_insns(tpid: u16, tci: u16) -> Vec<Insn> {
    vec![
        // r1 holds the skb.
        Insn::mov64_imm(Reg::R2, i32::from(tpid.to_be())),
        Insn::mov64_imm(Reg::R3, i32::from(tci)),
        Insn::call(BPF_FUNC_SKB_VLAN_PUSH),
        // TCX_PASS
        Insn::mov64_imm(Reg::R0, 0),
        Insn::exit(),
    ]
}

/// A [`vlan_push_insns`] program on the egress hook of an interface; detached when dropped.
#[derive(Debug)]
pub struct TcxVlanPush {
    link: OwnedFd,
    _prog: OwnedFd,
}

impl TcxVlanPush {
    /// Attaches a program pushing tag (`tpid`, `tci`) on every frame `ifindex` sends (in the
    /// calling thread's network namespace).
    ///
    /// # Errors
    /// [`Error::VerifierRejected`](crate::Error::VerifierRejected) or a syscall error (tcx
    /// needs Linux 6.6; `CAP_BPF` and `CAP_NET_ADMIN`).
    pub fn attach(ifindex: u32, tpid: u16, tci: u16) -> Result<TcxVlanPush> {
        let spec = sys::LoadSpec {
            prog_type: sys::BPF_PROG_TYPE_SCHED_CLS,
            expected_attach_type: sys::BPF_TCX_EGRESS,
            prog_flags: 0,
            prog_ifindex: 0,
        };
        let prog = sys::prog_load(&spec, "fastpath_vpush", &vlan_push_insns(tpid, tci))?;
        let link = sys::link_create(prog.as_fd(), ifindex, sys::BPF_TCX_EGRESS, 0)
            .map_err(|e| sys::bpf_error("bpf(BPF_LINK_CREATE)", "CAP_NET_ADMIN", e))?;
        Ok(TcxVlanPush { link, _prog: prog })
    }
}

impl Drop for TcxVlanPush {
    fn drop(&mut self) {
        // Detach now even if a forked child still holds a copy of the fd.
        let _ = sys::link_detach(self.link.as_fd());
    }
}
