//! BPF maps: [`Map`], any map fastpath creates, with key and value lengths checked against the
//! sizes it was created with; and [`XskMap`], the RX-queue-to-AF_XDP-socket map the redirect
//! program reads.
//!
//! The `bpf(2)` map commands are in `sys/bpf.rs`; the element commands there are `unsafe`
//! because the kernel reads and writes as many bytes as the map's sizes say, whatever the
//! slices passed: [`Map`] is what vouches for the lengths.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::sys::bpf as sys;
use crate::{Error, Result};

/// Kinds of BPF map fastpath creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`.
    Hash,
    /// `BPF_MAP_TYPE_ARRAY`: keys are `u32` indices, every entry exists (zeroed).
    Array,
    /// `BPF_MAP_TYPE_XSKMAP`: `u32` queue index to AF_XDP socket fd; see [`XskMap`].
    XskMap,
}

impl MapType {
    fn raw(self) -> u32 {
        match self {
            MapType::Hash => sys::BPF_MAP_TYPE_HASH,
            MapType::Array => sys::BPF_MAP_TYPE_ARRAY,
            MapType::XskMap => sys::BPF_MAP_TYPE_XSKMAP,
        }
    }
}

/// A BPF map. Dropping it closes our fd; the map lives on while a loaded program uses it.
///
/// Key and value lengths are checked against the sizes given at creation, so the kernel never
/// reads or writes past a caller's buffer.
// Implementation: this file; the syscalls in `sys/bpf.rs`.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
}

impl Map {
    /// `bpf(BPF_MAP_CREATE)`—Creates a map.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad `name`; [`Error::NotPermitted`] without `CAP_BPF`;
    /// [`Error::Syscall`] otherwise (`EINVAL` for sizes the map type does not accept).
    pub fn create(
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        name: &str,
    ) -> Result<Map> {
        let fd = sys::map_create(map_type.raw(), key_size, value_size, max_entries, name)?;
        Ok(Map {
            fd,
            map_type,
            key_size,
            value_size,
            max_entries,
        })
    }

    /// The map type.
    pub fn map_type(&self) -> MapType {
        self.map_type
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    /// Value size in bytes.
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// Capacity.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    fn check_len(&self, field: &'static str, len: usize, want: u32) -> Result<()> {
        if len == want as usize {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                field,
                why: format!("{len} bytes given, the map was created with {want}"),
            })
        }
    }

    /// `bpf(BPF_MAP_UPDATE_ELEM, BPF_ANY)`—Creates or replaces the entry for `key`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if a length differs from the map's; [`Error::Syscall`] with the
    /// kernel's errno (e.g. `E2BIG` for an array index out of range, `EOPNOTSUPP` when an XSKMAP
    /// value is not a bound AF_XDP socket).
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_len("map key", key.len(), self.key_size)?;
        self.check_len("map value", value.len(), self.value_size)?;
        // SAFETY: `self.fd` is the map created with `key_size` and `value_size`, and the slices
        // have exactly those lengths (checked above).
        unsafe { sys::map_update_elem(self.fd.as_fd(), key, value) }
    }

    /// `bpf(BPF_MAP_LOOKUP_ELEM)`—Copies the value for `key` into `value`; `false` if absent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if a length differs from the map's; [`Error::Syscall`] otherwise
    /// (XSKMAP answers `EOPNOTSUPP`: its values cannot be read back).
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<bool> {
        self.check_len("map key", key.len(), self.key_size)?;
        self.check_len("map value", value.len(), self.value_size)?;
        // SAFETY: `self.fd` is the map created with `key_size` and `value_size`, and the slices
        // have exactly those lengths (checked above).
        unsafe { sys::map_lookup_elem(self.fd.as_fd(), key, value) }
    }

    /// `bpf(BPF_MAP_DELETE_ELEM)`—Removes the entry for `key`; `false` if it was absent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the key length differs from the map's; [`Error::Syscall`]
    /// otherwise (`EINVAL` on array maps, whose entries cannot be deleted).
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.check_len("map key", key.len(), self.key_size)?;
        // SAFETY: `self.fd` is the map created with `key_size`, and `key` has exactly that
        // length (checked above).
        unsafe { sys::map_delete_elem(self.fd.as_fd(), key) }
    }
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `BPF_MAP_TYPE_XSKMAP`: RX queue index to AF_XDP socket, read by the redirect program.
// Implementation: this file; the map itself is a [`Map`].
#[derive(Debug)]
pub struct XskMap {
    map: Map,
}

impl XskMap {
    /// Creates an XSKMAP with one slot per RX queue index below `max_entries`.
    ///
    /// # Errors
    /// [`Error::NotPermitted`] without `CAP_BPF`/`CAP_NET_ADMIN`; [`Error::Syscall`] otherwise.
    pub fn new(max_entries: u32) -> Result<XskMap> {
        Ok(XskMap {
            map: Map::create(MapType::XskMap, 4, 4, max_entries, "fastpath_xsks")?,
        })
    }

    fn check_queue(&self, queue: u32) -> Result<()> {
        if queue < self.map.max_entries() {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                field: "queue",
                why: format!(
                    "queue {queue} is outside the XSKMAP (max_entries {})",
                    self.map.max_entries()
                ),
            })
        }
    }

    /// Sends frames of RX queue `queue` to the AF_XDP socket `xsk` (which must be bound to that
    /// queue, with an RX ring).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `queue` is out of range; [`Error::Syscall`] with `EOPNOTSUPP`
    /// if `xsk` is not a bound AF_XDP socket.
    pub fn set(&self, queue: u32, xsk: BorrowedFd<'_>) -> Result<()> {
        self.check_queue(queue)?;
        let fd = xsk.as_raw_fd() as u32;
        self.map.update(&queue.to_ne_bytes(), &fd.to_ne_bytes())
    }

    /// Empties slot `queue`: its frames go to the kernel stack again. Emptying an empty slot is
    /// not an error.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `queue` is out of range; [`Error::Syscall`] otherwise.
    pub fn remove(&self, queue: u32) -> Result<()> {
        self.check_queue(queue)?;
        self.map.delete(&queue.to_ne_bytes()).map(drop)
    }

    /// Number of slots.
    pub fn max_entries(&self) -> u32 {
        self.map.max_entries()
    }
}

impl AsFd for XskMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.map.as_fd()
    }
}
