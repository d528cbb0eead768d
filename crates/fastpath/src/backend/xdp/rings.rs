//! The four rings of an AF_XDP socket: sized with `setsockopt`, located with
//! `XDP_MMAP_OFFSETS`, mapped, and wrapped in the views of `ring/xsk.rs`.
#![allow(unsafe_code)]

use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use crate::config::XdpConfig;
use crate::ring::xsk::{RingCons, RingLayout, RingProd};
use crate::sys::xdp::{self as x, xdp_desc, xdp_mmap_offsets, xdp_ring_offset};
use crate::sys::{self, Mmap};
use crate::{Error, Result};

pub(super) type FillRing = RingProd<u64, Mmap>;
pub(super) type CompRing = RingCons<u64, Mmap>;
pub(super) type RxRing = RingCons<xdp_desc, Mmap>;
pub(super) type TxRing = RingProd<xdp_desc, Mmap>;

/// A socket's rings, mapped over their own mappings.
#[derive(Debug)]
pub(super) struct Rings {
    pub(super) fill: FillRing,
    pub(super) comp: CompRing,
    pub(super) rx: RxRing,
    /// `None` when the config asks for no TX ring (`tx_size` 0).
    pub(super) tx: Option<TxRing>,
}

impl Rings {
    /// Sizes the rings (the TX ring only if `cfg.tx_size` is not 0) of the socket `fd` as `cfg` says, then maps them.
    pub(super) fn create(fd: &OwnedFd, cfg: &XdpConfig) -> Result<Rings> {
        set_ring_size(
            fd,
            x::XDP_UMEM_FILL_RING,
            cfg.fill_size,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        set_ring_size(
            fd,
            x::XDP_UMEM_COMPLETION_RING,
            cfg.comp_size,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        set_ring_size(fd, x::XDP_RX_RING, cfg.rx_size, "setsockopt(XDP_RX_RING)")?;
        if cfg.tx_size > 0 {
            set_ring_size(fd, x::XDP_TX_RING, cfg.tx_size, "setsockopt(XDP_TX_RING)")?;
        }
        let off: xdp_mmap_offsets = sys::getsockopt(
            fd,
            x::SOL_XDP,
            x::XDP_MMAP_OFFSETS,
            "getsockopt(XDP_MMAP_OFFSETS)",
        )?;

        let fill: FillRing = prod_ring(
            fd,
            &off.fr,
            cfg.fill_size,
            x::XDP_UMEM_PGOFF_FILL_RING,
            "fill ring",
        )?;
        let comp: CompRing = cons_ring(
            fd,
            &off.cr,
            cfg.comp_size,
            x::XDP_UMEM_PGOFF_COMPLETION_RING,
            "completion ring",
        )?;
        let rx: RxRing = cons_ring(fd, &off.rx, cfg.rx_size, x::XDP_PGOFF_RX_RING, "rx ring")?;
        let tx = if cfg.tx_size > 0 {
            Some(prod_ring(
                fd,
                &off.tx,
                cfg.tx_size,
                x::XDP_PGOFF_TX_RING,
                "tx ring",
            )?)
        } else {
            None
        };
        Ok(Rings { fill, comp, rx, tx })
    }
}

/// Maps one ring of `size` entries of `T` at `pgoff`.
fn map_ring<T>(
    fd: &OwnedFd,
    off: &xdp_ring_offset,
    size: u32,
    pgoff: i64,
    what: &'static str,
) -> Result<(Mmap, RingLayout)> {
    let layout =
        RingLayout::from_offsets(off).ok_or_else(|| bad_layout(what, "offset overflow"))?;
    let len = layout
        .map_len::<T>(size)
        .ok_or_else(|| bad_layout(what, "ring size overflow"))?;
    let map = Mmap::shared(fd, len, pgoff, what)?;
    Ok((map, layout))
}

fn bad_layout(what: &'static str, why: &'static str) -> Error {
    Error::Unsupported {
        backend: "xdp",
        why: format!("the kernel reported an unusable {what} layout: {why}"),
        fix: "report this kernel version to fastpath",
    }
}

/// Maps a producer ring ([`map_ring`]) and wraps it over its own mapping.
fn prod_ring<T: Copy>(
    fd: &OwnedFd,
    off: &xdp_ring_offset,
    size: u32,
    pgoff: i64,
    what: &'static str,
) -> Result<RingProd<T, Mmap>> {
    let (map, layout) = map_ring::<T>(fd, off, size, pgoff, what)?;
    let base = NonNull::new(map.as_ptr()).expect("a mapping is never at NULL");
    let len = map.len();
    // SAFETY: `map` is the kernel's mapping of this ring (mmapped at its page offset with the
    // length its layout needs) and moves into the view, so it outlives it; Rust never creates a
    // reference over it except to the atomic index words; this is the only producer view.
    unsafe { RingProd::new(map, base, len, layout, size) }.map_err(|e| bad_layout(what, e.0))
}

/// Maps a consumer ring ([`map_ring`]) and wraps it over its own mapping.
fn cons_ring<T: Copy>(
    fd: &OwnedFd,
    off: &xdp_ring_offset,
    size: u32,
    pgoff: i64,
    what: &'static str,
) -> Result<RingCons<T, Mmap>> {
    let (map, layout) = map_ring::<T>(fd, off, size, pgoff, what)?;
    let base = NonNull::new(map.as_ptr()).expect("a mapping is never at NULL");
    let len = map.len();
    // SAFETY: as in `prod_ring`, for the only consumer view of this ring.
    unsafe { RingCons::new(map, base, len, layout, size) }.map_err(|e| bad_layout(what, e.0))
}

fn set_ring_size(fd: &OwnedFd, opt: libc::c_int, size: u32, call: &'static str) -> Result<()> {
    sys::setsockopt(fd, x::SOL_XDP, opt, &(size as libc::c_int), call).map_err(|e| {
        match e.raw_os_error() {
            Some(libc::ENOMEM) => Error::OutOfMemory {
                what: call,
                asked: u64::from(size),
                why: "the kernel could not allocate the ring; use a smaller size".into(),
            },
            _ => e,
        }
    })
}
