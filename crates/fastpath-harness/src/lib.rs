//! OS plumbing shared by the fastpath lab and the fastpath tests: network
//! namespaces, veth pairs, CPU pinning, AF_PACKET send and receive, and
//! Ethernet/IPv4/UDP frame building. One copy of each, used by
//! `fastpath-lab` (the benchmark testbed and generator) and by
//! `fastpath-testutil` (which re-exports what the tests import).
//!
//! - [`netns`]: [`Namespace`](netns::Namespace) (named, deleted on drop),
//!   [`NetNs`](netns::NetNs) (also entered on the creating thread), stale
//!   leftover cleanup.
//! - [`veth`]: veth pairs, in one namespace or across two.
//! - [`ip`]: the `ip` tool and its `-o link show` lines.
//! - [`cpu`]: pinning, the allowed CPUs, per-thread CPU time.
//! - [`packet`]: AF_PACKET sockets: [`RawSender`](packet::RawSender) /
//!   [`RawReceiver`](packet::RawReceiver) (`sendto`/`recvfrom`, the tests'
//!   reference path) and [`PacketTx`](packet::PacketTx) (`sendmmsg` batches).
//! - [`frame`]: headers and checksums, and the deterministic test frames.
//! - [`process`]: root check, liveness, signals, `PATH` lookup, interrupting a thread's
//!   blocking system call.
//! - [`ethtool`]: driver statistics (`ethtool -S`).
//!
//! What it does not do: no IP configuration or routing, no traffic at rate
//! (that is the lab's generator), nothing from the `fastpath` library (which
//! dev-depends on this crate through `fastpath-testutil`). Everything
//! privileged uses the `ip` tool from iproute2 plus plain syscalls, and needs
//! root (CAP_SYS_ADMIN for `setns`, CAP_NET_ADMIN/CAP_NET_RAW for the rest).
//! The API is `io::Result` throughout; all `unsafe` code is in one private
//! file, `sys.rs`.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod cpu;
pub mod ethtool;
pub mod frame;
pub mod ip;
pub mod netns;
pub mod packet;
pub mod process;
mod sys;
pub mod veth;
