//! **No stability promise.** The BPF toolkit under the `xdp` rung and the XDP programs fastpath
//! loads, exposed for `fastpath-lab` (the live-frames generator, the XDP_DROP/XDP_PASS rows,
//! the ceiling) and for fastpath's own tests. Anything here may change or go away in any release;
//! applications use [`Receiver`](crate::Receiver) and [`Config`](crate::Config) instead (the
//! attach mode is [`XdpMode`](crate::XdpMode)).
//!
//! - [`bpf`]: the eBPF assembler, `bpf(2)` loader, maps, attaching, `BPF_PROG_TEST_RUN`.
//! - [`xdp_prog`]: the programs composed from the assembler and the filter compiler.

#[path = "bpf/mod.rs"]
pub mod bpf;
#[path = "xdp_prog.rs"]
pub mod xdp_prog;
