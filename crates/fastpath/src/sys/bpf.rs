//! `bpf(2)`: `struct bpf_insn`, the attribute structs of the commands fastpath uses, and thin
//! wrappers, one per command, that own the returned file descriptors. What to load, attach or
//! detach, and when, is decided in `crate::bpf`.
//!
//! Guarantees: every pointer this module hands to the kernel points into a live Rust slice or
//! struct whose length is passed alongside it (or, for map keys and values, whose length the
//! caller of the `unsafe` map element wrappers vouches for: `crate::bpf::Map` checks it against
//! the sizes the map was created with). All attr structs are `#[repr(C)]` with
//! explicit padding fields, so no uninitialised byte ever reaches the kernel (which rejects
//! non-zero bytes past the fields it knows with `EINVAL`).
//!
//! Struct and field names mirror `include/uapi/linux/bpf.h`; the anonymous members of
//! `union bpf_attr` are named after the command that uses them.
//!
//! # References
//! - <https://man7.org/linux/man-pages/man2/bpf.2.html>
//! - <https://docs.kernel.org/userspace-api/ebpf/syscall.html>
#![allow(non_camel_case_types)]

use std::ffi::c_long;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{Error, Result};

// `enum bpf_cmd`.
pub(crate) const BPF_MAP_CREATE: u32 = 0;
pub(crate) const BPF_MAP_LOOKUP_ELEM: u32 = 1;
pub(crate) const BPF_MAP_UPDATE_ELEM: u32 = 2;
pub(crate) const BPF_MAP_DELETE_ELEM: u32 = 3;
pub(crate) const BPF_PROG_LOAD: u32 = 5;
pub(crate) const BPF_PROG_TEST_RUN: u32 = 10;
pub(crate) const BPF_PROG_GET_FD_BY_ID: u32 = 13;
pub(crate) const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
pub(crate) const BPF_LINK_CREATE: u32 = 28;
pub(crate) const BPF_LINK_GET_FD_BY_ID: u32 = 30;
pub(crate) const BPF_LINK_GET_NEXT_ID: u32 = 31;
pub(crate) const BPF_LINK_DETACH: u32 = 34;

// `enum bpf_map_type`.
pub(crate) const BPF_MAP_TYPE_HASH: u32 = 1;
pub(crate) const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub(crate) const BPF_MAP_TYPE_XSKMAP: u32 = 17;

// `enum bpf_prog_type`.
pub(crate) const BPF_PROG_TYPE_XDP: u32 = 6;
pub(crate) const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;

// `enum bpf_attach_type`.
pub(crate) const BPF_XDP: u32 = 37;
/// tcx egress hook (Linux 6.6+).
pub(crate) const BPF_TCX_EGRESS: u32 = 47;

/// `BPF_F_XDP_DEV_BOUND_ONLY` (`prog_flags`): the program may call the device's XDP metadata
/// kfuncs and attaches to `prog_ifindex` only (Linux 6.3+).
pub(crate) const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;

// `enum bpf_link_type`.
pub(crate) const BPF_LINK_TYPE_XDP: u32 = 6;

/// `BPF_F_TEST_XDP_LIVE_FRAMES`: `BPF_PROG_TEST_RUN` really transmits/redirects the frames.
pub(crate) const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// `BPF_OBJ_NAME_LEN`: object names are at most 15 bytes plus the NUL.
pub(crate) const BPF_OBJ_NAME_LEN: usize = 16;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn` (`<linux/bpf.h>`): the 8
/// bytes `BPF_PROG_LOAD` reads.
///
/// `regs` packs the C bitfields `dst_reg:4, src_reg:4`; on little-endian hosts the destination is
/// the low nibble. A 64-bit immediate load occupies two consecutive instructions.
///
/// The assembler works on this very type (it is `fastpath::unstable::bpf::insn::Insn`, with its
/// constructors), so programs are loaded as they are, without a copy.
// Implementation of the constructors: `bpf/insn.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct bpf_insn {
    /// Opcode: class | size/op | mode/source.
    pub code: u8,
    /// Destination register (low nibble on little-endian) and source register (high nibble).
    pub regs: u8,
    /// Signed offset: memory displacement or jump distance in instructions.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

/// `BPF_MAP_CREATE` member of `union bpf_attr` (up to `map_ifindex`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfAttrMapCreate {
    pub(crate) map_type: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) map_flags: u32,
    pub(crate) inner_map_fd: u32,
    pub(crate) numa_node: u32,
    pub(crate) map_name: [u8; BPF_OBJ_NAME_LEN],
    pub(crate) map_ifindex: u32,
}

