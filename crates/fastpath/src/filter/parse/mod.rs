//! The pcap-filter grammar (`man pcap-filter`) to an AST, with libpcap's quirks kept where
//! they change which packets match:
//!
//! - `and` and `or` have the same precedence and associate to the left (`a or b and c` is
//!   `(a or b) and c`); `not` binds tightest.
//! - Each `vlan` moves the network-layer offsets of *everything after it in the text* by 4
//!   bytes, whatever the parentheses say.
//! - An id without qualifiers takes those of the primitive before it (`port 53 or 80`).
//! - `%` and `^` have no precedence in libpcap 1.10's grammar: their right operand is the rest
//!   of the arithmetic expression (`a % b + c` is `a % (b + c)`).
//!
//! Implementation: `ast.rs` (the tree), `expr.rs` (connectives, relations, arithmetic),
//! `primitive.rs` (qualifiers and the primitives), `hosts.rs` (the id of a primitive: ports,
//! IPv4 and IPv6 hosts and networks, MAC addresses), `names.rs` (keyword and name tables).

mod ast;
mod expr;
mod hosts;
mod names;
mod primitive;

pub(crate) use ast::{words, Arith, BinOp, Dir, Expr, Net, Off, Prim, Proto, RelOp};

use super::lex::{lex, Tok, Token};
use super::FilterError;

/// The qualifiers of a primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Quals {
    proto: Option<Proto>,
    dir: Option<Dir>,
    kind: Option<Kind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Net,
    Port,
    PortRange,
}

/// Parses `src` into an expression. An empty (or all-blank) text is [`Expr::True`].
pub(crate) fn parse(src: &str) -> Result<Expr, FilterError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        vlans: 0,
        last: Quals::default(),
    };
    if p.peek().tok == Tok::End {
        return Ok(Expr::True);
    }
    let e = p.expr(0)?;
    if p.peek().tok != Tok::End {
        let t = p.peek().clone();
        return Err(p.err_at(
            &t,
            format!("expected 'and', 'or' or the end, found '{}'", t.text),
        ));
    }
    Ok(e)
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    /// `vlan` keywords seen so far (each shifts the offsets after it).
    vlans: u32,
    /// Qualifiers of the last primitive, for ids without their own.
    last: Quals,
}

/// Deepest nesting of parentheses, `not` and arithmetic accepted (keeps recursion bounded).
const MAX_DEPTH: usize = 200;

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_at(&self, t: &Token, msg: String) -> FilterError {
        FilterError::new(self.src, t.col, msg)
    }

    fn found(t: &Token) -> String {
        match t.tok {
            Tok::End => "the end of the expression".into(),
            _ => format!("'{}'", t.text),
        }
    }

    fn is_word(&self, n: usize, w: &str) -> bool {
        matches!(&self.peek_at(n).tok, Tok::Word(x) if x == w)
    }

    fn is_op(&self, n: usize, o: &str) -> bool {
        matches!(&self.peek_at(n).tok, Tok::Op(x) if *x == o)
    }

    fn off(&self) -> Off {
        Off {
            link: Off::ETHERNET.link + 4 * self.vlans,
            net: Off::ETHERNET.net + 4 * self.vlans,
        }
    }

    fn depth_check(&self, depth: usize) -> Result<(), FilterError> {
        if depth > MAX_DEPTH {
            let t = self.peek().clone();
            return Err(self.err_at(&t, "expression nested too deeply".into()));
        }
        Ok(())
    }

    fn word(&self) -> Option<&str> {
        match &self.peek().tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn and_or_are_left_associative_with_one_precedence() {
        let e = parse("tcp or udp and icmp").unwrap();
        assert!(matches!(e, Expr::And(ref l, _) if matches!(**l, Expr::Or(..))));
    }

    #[test]
    fn vlan_shifts_what_follows() {
        let e = parse("vlan 10 and ip").unwrap();
        let Expr::And(_, r) = e else { panic!() };
        assert_eq!(
            *r,
            Expr::Prim(Prim::EtherType(Off { link: 16, net: 18 }, 0x800))
        );
    }

    #[test]
    fn implicit_qualifiers() {
        let e = parse("port 53 or 80").unwrap();
        let Expr::Or(_, r) = e else { panic!() };
        assert!(matches!(*r, Expr::Prim(Prim::Port { ref ranges, .. }) if ranges == &[(80, 80)]));
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse("tcp and port foo").unwrap_err();
        assert_eq!(e.column, 14);
        assert!(e
            .message
            .contains("expected a port number after 'port', found 'foo'"));
        let e = parse("ip[0] & 0xf !! 5").unwrap_err();
        assert_eq!(e.column, 13);
        let e = parse("(tcp").unwrap_err();
        assert_eq!(e.column, 5);
        let e = parse("host 10.0.0").unwrap_err();
        assert_eq!(e.column, 6);
    }
}
