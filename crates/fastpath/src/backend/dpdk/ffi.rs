//! Hand-written declarations of the DPDK functions fastpath calls, and of the shim
//! (`csrc/dpdk_shim.c`, prefix `fp_`) that turns DPDK's static-inline fast path into real
//! symbols. Only what is used is declared; struct mirrors keep DPDK's names and are size-checked
//! against `sizeof` exported by the shim (see the tests below).
//!
//! Every function here is `unsafe` to call: the safety contract is DPDK's (valid port and queue
//! ids, EAL initialised, pointers to as many elements as the count says).
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_uint};

/// `struct rte_mbuf`: opaque here; fastpath only passes pointers back to DPDK.
#[repr(C)]
pub(crate) struct rte_mbuf {
    _opaque: [u8; 0],
}

/// `struct rte_mempool`: opaque.
#[repr(C)]
pub(crate) struct rte_mempool {
    _opaque: [u8; 0],
}

/// `RTE_ETHDEV_QUEUE_STAT_CNTRS` of the Debian build (`rte_config.h`).
pub(crate) const RTE_ETHDEV_QUEUE_STAT_CNTRS: usize = 16;

/// `LCORE_ID_ANY`: the lcore id of a thread the EAL does not know.
pub(crate) const LCORE_ID_ANY: c_uint = u32::MAX;

/// `SOCKET_ID_ANY`.
pub(crate) const SOCKET_ID_ANY: c_int = -1;

/// `RTE_MBUF_DEFAULT_BUF_SIZE`: 2048 bytes of data room plus `RTE_PKTMBUF_HEADROOM` (128).
pub(crate) const RTE_MBUF_DEFAULT_BUF_SIZE: u16 = 2048 + 128;

/// `struct rte_eth_stats` (`rte_ethdev.h`), the port counters.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct rte_eth_stats {
    pub(crate) ipackets: u64,
    pub(crate) opackets: u64,
    pub(crate) ibytes: u64,
    pub(crate) obytes: u64,
    pub(crate) imissed: u64,
    pub(crate) ierrors: u64,
    pub(crate) oerrors: u64,
    pub(crate) rx_nombuf: u64,
    pub(crate) q_ipackets: [u64; RTE_ETHDEV_QUEUE_STAT_CNTRS],
    pub(crate) q_opackets: [u64; RTE_ETHDEV_QUEUE_STAT_CNTRS],
    pub(crate) q_ibytes: [u64; RTE_ETHDEV_QUEUE_STAT_CNTRS],
    pub(crate) q_obytes: [u64; RTE_ETHDEV_QUEUE_STAT_CNTRS],
    pub(crate) q_errors: [u64; RTE_ETHDEV_QUEUE_STAT_CNTRS],
}

/// `struct rte_ether_addr` (`rte_ether.h`): a MAC address, 2-byte aligned.
#[repr(C, align(2))]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct rte_ether_addr {
    pub(crate) addr_bytes: [u8; 6],
}

/// `struct fp_pkt` (the shim): one received packet's first segment and total length.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct fp_pkt {
    pub(crate) data: *const u8,
    pub(crate) data_len: u32,
    pub(crate) pkt_len: u32,
}

impl Default for fp_pkt {
    fn default() -> Self {
        fp_pkt {
            data: std::ptr::null(),
            data_len: 0,
            pkt_len: 0,
        }
    }
}

extern "C" {
    // --- the shim (csrc/dpdk_shim.c) ---
    pub(crate) fn fp_errno() -> c_int;
    pub(crate) fn fp_sizeof_rte_eth_stats() -> usize;
    pub(crate) fn fp_sizeof_fp_pkt() -> usize;
    pub(crate) fn fp_lcore_id() -> c_uint;
    pub(crate) fn fp_rx_burst(
        port: u16,
        queue: u16,
        mbufs: *mut *mut rte_mbuf,
        pkts: *mut fp_pkt,
        n: u16,
    ) -> u16;
    pub(crate) fn fp_free_bulk(mbufs: *mut *mut rte_mbuf, n: c_uint);
    pub(crate) fn fp_tx_copy(
        port: u16,
        queue: u16,
        pool: *mut rte_mempool,
        frames: *const *const u8,
        lens: *const u32,
        n: u16,
    ) -> c_int;
    pub(crate) fn fp_port_start(
        port: u16,
        nb_q: u16,
        rx_desc: u16,
        tx_desc: u16,
        pool: *mut rte_mempool,
        promisc: c_int,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
    pub(crate) fn fp_driver_name(port: u16, buf: *mut c_char, len: usize) -> c_int;
    pub(crate) fn fp_port_release(port: u16, detach: c_int) -> c_int;

    // --- DPDK proper (librte_eal, librte_ethdev, librte_mbuf, librte_mempool) ---
    pub(crate) fn rte_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
    pub(crate) fn rte_strerror(errnum: c_int) -> *const c_char;
    pub(crate) fn rte_dev_probe(devargs: *const c_char) -> c_int;
    pub(crate) fn rte_thread_register() -> c_int;
    pub(crate) fn rte_thread_unregister();
    pub(crate) fn rte_eth_dev_get_port_by_name(name: *const c_char, port_id: *mut u16) -> c_int;
    pub(crate) fn rte_eth_dev_is_valid_port(port_id: u16) -> c_int;
    pub(crate) fn rte_eth_dev_is_removed(port_id: u16) -> c_int;
    pub(crate) fn rte_eth_dev_socket_id(port_id: u16) -> c_int;
    pub(crate) fn rte_eth_stats_get(port_id: u16, stats: *mut rte_eth_stats) -> c_int;
    pub(crate) fn rte_eth_macaddr_get(port_id: u16, mac_addr: *mut rte_ether_addr) -> c_int;
    pub(crate) fn rte_pktmbuf_pool_create(
        name: *const c_char,
        n: c_uint,
        cache_size: c_uint,
        priv_size: u16,
        data_room_size: u16,
        socket_id: c_int,
    ) -> *mut rte_mempool;
    pub(crate) fn rte_mempool_free(mp: *mut rte_mempool);
}

/// `rte_strerror(errnum)` as an owned string (DPDK's own codes and plain errnos).
pub(crate) fn strerror(errnum: c_int) -> String {
    // SAFETY: rte_strerror accepts any int and returns a pointer to a NUL-terminated string in
    // static or per-lcore storage, valid until the next call on this thread; we copy it at once.
    let p = unsafe { rte_strerror(errnum.abs()) };
    if p.is_null() {
        return format!("error {errnum}");
    }
    // SAFETY: `p` is non-null and NUL-terminated (rte_strerror's contract), read before any other
    // DPDK call on this thread.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// The calling thread's `rte_errno`.
pub(crate) fn errno() -> c_int {
    // SAFETY: reads a thread-local int; no arguments.
    unsafe { fp_errno() }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn mirrors_have_the_c_sizes() {
        // SAFETY: the size functions take nothing and return a constant; no EAL needed.
        let stats = unsafe { fp_sizeof_rte_eth_stats() };
        assert_eq!(std::mem::size_of::<rte_eth_stats>(), stats);
        // SAFETY: as above.
        let pkt = unsafe { fp_sizeof_fp_pkt() };
        assert_eq!(std::mem::size_of::<fp_pkt>(), pkt);
    }

    #[test]
    fn strerror_works_without_eal() {
        assert!(!strerror(libc::ENODEV).is_empty());
    }
}