/// `BPF_MAP_*_ELEM` member of `union bpf_attr`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfAttrMapElem {
    pub(crate) map_fd: u32,
    pub(crate) _pad0: u32,
    pub(crate) key: u64,
    /// `value` (or `next_key`).
    pub(crate) value: u64,
    pub(crate) flags: u64,
}

/// `BPF_PROG_LOAD` member of `union bpf_attr` (up to `log_true_size`, Linux 6.4; older kernels
/// accept the longer struct because the extra fields are zero).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfAttrProgLoad {
    pub(crate) prog_type: u32,
    pub(crate) insn_cnt: u32,
    pub(crate) insns: u64,
    pub(crate) license: u64,
    pub(crate) log_level: u32,
    pub(crate) log_size: u32,
    pub(crate) log_buf: u64,
    pub(crate) kern_version: u32,
    pub(crate) prog_flags: u32,
    pub(crate) prog_name: [u8; BPF_OBJ_NAME_LEN],
    pub(crate) prog_ifindex: u32,
    pub(crate) expected_attach_type: u32,
    pub(crate) prog_btf_fd: u32,
    pub(crate) func_info_rec_size: u32,
    pub(crate) func_info: u64,
    pub(crate) func_info_cnt: u32,
    pub(crate) line_info_rec_size: u32,
    pub(crate) line_info: u64,
    pub(crate) line_info_cnt: u32,
    pub(crate) attach_btf_id: u32,
    /// `attach_prog_fd` (or `attach_btf_obj_fd`).
    pub(crate) attach_prog_fd: u32,
    pub(crate) core_relo_cnt: u32,
    pub(crate) fd_array: u64,
    pub(crate) core_relos: u64,
    pub(crate) core_relo_rec_size: u32,
    pub(crate) log_true_size: u32,
}

/// `BPF_PROG_TEST_RUN` member of `union bpf_attr` (`test`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfAttrTestRun {
    pub(crate) prog_fd: u32,
    pub(crate) retval: u32,
    pub(crate) data_size_in: u32,
    pub(crate) data_size_out: u32,
    pub(crate) data_in: u64,
    pub(crate) data_out: u64,
    pub(crate) repeat: u32,
    pub(crate) duration: u32,
    pub(crate) ctx_size_in: u32,
    pub(crate) ctx_size_out: u32,
    pub(crate) ctx_in: u64,
    pub(crate) ctx_out: u64,
    pub(crate) flags: u32,
    pub(crate) cpu: u32,
    pub(crate) batch_size: u32,
    pub(crate) _pad0: u32,
}

/// `BPF_LINK_CREATE` member of `union bpf_attr`: the common head; XDP uses no more of it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfAttrLinkCreate {
    /// `prog_fd` (or `map_fd`).
    pub(crate) prog_fd: u32,
    /// `target_ifindex` (or `target_fd`).
    pub(crate) target_ifindex: u32,
    pub(crate) attach_type: u32,
    pub(crate) flags: u32,
}

/// `BPF_LINK_DETACH` member of `union bpf_attr`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfAttrLinkDetach {
    pub(crate) link_fd: u32,
}

/// `BPF_OBJ_GET_INFO_BY_FD` member of `union bpf_attr` (`info`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfAttrInfo {
    pub(crate) bpf_fd: u32,
    pub(crate) info_len: u32,
    pub(crate) info: u64,
}

/// `BPF_*_GET_NEXT_ID` / `BPF_*_GET_FD_BY_ID` member of `union bpf_attr`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfAttrGetId {
    /// `start_id` (or `prog_id`, `map_id`, `link_id`).
    pub(crate) start_id: u32,
    pub(crate) next_id: u32,
    pub(crate) open_flags: u32,
}

