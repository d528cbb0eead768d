//! Bounds shared by every layer. A leaf module: the filter compiler, the pcap encoder and the
//! configuration all read these, so they live below all of them.

/// Largest snapshot length accepted (the same bound as tcpdump's `MAXIMUM_SNAPLEN`).
pub const MAX_SNAPLEN: u32 = 262_144;
