//! Views over memory shared with the kernel: index math and ownership hand-off, no policy.
//!
//! Each view is owned together with its mapping ([`crate::sys::Mmap`]) so it cannot outlive it,
//! never creates a Rust reference over bytes the kernel may be writing, and documents why every
//! atomic's ordering suffices.

pub(crate) mod tpacket;
pub(crate) mod xsk;