/// `struct xdp_md`: the XDP context as user space passes it to `BPF_PROG_TEST_RUN` (`ctx_in`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XdpMd {
    pub(crate) data: u32,
    pub(crate) data_end: u32,
    pub(crate) data_meta: u32,
    pub(crate) ingress_ifindex: u32,
    pub(crate) rx_queue_index: u32,
    pub(crate) egress_ifindex: u32,
}

/// `struct bpf_prog_info`, up to `netns_ino` (the kernel fills `min(info_len, its size)` bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfProgInfo {
    pub(crate) r#type: u32,
    pub(crate) id: u32,
    pub(crate) tag: [u8; 8],
    pub(crate) jited_prog_len: u32,
    pub(crate) xlated_prog_len: u32,
    pub(crate) jited_prog_insns: u64,
    pub(crate) xlated_prog_insns: u64,
    pub(crate) load_time: u64,
    pub(crate) created_by_uid: u32,
    pub(crate) nr_map_ids: u32,
    pub(crate) map_ids: u64,
    pub(crate) name: [u8; BPF_OBJ_NAME_LEN],
    pub(crate) ifindex: u32,
    /// `gpl_compatible:1` and 31 bits of padding.
    pub(crate) gpl_compatible: u32,
    pub(crate) netns_dev: u64,
    pub(crate) netns_ino: u64,
}

/// `struct bpf_link_info`, head plus the `xdp` member of its union.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BpfLinkInfo {
    pub(crate) r#type: u32,
    pub(crate) id: u32,
    pub(crate) prog_id: u32,
    pub(crate) _pad0: u32,
    /// `xdp.ifindex`.
    pub(crate) xdp_ifindex: u32,
    pub(crate) _pad1: u32,
}

/// Marker for the `union bpf_attr` members above: plain integers, no implicit padding.
///
/// # Safety
/// Implementors must be `#[repr(C)]` mirrors of a `union bpf_attr` member with every byte
/// covered by a field (no implicit padding), and contain no references.
unsafe trait BpfAttr: Sized {}
// SAFETY: each is #[repr(C)], made only of u32/u64/u8-array fields laid out without gaps
// (checked by `attr_sizes` below).
unsafe impl BpfAttr for BpfAttrMapCreate {}
// SAFETY: as above.
unsafe impl BpfAttr for BpfAttrMapElem {}
// SAFETY: as above.
unsafe impl BpfAttr for BpfAttrProgLoad {}
// SAFETY: as above.
unsafe impl BpfAttr for BpfAttrTestRun {}
// SAFETY: as above.
unsafe impl BpfAttr for BpfAttrLinkCreate {}
// SAFETY: as above.
unsafe impl BpfAttr for BpfAttrLinkDetach {}
// SAFETY: as above.
unsafe impl BpfAttr for BpfAttrInfo {}
// SAFETY: as above.
unsafe impl BpfAttr for BpfAttrGetId {}

