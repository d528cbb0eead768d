//! The text forms of a program: `tcpdump -d` (a listing), `-dd` (a C array) and `-ddd`
//! (decimal), and the reader of the `-ddd` form.

use std::fmt;

use super::{
    ancillary, Insn, BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP,
    BPF_JSET, BPF_LSH, BPF_MAXINSNS, BPF_MOD, BPF_MUL, BPF_OR, BPF_RSH, BPF_SUB, BPF_X, BPF_XOR,
};

/// The program in `tcpdump -d` form, one instruction per line: `(000) ldh      [12]`.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a>(pub &'a [Insn]);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (pc, i) in self.0.iter().enumerate() {
            writeln!(f, "{}", image(i, pc))?;
        }
        Ok(())
    }
}

/// The program in `tcpdump -dd` form: a C array of `{ code, jt, jf, k }`.
#[derive(Debug, Clone, Copy)]
pub struct CArray<'a>(pub &'a [Insn]);

impl fmt::Display for CArray<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in self.0 {
            writeln!(
                f,
                "{{ 0x{:x}, {}, {}, 0x{:08x} }},",
                i.code, i.jt, i.jf, i.k
            )?;
        }
        Ok(())
    }
}

/// The program in `tcpdump -ddd` form: the instruction count, then `code jt jf k` in decimal,
/// one per line (what [`parse_decimal`] and the kernel's `bpf_asm`-based tools read).
#[derive(Debug, Clone, Copy)]
pub struct Decimal<'a>(pub &'a [Insn]);

impl fmt::Display for Decimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.0.len())?;
        for i in self.0 {
            writeln!(f, "{} {} {} {}", i.code, i.jt, i.jf, i.k)?;
        }
        Ok(())
    }
}

/// One instruction as libpcap's `bpf_image` prints it.
fn image(i: &Insn, pc: usize) -> String {
    let k = i.k;
    let (op, operand): (&str, String) = match i.code {
        0x06 => ("ret", format!("#{k}")),
        0x16 => ("ret", String::new()),
        0x20 | 0x28 | 0x30 => {
            let op = match i.code {
                0x20 => "ld",
                0x28 => "ldh",
                _ => "ldb",
            };
            match ancillary(k) {
                Some(name) => (op, format!("[{name}]")),
                None => (op, format!("[{k}]")),
            }
        }
        0x80 => ("ld", "#pktlen".into()),
        0x40 => ("ld", format!("[x + {k}]")),
        0x48 => ("ldh", format!("[x + {k}]")),
        0x50 => ("ldb", format!("[x + {k}]")),
        0x00 => ("ld", format!("#0x{k:x}")),
        0x01 => ("ldx", format!("#0x{k:x}")),
        0xb1 => ("ldxb", format!("4*([{k}]&0xf)")),
        0x60 => ("ld", format!("M[{k}]")),
        0x61 => ("ldx", format!("M[{k}]")),
        0x81 => ("ldx", "#pktlen".into()),
        0x02 => ("st", format!("M[{k}]")),
        0x03 => ("stx", format!("M[{k}]")),
        0x05 => ("ja", format!("{}", pc as u64 + 1 + u64::from(k))),
        0x07 => ("tax", String::new()),
        0x87 => ("txa", String::new()),
        0x84 => ("neg", String::new()),
        c if c & 0x07 == BPF_JMP => {
            let name = match c & 0xf0 {
                BPF_JEQ => "jeq",
                BPF_JGT => "jgt",
                BPF_JGE => "jge",
                BPF_JSET => "jset",
                _ => "unimp",
            };
            let operand = if c & BPF_X != 0 {
                "x".to_string()
            } else {
                format!("#0x{k:x}")
            };
            return format!(
                "({pc:03}) {name:<8} {operand:<16} jt {}\tjf {}",
                pc + 1 + usize::from(i.jt),
                pc + 1 + usize::from(i.jf)
            );
        }
        c if c & 0x07 == BPF_ALU => {
            let name = match c & 0xf0 {
                BPF_ADD => "add",
                BPF_SUB => "sub",
                BPF_MUL => "mul",
                BPF_DIV => "div",
                BPF_MOD => "mod",
                BPF_AND => "and",
                BPF_OR => "or",
                BPF_XOR => "xor",
                BPF_LSH => "lsh",
                BPF_RSH => "rsh",
                _ => "unimp",
            };
            let operand = if c & BPF_X != 0 {
                "x".to_string()
            } else if matches!(c & 0xf0, BPF_AND | BPF_OR | BPF_XOR) {
                format!("#0x{k:x}")
            } else {
                format!("#{k}")
            };
            (name, operand)
        }
        _ => ("unimp", format!("0x{:x}", i.code)),
    };
    format!("({pc:03}) {op:<8} {operand}")
}

/// Why [`parse_decimal`] refused a text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct DecimalError {
    /// 1-based line (or comma-separated item) number.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// Reads a program in `tcpdump -ddd` form: a count, then `code jt jf k` per instruction, in
/// decimal. Instructions may also be separated by commas (the `iptables -m bpf --bytecode`
/// form, `4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0`). Blank lines and `#` comments are skipped.
///
/// # Errors
/// [`DecimalError`] naming the line: a missing or wrong count, a field that is not a number or
/// out of range, a line without exactly four fields.
pub fn parse_decimal(text: &str) -> Result<Vec<Insn>, DecimalError> {
    let items = text
        .split(['\n', ','])
        .enumerate()
        .map(|(n, l)| (n + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty());
    let mut count: Option<usize> = None;
    let mut prog = Vec::new();
    let mut last_line = 0;
    for (line, l) in items {
        last_line = line;
        let fields: Vec<&str> = l.split_whitespace().collect();
        let Some(want) = count else {
            let n = match fields.as_slice() {
                [n] => n.parse::<usize>().ok(),
                _ => None,
            };
            match n {
                Some(n) if (1..=BPF_MAXINSNS).contains(&n) => count = Some(n),
                _ => {
                    return Err(DecimalError {
                        line,
                        why: format!(
                            "expected the instruction count (1 to {BPF_MAXINSNS}) as in \
                             `tcpdump -ddd` output, found `{l}`"
                        ),
                    })
                }
            }
            continue;
        };
        if prog.len() == want {
            return Err(DecimalError {
                line,
                why: format!("more instructions than the count ({want}) says"),
            });
        }
        let [code, jt, jf, k] = fields.as_slice() else {
            return Err(DecimalError {
                line,
                why: format!("expected four numbers `code jt jf k`, found `{l}`"),
            });
        };
        let num = |s: &str, what: &str, max: u64| -> Result<u64, DecimalError> {
            s.parse::<u64>()
                .ok()
                .filter(|v| *v <= max)
                .ok_or_else(|| DecimalError {
                    line,
                    why: format!("{what} `{s}` is not a decimal number up to {max}"),
                })
        };
        prog.push(Insn {
            code: num(code, "code", u64::from(u16::MAX))? as u16,
            jt: num(jt, "jt", 255)? as u8,
            jf: num(jf, "jf", 255)? as u8,
            k: num(k, "k", u64::from(u32::MAX))? as u32,
        });
    }
    match count {
        None => Err(DecimalError {
            line: last_line.max(1),
            why: "empty program: expected `tcpdump -ddd` output".into(),
        }),
        Some(n) if n != prog.len() => Err(DecimalError {
            line: last_line,
            why: format!("the count says {n} instructions, {} follow", prog.len()),
        }),
        Some(_) => Ok(prog),
    }
}
