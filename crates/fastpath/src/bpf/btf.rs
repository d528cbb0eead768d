//! Just enough BTF to call a kernel function (kfunc) from a program: the type id of a `FUNC`
//! named so in the kernel's own BTF (`/sys/kernel/btf/vmlinux`). Sans-IO parsing; no unsafe.
//!
//! Format: `include/uapi/linux/btf.h` and <https://docs.kernel.org/bpf/btf.html>: a header,
//! then the type section (types numbered from 1, each a 12-byte `struct btf_type` followed by
//! kind-specific data), then the string section.

use std::sync::OnceLock;

const BTF_MAGIC: u16 = 0xeb9f;
const BTF_KIND_FUNC: u32 = 12;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Bytes of kind-specific data after a `struct btf_type` of `kind` with `vlen` members.
fn trailing(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        // INT, VAR, DECL_TAG
        1 | 14 | 17 => 4,
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0,
        // ARRAY
        3 => 12,
        // STRUCT, UNION, DATASEC, ENUM64
        4 | 5 | 15 | 19 => 12 * vlen,
        // ENUM, FUNC_PROTO
        6 | 13 => 8 * vlen,
        _ => return None,
    })
}

/// The type id of the `FUNC` called `name` in the (little-endian) BTF blob `btf`; `None` if it
/// is not there or the blob is not BTF this parser knows.
pub(crate) fn func_id(btf: &[u8], name: &str) -> Option<u32> {
    if u16_at(btf, 0)? != BTF_MAGIC {
        return None;
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    let (type_off, type_len) = (u32_at(btf, 8)? as usize, u32_at(btf, 12)? as usize);
    let (str_off, str_len) = (u32_at(btf, 16)? as usize, u32_at(btf, 20)? as usize);
    let types = btf.get(hdr_len + type_off..hdr_len + type_off + type_len)?;
    let strings = btf.get(hdr_len + str_off..hdr_len + str_off + str_len)?;
    let name_at = |off: u32| -> Option<&[u8]> {
        let s = strings.get(off as usize..)?;
        Some(&s[..s.iter().position(|&c| c == 0)?])
    };
    let mut at = 0;
    let mut id = 1u32;
    while at < types.len() {
        let name_off = u32_at(types, at)?;
        let info = u32_at(types, at + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        if kind == BTF_KIND_FUNC && name_at(name_off)? == name.as_bytes() {
            return Some(id);
        }
        at += 12 + trailing(kind, vlen)?;
        id += 1;
    }
    None
}

/// The id of kfunc `bpf_xdp_metadata_rx_vlan_tag` (Linux 6.8+) in the running kernel's BTF,
/// looked up once per process.
pub(crate) fn rx_vlan_tag_kfunc() -> Option<u32> {
    static ID: OnceLock<Option<u32>> = OnceLock::new();
    *ID.get_or_init(|| {
        let btf = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
        func_id(&btf, "bpf_xdp_metadata_rx_vlan_tag")
    })
}

/// The id of kfunc `bpf_xdp_metadata_rx_timestamp` (Linux 6.3+) in the running kernel's BTF,
/// looked up once per process.
pub(crate) fn rx_timestamp_kfunc() -> Option<u32> {
    static ID: OnceLock<Option<u32>> = OnceLock::new();
    *ID.get_or_init(|| {
        let btf = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
        func_id(&btf, "bpf_xdp_metadata_rx_timestamp")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob with an INT, a STRUCT of two members, a FUNC_PROTO of one parameter and a FUNC.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0s\0a\0b\0f\0".to_vec();
        let mut types = Vec::new();
        let ty = |t: &mut Vec<u8>, name: u32, kind: u32, vlen: u32, size_or_type: u32| {
            t.extend_from_slice(&name.to_le_bytes());
            t.extend_from_slice(&((kind << 24) | vlen).to_le_bytes());
            t.extend_from_slice(&size_or_type.to_le_bytes());
        };
        ty(&mut types, 1, 1, 0, 4); // [1] int
        types.extend_from_slice(&0x20u32.to_le_bytes());
        ty(&mut types, 5, 4, 2, 8); // [2] struct s { a; b; }
        types.extend_from_slice(&[0; 24]);
        ty(&mut types, 0, 13, 1, 1); // [3] proto (int) -> int
        types.extend_from_slice(&[0; 8]);
        ty(&mut types, 11, 12, 0, 3); // [4] func f
        let mut b = Vec::new();
        b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&24u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(types.len() as u32).to_le_bytes());
        b.extend_from_slice(&(types.len() as u32).to_le_bytes());
        b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        b.extend(types);
        b.extend(strings);
        b
    }

    #[test]
    fn finds_functions_by_name() {
        let b = blob();
        assert_eq!(func_id(&b, "f"), Some(4));
        assert_eq!(func_id(&b, "s"), None, "a struct is not a function");
        assert_eq!(func_id(&b, "g"), None);
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        let b = blob();
        for cut in 0..b.len() {
            let _ = func_id(&b[..cut], "f");
        }
        let mut bad = b.clone();
        bad[0] = 0;
        assert_eq!(func_id(&bad, "f"), None);
        assert_eq!(func_id(&[], "f"), None);
    }

    /// The running kernel's BTF, where there is one: every kernel function is in it.
    #[test]
    fn reads_the_kernels_btf() {
        let read = std::fs::read("/sys/kernel/btf/vmlinux");
        fastpath_testutil::require!(
            read.is_ok(),
            "no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)"
        );
        let btf = read.expect("require! returned on Err");
        assert!(func_id(&btf, "tcp_v4_rcv").is_some());
        eprintln!(
            "bpf_xdp_metadata_rx_vlan_tag: {:?}",
            func_id(&btf, "bpf_xdp_metadata_rx_vlan_tag")
        );
    }
}