/// `bpf(cmd, attr, sizeof(*attr))`: performs one BPF command, returning its non-negative result
/// (a new fd for the commands that create one).
///
/// # Safety
/// Every non-zero pointer field of `attr` must point to memory that stays valid for the whole
/// call and is at least as long as the kernel will access for `cmd`: readable for inputs,
/// writable for outputs (lengths given in the same struct, or the map's key/value size).
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/bpf.2.html>
unsafe fn sys_bpf<A: BpfAttr>(cmd: u32, attr: &mut A) -> io::Result<c_long> {
    let size = size_of::<A>() as libc::c_uint;
    let ptr: *mut A = attr;
    // SAFETY: `ptr` is a live, exclusive, fully initialised `A` (BpfAttr: no padding) of `size`
    // bytes, and the kernel writes back at most `size` bytes into it. The pointers inside are
    // valid per this function's contract.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_int, ptr, size) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Turn the fd number `bpf()` returned into an owner.
fn owned_fd(ret: c_long) -> OwnedFd {
    // bpf() only returns fds for fd-creating commands; fds fit in c_int.
    let raw = ret as libc::c_int;
    // SAFETY: the kernel just installed `raw` in our fd table for us and nothing else refers to
    // it, so we are its sole owner.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Map an errno from `call` to an [`Error`], naming the capability on `EPERM`.
pub(crate) fn bpf_error(call: &'static str, needs: &'static str, e: io::Error) -> Error {
    if e.raw_os_error() == Some(libc::EPERM) {
        Error::NotPermitted { call, needs }
    } else {
        Error::Syscall { call, source: e }
    }
}

const NEEDS_BPF: &str = "CAP_BPF and CAP_NET_ADMIN";
const NEEDS_SYS_ADMIN: &str = "CAP_SYS_ADMIN";

/// Copy a BPF object name (at most 15 bytes of `[A-Za-z0-9_.]`) into its fixed-size field.
pub(crate) fn obj_name(field: &'static str, name: &str) -> Result<[u8; BPF_OBJ_NAME_LEN]> {
    let ok = name.len() < BPF_OBJ_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if !ok {
        return Err(Error::InvalidConfig {
            field,
            why: format!("`{name}`: bpf object names are at most 15 characters of [A-Za-z0-9_.]"),
        });
    }
    let mut out = [0u8; BPF_OBJ_NAME_LEN];
    out[..name.len()].copy_from_slice(name.as_bytes());
    Ok(out)
}

/// The C string in `bytes` (a name field, a log buffer, a netlink string attribute): up to the
/// first NUL, or all of it without one; invalid UTF-8 replaced.
pub(crate) fn lossy_until_nul(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `bpf(BPF_MAP_CREATE)`—Creates a map of `map_type` (`BPF_MAP_TYPE_*`) called `name`.
///
/// # Errors
/// [`Error::InvalidConfig`] for a bad `name`; [`Error::NotPermitted`] without `CAP_BPF`;
/// [`Error::Syscall`] otherwise (`EINVAL` for sizes the map type does not accept).
pub(crate) fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: &str,
) -> Result<OwnedFd> {
    let mut attr = BpfAttrMapCreate {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_name: obj_name("map name", name)?,
        ..BpfAttrMapCreate::default()
    };
    // SAFETY: BPF_MAP_CREATE reads only the struct itself; it has no pointer fields.
    let ret = unsafe { sys_bpf(BPF_MAP_CREATE, &mut attr) }
        .map_err(|e| bpf_error("bpf(BPF_MAP_CREATE)", NEEDS_BPF, e))?;
    Ok(owned_fd(ret))
}

/// `bpf(BPF_MAP_UPDATE_ELEM, BPF_ANY)`—Creates or replaces the entry for `key`.
///
/// # Safety
/// `map` is a map whose key size is `key.len()` and whose value size is `value.len()`: the
/// kernel reads that many bytes at each pointer, whatever the slices' lengths.
///
/// # Errors
/// [`Error::Syscall`] with the kernel's errno.
pub(crate) unsafe fn map_update_elem(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> Result<()> {
    let mut attr = BpfAttrMapElem {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: 0, // BPF_ANY
        ..BpfAttrMapElem::default()
    };
    // SAFETY: the kernel reads key_size bytes at `key` and value_size bytes at `value`; both
    // slices have exactly those lengths (this function's contract) and outlive the call.
    unsafe { sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }
        .map_err(|e| bpf_error("bpf(BPF_MAP_UPDATE_ELEM)", NEEDS_BPF, e))?;
    Ok(())
}

/// `bpf(BPF_MAP_LOOKUP_ELEM)`—Copies the value for `key` into `value`; `false` if absent.
///
/// # Safety
/// As [`map_update_elem`]: the map's key and value sizes are `key.len()` and `value.len()`.
///
/// # Errors
/// [`Error::Syscall`] with the kernel's errno other than `ENOENT`.
pub(crate) unsafe fn map_lookup_elem(
    map: BorrowedFd<'_>,
    key: &[u8],
    value: &mut [u8],
) -> Result<bool> {
    let mut attr = BpfAttrMapElem {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..BpfAttrMapElem::default()
    };
    // SAFETY: the kernel reads key_size bytes at `key` and writes value_size bytes at
    // `value`; the slices have exactly those lengths (this function's contract), `value` is
    // exclusively borrowed.
    match unsafe { sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) } {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(bpf_error("bpf(BPF_MAP_LOOKUP_ELEM)", NEEDS_BPF, e)),
    }
}

/// `bpf(BPF_MAP_DELETE_ELEM)`—Removes the entry for `key`; `false` if it was absent.
///
/// # Safety
/// The map's key size is `key.len()`.
///
/// # Errors
/// [`Error::Syscall`] with the kernel's errno other than `ENOENT`.
pub(crate) unsafe fn map_delete_elem(map: BorrowedFd<'_>, key: &[u8]) -> Result<bool> {
    let mut attr = BpfAttrMapElem {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        ..BpfAttrMapElem::default()
    };
    // SAFETY: the kernel reads key_size bytes at `key`, which has exactly that length (this
    // function's contract).
    match unsafe { sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr) } {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(bpf_error("bpf(BPF_MAP_DELETE_ELEM)", NEEDS_BPF, e)),
    }
}

const LICENSE: &[u8] = b"GPL\0";
/// First verifier-log buffer; doubled on `ENOSPC` up to [`LOG_MAX`].
const LOG_START: usize = 64 * 1024;
/// The kernel caps `log_size` at `UINT_MAX >> 2`; 16 MiB is plenty for our programs.
const LOG_MAX: usize = 16 * 1024 * 1024;

/// What kind of program [`prog_load`] loads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadSpec {
    pub(crate) prog_type: u32,
    pub(crate) expected_attach_type: u32,
    pub(crate) prog_flags: u32,
    /// Device the program is bound to (with [`BPF_F_XDP_DEV_BOUND_ONLY`]), or 0.
    pub(crate) prog_ifindex: u32,
}

