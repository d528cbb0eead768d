//! BPF without a C toolchain: an eBPF instruction emitter, the `bpf(2)` loader, maps, attaching
//! XDP programs to interfaces, and `BPF_PROG_TEST_RUN`.
//!
//! Everything is built from Rust with plain syscalls: no clang, no libbpf, no object files; of
//! BTF only the lookup of one kernel function's id (`btf.rs`, for the VLAN-restoring redirect
//! program). The programs are a few instructions each, written with [`insn`], a sans-IO encoder
//! and label assembler that is also the target for filter translation; the ones fastpath loads
//! are composed in [`xdp_prog`](crate::unstable::xdp_prog) (above this module and the filter compiler).
//!
//! | need | use |
//! |---|---|
//! | send each RX queue's frames to an AF_XDP socket | [`XskMap`] + [`XdpProgram::redirect`] ([`XdpProgram::redirect_native`] also puts back VLAN tags the device stripped) |
//! | push a VLAN tag as skb metadata on egress (testbeds) | [`tc::TcxVlanPush`] |
//! | drop / pass / bounce every frame | [`XdpProgram::drop`], [`XdpProgram::pass`], [`XdpProgram::tx`] |
//! | put a program on an interface | [`XdpAttachment::attach`] (detaches on drop and on process death) |
//! | see what is attached | [`attached`] |
//! | check a program on synthetic frames | [`test_run`] |
//! | generate traffic at line rate | [`test_run_live`] with [`XdpProgram::tx`] |
//!
//! What it does not do: load ELF objects, handle BTF/CO-RE, tail calls or program chaining
//! (libxdp's dispatcher). One XDP program per interface; a program already there is never
//! replaced unless asked.
//!
//! Privileges: loading needs `CAP_BPF` (or `CAP_SYS_ADMIN`) and, for XDP, `CAP_NET_ADMIN`;
//! naming or replacing another process's program needs `CAP_SYS_ADMIN`.
//!
//! Namespaces: interface indices are resolved in the network namespace of the *calling thread*,
//! for attaching, querying and live test runs alike.
//!
//! Implementation: `insn.rs` (assembler), `load.rs` ([`XdpProgram`], [`XdpAction`]), `map.rs`
//! ([`Map`], [`XskMap`]), `attach.rs` ([`XdpAttachment`], [`Mode`], [`attached`]),
//! `test_run.rs`, `btf.rs`, `tc.rs`; the kernel structs and syscalls in `sys/bpf.rs` and
//! `sys/netlink.rs`; the programs' constructors (`XdpProgram::redirect`, ...) in `xdp_prog.rs`.
//!
//! ```no_run
//! use fastpath::unstable::bpf::{Mode, XdpAttachment, XdpProgram, XskMap};
//!
//! let xsks = XskMap::new(64)?;
//! let prog = XdpProgram::redirect(&xsks)?;
//! let ifindex = 2; // if_nametoindex("eth0")
//! let _attached = XdpAttachment::attach(&prog, ifindex, Mode::Native, false)?;
//! // ... bind AF_XDP sockets, then xsks.set(queue, sock.as_fd())?
//! # Ok::<(), fastpath::Error>(())
//! ```

mod attach;
pub(crate) mod btf;
pub mod insn;
mod load;
mod map;
pub mod tc;
mod test_run;

pub use attach::{attached, AttachedProgram, Mode, XdpAttachment};
pub use load::{XdpAction, XdpProgram};
pub use map::{Map, MapType, XskMap};
pub use test_run::{test_run, test_run_live, LiveRunResult, TestRunResult, TEST_XDP_MAX_BATCH};
