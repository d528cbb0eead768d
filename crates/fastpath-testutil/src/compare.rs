//! Byte-exact frame list comparison with short, readable failure reports.

use std::fmt::Write as _;

/// Bytes shown on each side of the first differing offset.
const CONTEXT: usize = 8;

/// Compares two frame lists byte for byte; `None` if equal, otherwise a
/// short report: the first differing frame index, the byte offset, both
/// lengths, and a hex window around the offset for both sides.
pub fn diff_frames<G: AsRef<[u8]>, S: AsRef<[u8]>>(got: &[G], sent: &[S]) -> Option<String> {
    for (i, (g, s)) in got.iter().zip(sent).enumerate() {
        let (g, s) = (g.as_ref(), s.as_ref());
        if g == s {
            continue;
        }
        // First differing offset; if one is a prefix of the other, its end.
        let off = g
            .iter()
            .zip(s)
            .position(|(a, b)| a != b)
            .unwrap_or(g.len().min(s.len()));
        let mut msg = format!(
            "frame {i} differs at byte {off} (got {} bytes, sent {} bytes)\n",
            g.len(),
            s.len()
        );
        let start = off.saturating_sub(CONTEXT);
        let _ = writeln!(msg, "  got  @{start:#06x}: {}", hex_window(g, start, off));
        let _ = writeln!(msg, "  sent @{start:#06x}: {}", hex_window(s, start, off));
        if got.len() != sent.len() {
            let _ = writeln!(
                msg,
                "  (also: got {} frames, sent {})",
                got.len(),
                sent.len()
            );
        }
        return Some(msg);
    }
    if got.len() != sent.len() {
        let common = got.len().min(sent.len());
        return Some(format!(
            "got {} frames, sent {}; the first {common} are equal{}",
            got.len(),
            sent.len(),
            if got.len() < sent.len() {
                " (frames missing at the end)"
            } else {
                " (extra frames at the end)"
            }
        ));
    }
    None
}

/// Panics with the [`diff_frames`] report unless `got` equals `sent`.
///
/// # Panics
///
/// If the lists differ in length or in any byte.
#[track_caller]
pub fn assert_frames_eq<G: AsRef<[u8]>, S: AsRef<[u8]>>(got: &[G], sent: &[S]) {
    if let Some(report) = diff_frames(got, sent) {
        panic!("frames differ: {report}");
    }
}

/// `CONTEXT` bytes either side of `mark` from `start`, with the byte at
/// `mark` bracketed; `..` marks the end of the frame if it falls inside.
fn hex_window(b: &[u8], start: usize, mark: usize) -> String {
    let mut s = String::new();
    for i in start..mark + CONTEXT + 1 {
        match b.get(i) {
            Some(x) if i == mark => {
                let _ = write!(s, "[{x:02x}]");
            }
            Some(x) => {
                let _ = write!(s, " {x:02x} ");
            }
            None => {
                s.push_str(if i == mark { "[..]" } else { " .." });
                break;
            }
        }
    }
    s.trim_end().to_owned()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn equal_lists() {
        let a = vec![vec![1u8, 2, 3], vec![4]];
        assert_eq!(diff_frames(&a, &a.clone()), None);
        assert_frames_eq(&a, &a);
        assert_eq!(diff_frames::<Vec<u8>, Vec<u8>>(&[], &[]), None);
    }

    #[test]
    fn first_difference_reported() {
        let sent: Vec<Vec<u8>> = vec![vec![0; 40], (0..40).collect()];
        let mut got = sent.clone();
        got[1][20] = 0xee;
        got[1][30] = 0xee; // later difference is not reported
        let r = diff_frames(&got, &sent).unwrap();
        assert!(
            r.starts_with("frame 1 differs at byte 20 (got 40 bytes, sent 40 bytes)"),
            "{r}"
        );
        assert!(
            r.contains("got  @0x000c:  0c  0d  0e  0f  10  11  12  13 [ee] 15  16"),
            "{r}"
        );
        assert!(
            r.contains("sent @0x000c:  0c  0d  0e  0f  10  11  12  13 [14] 15  16"),
            "{r}"
        );
        assert!(r.lines().count() <= 4, "report should stay short: {r}");
    }

    #[test]
    fn length_differences() {
        let sent = vec![vec![1u8, 2, 3, 4]];
        let r = diff_frames(&[vec![1u8, 2]], &sent).unwrap();
        assert!(
            r.starts_with("frame 0 differs at byte 2 (got 2 bytes, sent 4 bytes)"),
            "{r}"
        );
        assert!(r.contains("[..]"), "{r}");
        let r = diff_frames::<Vec<u8>, _>(&[], &sent).unwrap();
        assert!(r.contains("got 0 frames, sent 1"), "{r}");
    }

    #[test]
    #[should_panic(expected = "frame 0 differs at byte 0")]
    fn assert_panics() {
        assert_frames_eq(&[[1u8]], &[[2u8]]);
    }
}