impl LoadSpec {
    /// An XDP program (`expected_attach_type = BPF_XDP`), not bound to a device.
    pub(crate) const XDP: LoadSpec = LoadSpec {
        prog_type: BPF_PROG_TYPE_XDP,
        expected_attach_type: BPF_XDP,
        prog_flags: 0,
        prog_ifindex: 0,
    };
}

/// `bpf(BPF_PROG_LOAD)` of any program type, license GPL.
///
/// The first attempt runs without a verifier log (fast path). If it fails, the load is retried
/// with `log_level = 1` and the verifier's log is returned inside
/// [`Error::VerifierRejected`].
pub(crate) fn prog_load(
    spec: &LoadSpec,
    name: &'static str,
    insns: &[bpf_insn],
) -> Result<OwnedFd> {
    let prog_name = obj_name("program name", name)?;
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| Error::InvalidConfig {
        field: "program",
        why: format!(
            "{} instructions is more than the kernel accepts",
            insns.len()
        ),
    })?;
    let base = BpfAttrProgLoad {
        prog_type: spec.prog_type,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name,
        expected_attach_type: spec.expected_attach_type,
        prog_flags: spec.prog_flags,
        prog_ifindex: spec.prog_ifindex,
        ..BpfAttrProgLoad::default()
    };
    let mut attr = base;
    // SAFETY: `insns` points to `insn_cnt` live `bpf_insn`s (8 bytes each, `#[repr(C)]`),
    // `license` to a NUL-terminated static string; no log buffer is given.
    let first = unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr) };
    let first_err = match first {
        Ok(fd) => return Ok(owned_fd(fd)),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            return Err(bpf_error("bpf(BPF_PROG_LOAD)", NEEDS_BPF, e))
        }
        Err(e) => e,
    };

    let mut log = vec![0u8; LOG_START];
    loop {
        let mut attr = BpfAttrProgLoad {
            log_level: 1,
            log_size: log.len() as u32, // <= LOG_MAX, fits
            log_buf: log.as_mut_ptr() as u64,
            ..base
        };
        // SAFETY: as above, plus `log_buf` points to `log_size` writable bytes of `log`, which is
        // exclusively borrowed for the call.
        let ret = unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr) };
        match ret {
            // Passed with logging on (e.g. a transient failure the first time): keep it.
            Ok(fd) => return Ok(owned_fd(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && log.len() < LOG_MAX => {
                log = vec![0u8; log.len() * 2];
            }
            Err(_) => {
                let text = lossy_until_nul(&log).trim_end().to_owned();
                if text.is_empty() {
                    // No verifier involvement (e.g. E2BIG, ENOMEM): report the first error.
                    return Err(bpf_error("bpf(BPF_PROG_LOAD)", NEEDS_BPF, first_err));
                }
                return Err(Error::VerifierRejected {
                    prog: name,
                    log: text,
                });
            }
        }
    }
}

