//! Test support for fastpath: network namespace and veth guards, raw frame
//! injection and capture, deterministic frame builders, skip-or-fail probes
//! and byte-exact comparison helpers.
//!
//! Tier 1 tests (root, real kernel) follow one pattern:
//!
//! ```no_run
//! use std::time::Duration;
//! use fastpath_testutil::*;
//!
//! require!(is_root(), "needs root for network namespaces");
//! let ns = NetNs::new("fpt"); // entered on this thread, deleted on drop
//! let veth = ns.veth_pair("fpa", "fpb"); // up, IPv6 off, no addresses
//! let rx = RawReceiver::new(&veth.b).unwrap(); // or the backend under test
//! let frames: Vec<_> = (0..8).map(|s| udp_frame(s, 64, DST_MAC, veth.a_mac)).collect();
//! RawSender::new(&veth.a).unwrap().send_all(&frames).unwrap();
//! assert_frames_eq(&rx.collect(frames.len(), Duration::from_secs(2)).unwrap(), &frames);
//! ```
//!
//! The namespace and veth guards, raw sockets and frame builders live in
//! `fastpath-harness` (shared with the lab) and are re-exported here, so a
//! test imports everything from this crate. This crate adds what only tests
//! need: [`require!`], [`TempDir`] and the frame comparison helpers.
//!
//! What it does not do: no IP configuration, routing or traffic generation
//! at rate (that is `fastpath-lab`). Everything privileged is done with the
//! `ip` tool from iproute2 plus plain syscalls, and needs root
//! (CAP_SYS_ADMIN for `setns`, CAP_NET_ADMIN/CAP_NET_RAW for the rest).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod compare;
mod require;
mod tempdir;

pub use compare::{assert_frames_eq, diff_frames};
pub use fastpath_harness::frame::{
    frame_seq, udp_frame, udp_frames, vlan_frame, DST_IP, DST_MAC, DST_PORT, MAGIC, MIN_LEN,
    SRC_IP, SRC_MAC,
};
pub use fastpath_harness::netns::NetNs;
pub use fastpath_harness::packet::{ifindex, RawReceiver, RawSender, RecvStats};
pub use fastpath_harness::process::is_root;
pub use fastpath_harness::veth::{Veth, VethOptions};
#[doc(hidden)]
pub use require::__require_failed;
pub use require::{have_cmd, REQUIRE_PRIV_ENV};
pub use tempdir::TempDir;
