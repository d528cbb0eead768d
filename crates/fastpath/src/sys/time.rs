//! Local time for file names: `localtime_r(3)` and `strftime(3)`.

use std::ffi::CString;
use std::mem::MaybeUninit;

/// `localtime_r(&t)`—the broken-down local time of `secs` since the epoch, `None` if the C
/// library cannot represent it.
///
/// # References
/// - <https://man7.org/linux/man-pages/man3/localtime_r.3.html>
fn localtime(secs: i64) -> Option<libc::tm> {
    let t = secs as libc::time_t;
    let mut tm = MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: `t` and `tm` are valid for the call; localtime_r writes only `*tm` and returns
    // null on failure (then `tm` is not used).
    let rc = unsafe { libc::localtime_r(&t, tm.as_mut_ptr()) };
    if rc.is_null() {
        return None;
    }
    // SAFETY: localtime_r succeeded, so it initialised `tm` (all-zero was valid anyway: `tm` is
    // integers and a pointer, `tm_zone`, which may be null).
    Some(unsafe { tm.assume_init() })
}

/// Seconds east of UTC of the local time zone at `secs` since the epoch (`tm_gmtoff`), 0 if
/// unknown.
pub(crate) fn utc_offset(secs: i64) -> i64 {
    localtime(secs).map_or(0, |tm| tm.tm_gmtoff)
}

/// `strftime(fmt, localtime(secs))`—`fmt` with its conversions (`%Y`, `%H`, ...) expanded for
/// the local time `secs` since the epoch. `None` if `fmt` holds a NUL, the time cannot be
/// represented, or the result is empty or longer than 4095 bytes.
///
/// # References
/// - <https://man7.org/linux/man-pages/man3/strftime.3.html>
pub(crate) fn strftime_local(fmt: &str, secs: i64) -> Option<String> {
    let tm = localtime(secs)?;
    let cfmt = CString::new(fmt).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: `buf` has `buf.len()` writable bytes, `cfmt` is NUL-terminated and `tm` is a valid
    // broken-down time; strftime writes at most `buf.len()` bytes including the NUL and returns
    // the length without it, or 0 if the result did not fit.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), cfmt.as_ptr(), &tm) };
    if n == 0 {
        return None;
    }
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn strftime_expands_and_refuses_nul() {
        // %s (seconds since the epoch) and %% do not depend on the time zone.
        assert_eq!(
            strftime_local("cap-%s-%%.pcap", 1_700_000_000).as_deref(),
            Some("cap-1700000000-%.pcap")
        );
        assert_eq!(strftime_local("a\0b", 0), None);
        assert_eq!(strftime_local("", 0), None);
        let off = utc_offset(1_700_000_000);
        assert!(off.abs() <= 14 * 3600, "{off}");
    }
}