/// Inputs of one `BPF_PROG_TEST_RUN`.
#[derive(Debug)]
pub(crate) struct TestRunArgs<'a> {
    pub(crate) data_in: &'a [u8],
    /// Output buffer; empty means "no output" (a null pointer, as live mode requires).
    pub(crate) data_out: &'a mut [u8],
    pub(crate) ctx_in: Option<&'a XdpMd>,
    pub(crate) repeat: u32,
    pub(crate) flags: u32,
    pub(crate) batch_size: u32,
}

/// What `BPF_PROG_TEST_RUN` reported.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestRunOut {
    pub(crate) retval: u32,
    pub(crate) data_size_out: u32,
    pub(crate) duration: u32,
}

/// `bpf(BPF_PROG_TEST_RUN)`—Runs `prog` on `data_in` `repeat` times.
pub(crate) fn prog_test_run(prog: BorrowedFd<'_>, args: TestRunArgs<'_>) -> Result<TestRunOut> {
    let too_big = |what: &str, len: usize| Error::InvalidConfig {
        field: "test run",
        why: format!("{what} of {len} bytes does not fit in u32"),
    };
    let data_size_in =
        u32::try_from(args.data_in.len()).map_err(|_| too_big("input", args.data_in.len()))?;
    let data_size_out =
        u32::try_from(args.data_out.len()).map_err(|_| too_big("output", args.data_out.len()))?;
    let (ctx_in, ctx_size_in) = match args.ctx_in {
        Some(ctx) => (ctx as *const XdpMd as u64, size_of::<XdpMd>() as u32),
        None => (0, 0),
    };
    let mut attr = BpfAttrTestRun {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in,
        data_size_out,
        data_in: args.data_in.as_ptr() as u64,
        // Null when empty: with data_size_out == 0 the kernel would copy the whole frame.
        data_out: if args.data_out.is_empty() {
            0
        } else {
            args.data_out.as_mut_ptr() as u64
        },
        repeat: args.repeat,
        ctx_size_in,
        ctx_in,
        flags: args.flags,
        batch_size: args.batch_size,
        ..BpfAttrTestRun::default()
    };
    // SAFETY: the kernel reads data_size_in bytes at `data_in` and ctx_size_in bytes at `ctx_in`,
    // and writes at most data_size_out bytes at `data_out` (it clamps to the size hint and
    // answers ENOSPC); each pointer comes from a live borrow of exactly that length, `data_out`
    // exclusive.
    unsafe { sys_bpf(BPF_PROG_TEST_RUN, &mut attr) }
        .map_err(|e| bpf_error("bpf(BPF_PROG_TEST_RUN)", NEEDS_BPF, e))?;
    Ok(TestRunOut {
        retval: attr.retval,
        data_size_out: attr.data_size_out,
        duration: attr.duration,
    })
}

/// `bpf(BPF_LINK_CREATE)` with `attach_type = BPF_XDP`—Attaches `prog` to `ifindex` in the
/// calling thread's network namespace. Returns the raw `io::Error` so callers can tell the errnos
/// apart.
pub(crate) fn link_create_xdp(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    link_create(prog, ifindex, BPF_XDP, flags)
}

/// `bpf(BPF_LINK_CREATE)` of `prog` at hook `attach_type` of `ifindex` (XDP or tcx: the fields
/// past `flags`, such as tcx's relative fd, are zero: the kernel reads a shorter attribute as
/// zero-extended).
pub(crate) fn link_create(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    attach_type: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    let mut attr = BpfAttrLinkCreate {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type,
        flags,
    };
    // SAFETY: BPF_LINK_CREATE for XDP and tcx reads only the struct itself; it has no pointer
    // fields.
    unsafe { sys_bpf(BPF_LINK_CREATE, &mut attr) }.map(owned_fd)
}

