//! Tokens of the pcap-filter language, each with the column it starts at.
//!
//! Addresses are recognised by shape, as libpcap's lexer does: `10.0.0.1` (also `10.0`, `10`),
//! `2001:db8::1`, `00:11:22:33:44:55` (also `-` or `.` separated, `0011.2233.4455` and
//! `001122334455`). A run like
//! `2:2` inside `udp[2:2]` is a number, a colon and a number.

use std::net::Ipv6Addr;

use super::FilterError;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A number: decimal, `0x` hex or `0` octal.
    Num(u32),
    /// Dotted decimal with 1 to 4 parts (`10`, `10.1`, `10.1.2.3`); the parts as written.
    Dotted(Vec<u32>),
    /// An IPv6 address.
    V6(Ipv6Addr),
    /// An Ethernet address.
    Mac([u8; 6]),
    /// A word: keyword or name (`tcp`, `tcp-syn`, `domain`).
    Word(String),
    /// A name written with a backslash in front (`\\tcp`): never a keyword.
    Name(String),
    /// Punctuation or operator, as written (`(`, `&&`, `<=`, ...).
    Op(&'static str),
    /// End of input.
    End,
}

/// A token and where it starts (1-based column, in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) col: usize,
    /// The text as written (for messages).
    pub(crate) text: String,
}

const OPS: [&str; 26] = [
    "&&", "||", "!=", "==", "<=", ">=", "<<", ">>", "(", ")", "[", "]", ":", "+", "-", "*", "/",
    "%", "^", "&", "|", "!", "=", "<", ">", ",",
];

fn is_run_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

fn parse_num(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    for sep in [':', '-'] {
        let parts: Vec<&str> = s.split(sep).collect();
        if parts.len() == 6
            && parts
                .iter()
                .all(|p| (1..=2).contains(&p.len()) && p.chars().all(|c| c.is_ascii_hexdigit()))
        {
            for (o, p) in out.iter_mut().zip(&parts) {
                *o = u8::from_str_radix(p, 16).ok()?;
            }
            return Some(out);
        }
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() == 6
        && parts
            .iter()
            .all(|p| (1..=2).contains(&p.len()) && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        for (o, p) in out.iter_mut().zip(&parts) {
            *o = u8::from_str_radix(p, 16).ok()?;
        }
        return Some(out);
    }
    if s.len() == 12 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        return Some(out);
    }
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| p.len() == 4 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        for (i, p) in parts.iter().enumerate() {
            let v = u16::from_str_radix(p, 16).ok()?;
            out[2 * i..2 * i + 2].copy_from_slice(&v.to_be_bytes());
        }
        return Some(out);
    }
    None
}

/// Splits `src` into tokens, ending with [`Tok::End`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\\' {
            // `proto \tcp`: a name, even if it is spelled like a keyword; it runs to a blank,
            // `!` or a parenthesis, as in libpcap.
            let mut j = i + 1;
            while j < chars.len()
                && !chars[j].is_whitespace()
                && !matches!(chars[j], '!' | '(' | ')')
            {
                j += 1;
            }
            if j == i + 1 {
                return Err(FilterError::new(
                    src,
                    col,
                    "expected a name after '\\'".into(),
                ));
            }
            let text: String = chars[i..j].iter().collect();
            out.push(Token {
                tok: Tok::Name(chars[i + 1..j].iter().collect()),
                col,
                text,
            });
            i = j;
            continue;
        }
        let v6_start = c == ':' && chars.get(i + 1) == Some(&':');
        if (is_run_char(c) && c != '-' && c != ':' && c != '.') || v6_start {
            let mut j = i;
            while j < chars.len() && is_run_char(chars[j]) {
                j += 1;
            }
            let run: String = chars[i..j].iter().collect();
            let (tok, len) = classify(&run);
            let text: String = chars[i..i + len].iter().collect();
            out.push(Token { tok, col, text });
            i += len;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
            return Err(FilterError::new(
                src,
                col,
                format!("unexpected character '{c}'"),
            ));
        };
        out.push(Token {
            tok: Tok::Op(op),
            col,
            text: (*op).to_string(),
        });
        i += op.chars().count();
    }
    out.push(Token {
        tok: Tok::End,
        col: chars.len() + 1,
        text: "end of expression".into(),
    });
    Ok(out)
}

