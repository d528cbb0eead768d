//! The pcap-filter grammar (`man pcap-filter`) to an AST, with libpcap's quirks kept where
//! they change which packets match:
//!
//! - `and` and `or` have the same precedence and associate to the left (`a or b and c` is
//!   `(a or b) and c`); `not` binds tightest.
//! - `vlan`, `mpls`, `pppoes`, `geneve` and `vxlan` move the offsets of *everything after them
//!   in the text*, whatever the parentheses say.
//! - An id without qualifiers takes those of the primitive before it (`port 53 or 80`).
//! - `%` and `^` have no precedence in libpcap 1.10's grammar: their right operand is the rest
//!   of the arithmetic expression (`a % b + c` is `a % (b + c)`).
//!
//! Nothing here recurses without bound: chains of `and` or of `or` are lists, and nesting
//! (parentheses, `not`, a switch between `and` and `or`, arithmetic) is refused past
//! [`MAX_DEPTH`] levels.
//!
//! Implementation: `ast.rs` (the tree), `expr.rs` (connectives, relations, arithmetic),
//! `primitive.rs` (qualifiers and the primitives), `encap.rs` (the keywords that move the
//! offsets: `vlan`, `mpls`, `pppoes`, `geneve`, `vxlan`), `hosts.rs` (the id of a primitive:
//! ports, IPv4, IPv6 and DECnet hosts and networks, MAC addresses), `names.rs` (keyword and name
//! tables).

mod ast;
mod encap;
mod expr;
mod hosts;
mod names;
mod primitive;

pub(crate) use ast::{
    words, Arith, BinOp, Dir, Expr, LinkKind, Llc, Net, Off, Pos, Prim, Proto, RelOp, Tunnel,
    LLCSAP_IPX, LLCSAP_ISONS,
};

use super::lex::{lex, Tok, Token};
use super::FilterError;

/// What the parser needs to know of where the filter runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Env {
    /// The IPv4 netmask of the capture interface, for `ip broadcast`; `None`: not known.
    pub(crate) netmask: Option<u32>,
    /// The packets come from a file: they have no direction (`inbound`/`outbound`).
    pub(crate) savefile: bool,
}

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
    /// `[ether|ip|ip6|iso|isis] proto`.
    Proto,
}

/// Parses `src` into an expression (an empty or all-blank text is [`Expr::True`]), and the
/// number of scratch words (from 0) its tunnels' offsets take.
pub(crate) fn parse(src: &str, env: Env) -> Result<(Expr, u32), FilterError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        off: Off::ETHERNET,
        regs: 0,
        last: Quals::default(),
        env,
    };
    if p.peek().tok == Tok::End {
        return Ok((Expr::True, 0));
    }
    let e = p.expr(0)?;
    if p.peek().tok != Tok::End {
        let t = p.peek().clone();
        return Err(p.err_at(
            &t,
            format!("expected 'and', 'or' or the end, found '{}'", t.text),
        ));
    }
    Ok((e, p.regs))
}

/// Scratch memory words the offsets of tunnels (`geneve`, `vxlan`) may take; the rest stays
/// for arithmetic and for the AF_PACKET form's VLAN rewrite.
pub(crate) const MAX_TUNNEL_REGS: u32 = 9;

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    /// Where the headers are for the next primitive (moved by `vlan`, `mpls`, ...).
    off: Off,
    /// Scratch memory words taken by tunnel offsets so far (words `0..regs`).
    regs: u32,
    /// Qualifiers of the last primitive, for ids without their own.
    last: Quals,
    env: Env,
}

/// Deepest nesting of parentheses, `not`, switches between `and` and `or`, and arithmetic
/// accepted (keeps recursion, here and in the code generator, bounded).
pub(crate) const MAX_DEPTH: usize = 200;

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

    fn depth_check(&self, depth: usize) -> Result<(), FilterError> {
        if depth > MAX_DEPTH {
            let t = self.peek().clone();
            return Err(self.err_at(
                &t,
                format!(
                    "expression nested too deeply (more than {MAX_DEPTH} levels of \
                     parentheses, 'not', switches between 'and' and 'or', or arithmetic)"
                ),
            ));
        }
        Ok(())
    }

    fn word(&self) -> Option<&str> {
        match &self.peek().tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    /// A parser state to go back to (the parser tries a relation first after `(`).
    fn save(&self) -> (usize, Off, u32, Quals) {
        (self.pos, self.off, self.regs, self.last)
    }

    fn restore(&mut self, s: (usize, Off, u32, Quals)) {
        (self.pos, self.off, self.regs, self.last) = s;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn p(s: &str) -> Expr {
        parse(s, Env::default()).unwrap_or_else(|e| panic!("{e}")).0
    }

    #[test]
    fn and_or_are_left_associative_with_one_precedence() {
        let e = p("tcp or udp and icmp");
        assert!(matches!(e, Expr::And(ref v) if matches!(v[0], Expr::Or(..))));
    }

    #[test]
    fn chains_are_lists() {
        let e = p("tcp or udp or icmp or (arp or rarp)");
        assert!(matches!(e, Expr::Or(ref v) if v.len() == 5), "{e:?}");
        let long = vec!["tcp"; 50_000].join(" and ");
        assert!(matches!(p(&long), Expr::And(ref v) if v.len() == 50_000));
    }

    #[test]
    fn alternations_nest_and_are_bounded() {
        let alt: Vec<String> = (0..1000)
            .map(|i| format!("port {i} {}", if i % 2 == 0 { "and" } else { "or" }))
            .collect();
        let e = parse(&(alt.join(" ") + " tcp"), Env::default()).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn vlan_shifts_what_follows() {
        let e = p("vlan 10 and ip");
        let Expr::And(v) = e else { panic!() };
        let Expr::Prim(Prim::LinkProto(off, 0x800)) = v[1] else {
            panic!("{:?}", v[1])
        };
        assert_eq!((off.linktype, off.net), (Pos::at(16), Pos::at(18)));
    }

    #[test]
    fn implicit_qualifiers() {
        let e = p("port 53 or 80");
        let Expr::Or(v) = e else { panic!() };
        assert!(matches!(v[1], Expr::Prim(Prim::Port { ref ranges, .. }) if ranges == &[(80, 80)]));
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse("tcp and port foo", Env::default()).unwrap_err();
        assert_eq!(e.column, 14);
        assert!(e
            .message
            .contains("expected a port number after 'port', found 'foo'"));
        let e = parse("ip[0] & 0xf !! 5", Env::default()).unwrap_err();
        assert_eq!(e.column, 13);
        let e = parse("(tcp", Env::default()).unwrap_err();
        assert_eq!(e.column, 5);
        let e = parse("host 300.0.0.1", Env::default()).unwrap_err();
        assert_eq!(e.column, 6);
    }
}