/// `bpf(BPF_LINK_DETACH)`—Detaches a link from its hook while fds to it stay open.
pub(crate) fn link_detach(link: BorrowedFd<'_>) -> Result<()> {
    let mut attr = BpfAttrLinkDetach {
        link_fd: link.as_raw_fd() as u32,
    };
    // SAFETY: BPF_LINK_DETACH reads only the struct itself; it has no pointer fields.
    unsafe { sys_bpf(BPF_LINK_DETACH, &mut attr) }
        .map_err(|e| bpf_error("bpf(BPF_LINK_DETACH)", NEEDS_SYS_ADMIN, e))?;
    Ok(())
}

/// `bpf(BPF_PROG_GET_FD_BY_ID)`—Opens the program with this id (needs `CAP_SYS_ADMIN`).
pub(crate) fn prog_get_fd_by_id(id: u32) -> Result<OwnedFd> {
    get_fd_by_id(BPF_PROG_GET_FD_BY_ID, "bpf(BPF_PROG_GET_FD_BY_ID)", id)
}

/// `bpf(BPF_LINK_GET_FD_BY_ID)`—Opens the link with this id (needs `CAP_SYS_ADMIN`).
pub(crate) fn link_get_fd_by_id(id: u32) -> Result<OwnedFd> {
    get_fd_by_id(BPF_LINK_GET_FD_BY_ID, "bpf(BPF_LINK_GET_FD_BY_ID)", id)
}

fn get_fd_by_id(cmd: u32, call: &'static str, id: u32) -> Result<OwnedFd> {
    let mut attr = BpfAttrGetId {
        start_id: id,
        ..BpfAttrGetId::default()
    };
    // SAFETY: the *_GET_FD_BY_ID commands read only the struct itself; no pointer fields.
    let ret =
        unsafe { sys_bpf(cmd, &mut attr) }.map_err(|e| bpf_error(call, NEEDS_SYS_ADMIN, e))?;
    Ok(owned_fd(ret))
}

/// `bpf(BPF_LINK_GET_NEXT_ID)`—The next link id after `start`, `None` at the end.
pub(crate) fn link_get_next_id(start: u32) -> Result<Option<u32>> {
    let mut attr = BpfAttrGetId {
        start_id: start,
        ..BpfAttrGetId::default()
    };
    // SAFETY: BPF_LINK_GET_NEXT_ID reads the struct and writes `next_id` inside it; no pointers.
    match unsafe { sys_bpf(BPF_LINK_GET_NEXT_ID, &mut attr) } {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(bpf_error("bpf(BPF_LINK_GET_NEXT_ID)", NEEDS_SYS_ADMIN, e)),
    }
}