/// The token at the start of `run` (a maximal run of `[A-Za-z0-9_.:-]` starting with an
/// alphanumeric or `_`) and how many characters of it it takes.
fn classify(run: &str) -> (Tok, usize) {
    let n = run.chars().count();
    // Whole-run shapes first: IPv6 and MAC addresses contain ':' and must not be split.
    if run.contains(':') {
        if let Some(m) = parse_mac(run) {
            return (Tok::Mac(m), n);
        }
        if let Ok(a) = run.parse::<Ipv6Addr>() {
            return (Tok::V6(a), n);
        }
    } else if let Some(m) = parse_mac(run) {
        // `a-b-c-d-e-f`, `a.b.c.d.e.f`, `aabb.ccdd.eeff` and twelve hex digits, as libpcap's
        // scanner (which also reads `123456789012` as an address).
        return (Tok::Mac(m), n);
    }
    let first = run.chars().next().unwrap_or('0');
    if first.is_ascii_digit() {
        // 0x1f, or dotted decimal (1 to 4 parts), stopping at anything else.
        if run.starts_with("0x") || run.starts_with("0X") {
            let len = 2 + run[2..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            return match parse_num(&run[..len]) {
                Some(v) => (Tok::Num(v), len),
                None => (Tok::Word(run[..len].to_string()), len),
            };
        }
        let mut len = 0;
        let mut parts = Vec::new();
        let bytes = run.as_bytes();
        loop {
            let start = len;
            while len < bytes.len() && bytes[len].is_ascii_digit() {
                len += 1;
            }
            if start == len {
                // "10." : the dot is not ours.
                len -= 1;
                break;
            }
            parts.push(&run[start..len]);
            if parts.len() < 4 && len + 1 < bytes.len() && bytes[len] == b'.' {
                len += 1;
                continue;
            }
            break;
        }
        // Digits running into letters ("1abc") make a name, as in libpcap.
        if len < bytes.len() && (bytes[len].is_ascii_alphabetic() || bytes[len] == b'_') {
            let wlen = word_len(run);
            return (Tok::Word(run[..wlen].to_string()), wlen);
        }
        if parts.len() == 1 {
            return match parse_num(parts[0]) {
                Some(v) => (Tok::Num(v), len),
                None => (Tok::Word(parts[0].to_string()), len),
            };
        }
        let vals: Option<Vec<u32>> = parts.iter().map(|p| p.parse::<u32>().ok()).collect();
        return match vals {
            Some(v) => (Tok::Dotted(v), len),
            None => (Tok::Word(run[..len].to_string()), len),
        };
    }
    let len = word_len(run);
    (Tok::Word(run[..len].to_string()), len)
}

/// Length of a name: letters, digits, `_`, and `-`/`.` between alphanumerics (`tcp-syn`,
/// `icmp-echo`, `host.example`), so `len-14` is `len`, `-`, `14`.
fn word_len(run: &str) -> usize {
    let b = run.as_bytes();
    let mut len = 0;
    while len < b.len() {
        let c = b[len];
        let inner_sep = (c == b'-' || c == b'.')
            && len > 0
            && len + 1 < b.len()
            && b[len + 1].is_ascii_alphabetic();
        if !(c.is_ascii_alphanumeric() || c == b'_' || inner_sep) {
            break;
        }
        len += 1;
    }
    len.max(1)
}

#[cfg(test)]
mod test {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn shapes() {
        assert_eq!(
            toks("udp[8:2]=0x1234"),
            [
                Tok::Word("udp".into()),
                Tok::Op("["),
                Tok::Num(8),
                Tok::Op(":"),
                Tok::Num(2),
                Tok::Op("]"),
                Tok::Op("="),
                Tok::Num(0x1234),
                Tok::End
            ]
        );
        assert_eq!(toks("10.0.0.0/8")[0], Tok::Dotted(vec![10, 0, 0, 0]));
        assert_eq!(toks("10.0.0.0/8")[1], Tok::Op("/"));
        assert_eq!(toks("fe80::1")[0], Tok::V6("fe80::1".parse().unwrap()));
        assert_eq!(toks("0:1:2:3:4:ff")[0], Tok::Mac([0, 1, 2, 3, 4, 0xff]));
        assert_eq!(toks("tcp-syn")[0], Tok::Word("tcp-syn".into()));
        assert_eq!(
            toks("len-14"),
            [
                Tok::Word("len".into()),
                Tok::Op("-"),
                Tok::Num(14),
                Tok::End
            ]
        );
        assert_eq!(
            toks("10-20"),
            [Tok::Num(10), Tok::Op("-"), Tok::Num(20), Tok::End]
        );
        assert_eq!(toks("010")[0], Tok::Num(8));
        let t = lex("tcp && port 80").unwrap();
        assert_eq!((t[1].col, t[2].col, t[3].col), (5, 8, 13));
    }

    #[test]
    fn bad_character_has_a_column() {
        let e = lex("tcp and $").unwrap_err();
        assert_eq!(e.column, 9);
    }
}
