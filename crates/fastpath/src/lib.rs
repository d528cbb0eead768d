//! # fastpath: one Rust API over every Linux packet receive path
//!
//! Receiving packets fast on Linux is a ladder. Each rung trades generality for speed:
//!
//! | rung | backend | how packets reach you | ~rate on one desktop core |
//! |---|---|---|---|
//! | 1 | [`Backend::Recv`], [`Backend::RecvBatch`] | AF_PACKET socket, one syscall and one copy per packet (or per batch) | 0.3 Mpps |
//! | 2 | [`Backend::Mmap`] | PACKET_MMAP TPACKET_V3 ring shared with the kernel, one wake-up per block | 0.7–1.5 Mpps |
//! | 3 | [`Backend::Dpdk`] | kernel bypass, the application drives the NIC | 20+ Mpps |
//! | 4 | [`Backend::Xdp`] | an XDP program redirects to an AF_XDP socket | close to DPDK, kernel kept |
//!
//! (Rates are the well-known orders of magnitude; `fastpath lab` measures them on your machine.)
//!
//! fastpath gives all of them one handle, [`Receiver`]: open it with a [`Config`], call
//! [`Receiver::recv`] to get a [`Batch`] of [`Packet`]s (borrowed from the ring where the backend
//! allows it: zero-copy), read exact kernel counters with [`Receiver::stats`] and ask what the
//! backend can do with [`Receiver::capabilities`].
//!
//! ## Which backend to pick
//! - **`mmap`** for capture and monitoring on any interface: no setup, sees both directions,
//!   leaves the kernel stack untouched, ~20 ns of CPU per packet. The default.
//! - **`recv`/`recv-batch`** only as the baseline (or where mmap rings are unavailable): a
//!   syscall and a copy per packet.
//! - **`xdp`** when one interface (a mirror port, a veth) is dedicated to you and you need
//!   several Mpps per core. fastpath loads its own XDP program (no clang, no libbpf) that
//!   redirects each queue into an AF_XDP socket; packets are lent from the UMEM. AF_XDP takes
//!   packets *away* from the kernel stack, so an interface with IP addresses is refused unless
//!   [`Config::take`] confirms it. The program is attached with a bpf_link: it goes away with the
//!   process, even after `kill -9`. Zero-copy where the driver has it, copy mode otherwise
//!   (reported in [`Capabilities::driver_zero_copy`] and [`Capabilities::mode`]). TX:
//!   [`Receiver::send`].
//! - **`dpdk`** (cargo feature `dpdk`, needs `libdpdk-dev`) when the NIC is bound to DPDK anyway,
//!   or to compare with DPDK's own AF_PACKET/AF_XDP drivers.
//!
//! Several cores: [`open_fanout`] opens N AF_PACKET sockets in one `PACKET_FANOUT` group, one per
//! thread; [`open_queues`] opens one AF_XDP socket per queue on one shared UMEM.
//!
//! ## What fastpath does not do
//! It does not parse protocols (use `etherparse` on [`Packet::data`]), does not reassemble, and
//! does not transmit on the AF_PACKET rungs (only `xdp` and `dpdk` have TX).
//!
//! ## Privileges
//! Opening a receiver needs `CAP_NET_RAW`; promiscuous mode and `SO_RCVBUFFORCE` need
//! `CAP_NET_ADMIN`; `xdp` also needs `CAP_BPF` and `CAP_NET_ADMIN` to load and attach its
//! program. Errors name the capability that is missing.
//!
//! ## Inside
//! Modules depend only on those below them: `sys` (every kernel mirror and syscall: packet
//! sockets, `sock_filter`, `bpf_insn`/`bpf_attr`, rtnetlink) → `ring` (kernel-shared ring
//! views) → `bpf` (assembler, loader, maps, attach) and [`filter`] (the compiler; it uses only
//! the assembler) side by side → `xdp_prog` (the XDP programs composed from both) → `config`
//! ([`Config`] and every rung's options, [`XdpMode`]) and `packet` ([`Packet`], [`Stats`],
//! [`Capabilities`]) → `backend` (one module per rung, each behind the crate-private `Rung`
//! trait; without the `dpdk` feature `backend/dpdk` is one stub file) → `receiver`
//! ([`Receiver`], [`Batch`], [`open_fanout`], [`open_queues`]: the one place that dispatches over
//! the rungs), then `probe` ([`interfaces`], [`probe`]: what each rung could do on an interface,
//! without opening it) and, with the `tokio` feature, `aio` (`AsyncReceiver`). [`pcap`] stands
//! apart (sans-IO, used by the CLI). The public types are re-exported
//! here; `bpf` and `xdp_prog` are reachable only through [`unstable`], the door for the lab and
//! the tests, with no stability promise.
//!
//! ## Example
//! ```no_run
//! use std::time::Duration;
//! use fastpath::{Backend, Config, Receiver};
//!
//! let mut rx = Receiver::open(&Config::new("eth0").backend(Backend::Mmap).snaplen(128))?;
//! let mut bytes = 0u64;
//! for _ in 0..100 {
//!     let batch = rx.recv(Some(Duration::from_millis(100)))?;
//!     for pkt in &batch {
//!         bytes += pkt.data().len() as u64;
//!     }
//! }
//! let st = rx.stats()?;
//! println!("{bytes} bytes; kernel saw {} packets, dropped {}", st.received, st.dropped);
//! # Ok::<(), fastpath::Error>(())
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "tokio")]
mod aio;
mod backend;
mod config;
mod error;
pub mod filter;
mod limits;
mod packet;
pub mod pcap;
mod probe;
mod receiver;
mod ring;
mod sys;
pub mod unstable;

// The BPF toolkit and the XDP programs live behind the unstable door; inside the crate they keep
// their short paths.
pub(crate) use unstable::bpf;

#[cfg(feature = "tokio")]
pub use aio::{AsyncReceiver, NoWaitFd};
pub use config::{
    Backend, CaptureDirection, Config, DpdkConfig, FanoutMode, MmapConfig, TimestampType,
    XdpConfig, XdpMode, ZeroCopy, MAX_SNAPLEN,
};
pub use error::{Error, Result};
pub use filter::{Filter, FilterError};
pub use packet::{Capabilities, Direction, Packet, Stats, TimestampSource};
pub use probe::{interfaces, probe, InterfaceCaps};
pub use receiver::{open_fanout, open_queues, rx_queue_count, Batch, Iter, Receiver};