/// Plain-data info structs `BPF_OBJ_GET_INFO_BY_FD` may write into.
///
/// # Safety
/// Implementors are `#[repr(C)]`, made only of integer fields (every bit pattern valid).
unsafe trait BpfInfo: Default {}
// SAFETY: #[repr(C)], integer and byte-array fields only.
unsafe impl BpfInfo for BpfProgInfo {}
// SAFETY: #[repr(C)], integer fields only.
unsafe impl BpfInfo for BpfLinkInfo {}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)`—Reads the first `size_of::<I>()` bytes of the object's info.
fn obj_info<I: BpfInfo>(fd: BorrowedFd<'_>) -> Result<I> {
    let mut info = I::default();
    let mut attr = BpfAttrInfo {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<I>() as u32,
        info: &mut info as *mut I as u64,
    };
    // SAFETY: the kernel writes at most info_len = size_of::<I>() bytes at `info`, a live,
    // exclusively borrowed `I` for which any bytes are a valid value (BpfInfo). Pointer fields
    // inside the info (jited_prog_insns, map_ids, ...) are zero, so it writes nothing else.
    unsafe { sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }
        .map_err(|e| bpf_error("bpf(BPF_OBJ_GET_INFO_BY_FD)", NEEDS_BPF, e))?;
    Ok(info)
}

/// Info of a program fd (`id`, `name`, `type`, ...).
pub(crate) fn prog_info(fd: BorrowedFd<'_>) -> Result<BpfProgInfo> {
    obj_info(fd)
}

/// Info of a link fd (`id`, `prog_id`, `type`, and `xdp.ifindex` for XDP links).
pub(crate) fn link_info(fd: BorrowedFd<'_>) -> Result<BpfLinkInfo> {
    obj_info(fd)
}

#[cfg(test)]
mod test {
    use super::*;
    use std::mem::align_of;

    #[test]
    fn insn_layout() {
        assert_eq!(size_of::<bpf_insn>(), 8);
        assert_eq!(std::mem::offset_of!(bpf_insn, regs), 1);
        assert_eq!(std::mem::offset_of!(bpf_insn, off), 2);
        assert_eq!(std::mem::offset_of!(bpf_insn, imm), 4);
    }

    #[test]
    fn attr_sizes() {
        // Sizes of the UAPI members up to the last field mirrored, padded to the union's 8-byte
        // alignment where a u64 field makes Rust pad too (explicit `_pad` fields).
        assert_eq!(size_of::<BpfAttrMapCreate>(), 48);
        assert_eq!(size_of::<BpfAttrMapElem>(), 32);
        assert_eq!(size_of::<BpfAttrProgLoad>(), 144);
        assert_eq!(size_of::<BpfAttrTestRun>(), 80);
        assert_eq!(size_of::<BpfAttrLinkCreate>(), 16);
        assert_eq!(size_of::<BpfAttrLinkDetach>(), 4);
        assert_eq!(size_of::<BpfAttrInfo>(), 16);
        assert_eq!(size_of::<BpfAttrGetId>(), 12);
        assert_eq!(size_of::<XdpMd>(), 24);
        assert_eq!(size_of::<BpfProgInfo>(), 104);
        assert_eq!(size_of::<BpfLinkInfo>(), 24);
        assert_eq!(align_of::<BpfAttrProgLoad>(), 8);
    }

    /// Field offsets that matter, against `pahole`-style values from the UAPI header.
    #[test]
    fn field_offsets() {
        fn off<T, F>(base: &T, field: &F) -> usize {
            (field as *const F as usize) - (base as *const T as usize)
        }
        let a = BpfAttrProgLoad::default();
        assert_eq!(off(&a, &a.log_buf), 32);
        assert_eq!(off(&a, &a.prog_name), 48);
        assert_eq!(off(&a, &a.expected_attach_type), 68);
        assert_eq!(off(&a, &a.fd_array), 120);
        assert_eq!(off(&a, &a.log_true_size), 140);
        let t = BpfAttrTestRun::default();
        assert_eq!(off(&t, &t.repeat), 32);
        assert_eq!(off(&t, &t.ctx_in), 48);
        assert_eq!(off(&t, &t.flags), 64);
        assert_eq!(off(&t, &t.batch_size), 72);
        let i = BpfProgInfo::default();
        assert_eq!(off(&i, &i.name), 64);
        assert_eq!(off(&i, &i.netns_dev), 88);
        let m = XdpMd::default();
        assert_eq!(off(&m, &m.rx_queue_index), 16);
        let l = BpfLinkInfo::default();
        assert_eq!(off(&l, &l.xdp_ifindex), 16);
    }

    #[test]
    fn object_names() {
        assert_eq!(
            &obj_name("n", "fastpath_pass").unwrap()[..14],
            b"fastpath_pass\0"
        );
        assert!(obj_name("n", "0123456789abcde").is_ok());
        assert!(obj_name("n", "0123456789abcdef").is_err());
        assert!(obj_name("n", "bad-name").is_err());
        let mut f = [0u8; 16];
        f[..4].copy_from_slice(b"xsks");
        assert_eq!(lossy_until_nul(&f), "xsks");
        assert_eq!(lossy_until_nul(&[b'a'; 16]), "a".repeat(16));
    }
}
