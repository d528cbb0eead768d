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

use super::lex::{lex, Tok, Token};
use super::FilterError;

/// Where the link-layer type field and the network header are (they move with `vlan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Off {
    /// Offset of the EtherType field.
    pub(crate) link: u32,
    /// Offset of the network-layer header.
    pub(crate) net: u32,
}

impl Off {
    const ETHERNET: Off = Off { link: 12, net: 14 };
}

/// Which address fields a primitive looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Src,
    Dst,
    /// `src or dst` (the default).
    Either,
    /// `src and dst`.
    Both,
}

/// A protocol qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Ether,
    Ip,
    Ip6,
    Arp,
    Rarp,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmp6,
    Igmp,
}

impl Proto {
    fn from_word(w: &str) -> Option<Proto> {
        Some(match w {
            "ether" | "link" => Proto::Ether,
            "ip" => Proto::Ip,
            "ip6" => Proto::Ip6,
            "arp" => Proto::Arp,
            "rarp" => Proto::Rarp,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => Proto::Sctp,
            "icmp" => Proto::Icmp,
            "icmp6" => Proto::Icmp6,
            "igmp" => Proto::Igmp,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Proto::Ether => "ether",
            Proto::Ip => "ip",
            Proto::Ip6 => "ip6",
            Proto::Arp => "arp",
            Proto::Rarp => "rarp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
            Proto::Igmp => "igmp",
        }
    }

    /// The EtherType of a network-layer qualifier (`ip`, `ip6`, `arp`, `rarp`).
    pub(crate) fn ethertype(self) -> Option<u16> {
        Some(match self {
            Proto::Ip => 0x0800,
            Proto::Ip6 => 0x86dd,
            Proto::Arp => 0x0806,
            Proto::Rarp => 0x8035,
            _ => return None,
        })
    }

    /// The IP protocol number of a transport qualifier.
    pub(crate) fn ip_proto(self) -> Option<u8> {
        Some(match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
            Proto::Icmp => 1,
            Proto::Icmp6 => 58,
            Proto::Igmp => 2,
            _ => return None,
        })
    }
}

/// An address with its mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Net {
    V4 { addr: u32, mask: u32 },
    V6 { addr: u128, mask: u128 },
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Lsh,
    Rsh,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// An arithmetic expression (unsigned 32-bit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arith {
    Num(u32),
    Len,
    /// `proto[index : size]`.
    Load {
        proto: Proto,
        off: Off,
        index: Box<Arith>,
        size: u8,
    },
    Neg(Box<Arith>),
    Bin(BinOp, Box<Arith>, Box<Arith>),
}

/// A primitive test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prim {
    /// `ether proto T`, and `ip`/`ip6`/`arp`/`rarp` alone.
    EtherType(Off, u16),
    /// An IP protocol number: over IPv4, IPv6 or both.
    IpProto {
        off: Off,
        v4: bool,
        v6: bool,
        proto: u8,
    },
    /// `[ip|ip6|arp|rarp] [dir] host|net`.
    Host {
        off: Off,
        proto: Option<Proto>,
        dir: Dir,
        net: Net,
    },
    /// `ether [dir] host MAC`.
    EtherHost { dir: Dir, mac: [u8; 6] },
    /// `ether broadcast`.
    EtherBroadcast,
    /// `ether multicast`.
    EtherMulticast,
    /// `[tcp|udp|sctp] [dir] port|portrange`: any of `ranges` (inclusive). Several come from
    /// `port 53 or port 80`, merged as libpcap's optimizer does (all source-port tests before
    /// the destination port is loaded, which decides short packets).
    Port {
        off: Off,
        proto: Option<u8>,
        dir: Dir,
        ranges: Vec<(u16, u16)>,
    },
    /// `vlan [id]`, at the offsets before this tag.
    Vlan { off: Off, id: Option<u16> },
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Prim(Prim),
    Rel(RelOp, Arith, Arith),
    /// An empty expression: every packet.
    True,
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
}

/// Named constants usable in arithmetic (libpcap's scanner table).
fn named_constant(w: &str) -> Option<u32> {
    Some(match w {
        "icmptype" | "icmp6type" => 0,
        "icmpcode" | "icmp6code" => 1,
        "icmp-echoreply" => 0,
        "icmp-unreach" => 3,
        "icmp-sourcequench" => 4,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-routeradvert" => 9,
        "icmp-routersolicit" => 10,
        "icmp-timxceed" => 11,
        "icmp-paramprob" => 12,
        "icmp-tstamp" => 13,
        "icmp-tstampreply" => 14,
        "icmp-ireq" => 15,
        "icmp-ireqreply" => 16,
        "icmp-maskreq" => 17,
        "icmp-maskreply" => 18,
        "icmp6-destinationunreach" => 1,
        "icmp6-packettoobig" => 2,
        "icmp6-timeexceeded" => 3,
        "icmp6-parameterproblem" => 4,
        "icmp6-echo" => 128,
        "icmp6-echoreply" => 129,
        "icmp6-multicastlistenerquery" => 130,
        "icmp6-multicastlistenerreportv1" => 131,
        "icmp6-multicastlistenerdone" => 132,
        "icmp6-routersolicit" => 133,
        "icmp6-routeradvert" => 134,
        "icmp6-neighborsolicit" => 135,
        "icmp6-neighboradvert" => 136,
        "icmp6-redirect" => 137,
        "tcpflags" => 13,
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        _ => return None,
    })
}

/// IP protocol names for `proto NAME`.
fn ip_proto_name(w: &str) -> Option<u8> {
    Some(match w {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" => 58,
        "pim" => 103,
        "vrrp" => 112,
        "sctp" => 132,
        _ => return None,
    })
}

/// EtherType names for `ether proto NAME`.
fn ether_proto_name(w: &str) -> Option<u16> {
    Proto::from_word(w)?.ethertype()
}

/// Well-known service names for `port NAME` (no `/etc/services` lookup: the filter compiles
/// the same everywhere).
fn service(w: &str) -> Option<u16> {
    Some(match w {
        "ftp-data" => 20,
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "bootps" => 67,
        "bootpc" => 68,
        "tftp" => 69,
        "http" | "www" => 80,
        "pop3" => 110,
        "ntp" => 123,
        "imap" | "imap2" => 143,
        "snmp" => 161,
        "snmp-trap" => 162,
        "bgp" => 179,
        "ldap" => 389,
        "https" => 443,
        "syslog" => 514,
        "submission" => 587,
        "ldaps" => 636,
        "imaps" => 993,
        "pop3s" => 995,
        "mysql" => 3306,
        "postgresql" => 5432,
        _ => return None,
    })
}

fn is_keyword(w: &str) -> bool {
    Proto::from_word(w).is_some()
        || matches!(
            w,
            "and"
                | "or"
                | "not"
                | "src"
                | "dst"
                | "host"
                | "net"
                | "mask"
                | "port"
                | "portrange"
                | "proto"
                | "vlan"
                | "len"
                | "greater"
                | "less"
                | "broadcast"
                | "multicast"
                | "gateway"
        )
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

    /// expr := unary (('and'|'&&'|'or'|'||') unary)*, left-associative, one precedence.
    fn expr(&mut self, depth: usize) -> Result<Expr, FilterError> {
        self.depth_check(depth)?;
        let mut lhs = self.unary(depth + 1)?;
        loop {
            let is_and = self.is_word(0, "and") || self.is_op(0, "&&");
            let is_or = self.is_word(0, "or") || self.is_op(0, "||");
            if !is_and && !is_or {
                return Ok(lhs);
            }
            self.bump();
            let rhs = self.unary(depth + 1)?;
            lhs = if is_and {
                Expr::And(Box::new(lhs), Box::new(rhs))
            } else {
                Expr::Or(Box::new(lhs), Box::new(rhs))
            };
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        self.depth_check(depth)?;
        if self.is_word(0, "not") || self.is_op(0, "!") {
            self.bump();
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        self.primary(depth + 1)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        self.depth_check(depth)?;
        if self.is_op(0, "(") {
            // Either a parenthesised arithmetic expression starting a relation, or a
            // parenthesised filter: try the relation first and back out if it is not one.
            let save = (self.pos, self.vlans, self.last);
            if let Ok(rel) = self.relation(depth + 1) {
                return Ok(rel);
            }
            (self.pos, self.vlans, self.last) = save;
            self.bump();
            let e = self.expr(depth + 1)?;
            if !self.is_op(0, ")") {
                let t = self.peek().clone();
                return Err(self.err_at(&t, format!("expected ')', found {}", Self::found(&t))));
            }
            self.bump();
            return Ok(e);
        }
        if self.starts_relation() {
            return self.relation(depth + 1);
        }
        self.primitive()
    }

    /// Whether the next tokens begin `arith relop arith`.
    fn starts_relation(&self) -> bool {
        let t = self.peek();
        match &t.tok {
            Tok::Num(_) => {
                // `port 80 or 443`: a bare number followed by a connective is an id.
                let next = &self.peek_at(1).tok;
                matches!(next, Tok::Op(o) if !matches!(*o, "(" | ")" | "&&" | "||" | "!" | ","))
            }
            Tok::Op("-") => true,
            Tok::Word(w) if w == "len" => true,
            Tok::Word(w) if named_constant(w).is_some() => true,
            Tok::Word(w) if Proto::from_word(w).is_some() => self.is_op(1, "["),
            _ => false,
        }
    }

    fn relation(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let lhs = self.arith(0, depth + 1)?;
        let t = self.peek().clone();
        let op = match &t.tok {
            Tok::Op("=") | Tok::Op("==") => RelOp::Eq,
            Tok::Op("!=") => RelOp::Ne,
            Tok::Op(">") => RelOp::Gt,
            Tok::Op(">=") => RelOp::Ge,
            Tok::Op("<") => RelOp::Lt,
            Tok::Op("<=") => RelOp::Le,
            _ => {
                return Err(self.err_at(
                    &t,
                    format!(
                        "expected a comparison (=, !=, <, <=, >, >=), found {}",
                        Self::found(&t)
                    ),
                ))
            }
        };
        self.bump();
        let rhs = self.arith(0, depth + 1)?;
        Ok(Expr::Rel(op, lhs, rhs))
    }

    /// Binary operator at the cursor and its precedence (higher binds tighter); `%` and `^`
    /// report `None` precedence (libpcap 1.10: they take the rest of the expression).
    fn binop(&self) -> Option<(BinOp, Option<u8>)> {
        let Tok::Op(o) = self.peek().tok else {
            return None;
        };
        Some(match o {
            "|" => (BinOp::Or, Some(1)),
            "&" => (BinOp::And, Some(2)),
            "<<" => (BinOp::Lsh, Some(3)),
            ">>" => (BinOp::Rsh, Some(3)),
            "+" => (BinOp::Add, Some(4)),
            "-" => (BinOp::Sub, Some(4)),
            "*" => (BinOp::Mul, Some(5)),
            "/" => (BinOp::Div, Some(5)),
            "%" => (BinOp::Mod, None),
            "^" => (BinOp::Xor, None),
            _ => return None,
        })
    }

    /// Precedence climbing over [`Parser::binop`].
    fn arith(&mut self, min: u8, depth: usize) -> Result<Arith, FilterError> {
        self.depth_check(depth)?;
        let mut lhs = self.arith_unary(depth + 1)?;
        while let Some((op, prec)) = self.binop() {
            match prec {
                None => {
                    self.bump();
                    let rhs = self.arith(0, depth + 1)?;
                    lhs = Arith::Bin(op, Box::new(lhs), Box::new(rhs));
                }
                Some(p) if p >= min => {
                    self.bump();
                    let rhs = self.arith(p + 1, depth + 1)?;
                    lhs = Arith::Bin(op, Box::new(lhs), Box::new(rhs));
                }
                Some(_) => break,
            }
        }
        Ok(lhs)
    }

    fn arith_unary(&mut self, depth: usize) -> Result<Arith, FilterError> {
        self.depth_check(depth)?;
        let t = self.bump();
        match &t.tok {
            Tok::Op("-") => Ok(Arith::Neg(Box::new(self.arith_unary(depth + 1)?))),
            Tok::Op("(") => {
                let e = self.arith(0, depth + 1)?;
                if !self.is_op(0, ")") {
                    let t = self.peek().clone();
                    return Err(self.err_at(&t, format!("expected ')', found {}", Self::found(&t))));
                }
                self.bump();
                Ok(e)
            }
            Tok::Num(n) => Ok(Arith::Num(*n)),
            Tok::Word(w) if w == "len" => Ok(Arith::Len),
            Tok::Word(w) if named_constant(w).is_some() => {
                Ok(Arith::Num(named_constant(w).unwrap_or(0)))
            }
            Tok::Word(w) if Proto::from_word(w).is_some() && self.is_op(0, "[") => {
                let proto = Proto::from_word(w).unwrap_or(Proto::Ether);
                self.bump();
                let index = self.arith(0, depth + 1)?;
                let mut size = 1u8;
                if self.is_op(0, ":") {
                    self.bump();
                    let st = self.bump();
                    size = match st.tok {
                        Tok::Num(n @ (1 | 2 | 4)) => n as u8,
                        _ => {
                            return Err(self.err_at(
                                &st,
                                format!(
                                    "expected a data size of 1, 2 or 4 after ':', found {}",
                                    Self::found(&st)
                                ),
                            ))
                        }
                    };
                }
                if !self.is_op(0, "]") {
                    let t = self.peek().clone();
                    return Err(self.err_at(&t, format!("expected ']', found {}", Self::found(&t))));
                }
                self.bump();
                Ok(Arith::Load {
                    proto,
                    off: self.off(),
                    index: Box::new(index),
                    size,
                })
            }
            _ => Err(self.err_at(
                &t,
                format!(
                    "expected a number, 'len', 'proto[offset]' or '(', found {}",
                    Self::found(&t)
                ),
            )),
        }
    }

    fn word(&self) -> Option<&str> {
        match &self.peek().tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    /// A qualified primitive (`tcp`, `src host 10.0.0.1`, `vlan 100`, `greater 64`, ...).
    fn primitive(&mut self) -> Result<Expr, FilterError> {
        let start = self.peek().clone();
        let mut q = Quals::default();
        if let Some(p) = self.word().and_then(Proto::from_word) {
            q.proto = Some(p);
            self.bump();
        }
        // Keywords that take no further qualifiers.
        if q.proto.is_none() || q.proto == Some(Proto::Ether) {
            match self.word() {
                Some("broadcast") => {
                    self.bump();
                    return Ok(Expr::Prim(Prim::EtherBroadcast));
                }
                Some("multicast") => {
                    self.bump();
                    return Ok(Expr::Prim(Prim::EtherMulticast));
                }
                _ => {}
            }
        }
        if q.proto.is_none() {
            match self.word() {
                Some("vlan") => return self.vlan(),
                Some(w @ ("greater" | "less")) => {
                    let greater = w == "greater";
                    let kw = self.bump();
                    let n = self.number_after(&kw)?;
                    return Ok(if greater {
                        Expr::Rel(RelOp::Ge, Arith::Len, Arith::Num(n))
                    } else {
                        Expr::Rel(RelOp::Le, Arith::Len, Arith::Num(n))
                    });
                }
                _ => {}
            }
        }
        if self.is_word(0, "proto") {
            let kw = self.bump();
            return self.proto_primitive(q.proto, &kw);
        }
        match self.word() {
            Some("src") | Some("dst") => {
                let src = self.is_word(0, "src");
                self.bump();
                q.dir = Some(if src { Dir::Src } else { Dir::Dst });
                // `src or dst` / `src and dst` as one qualifier.
                let conj = if self.is_word(0, "or") {
                    Some(Dir::Either)
                } else if self.is_word(0, "and") {
                    Some(Dir::Both)
                } else {
                    None
                };
                if let Some(d) = conj {
                    if self.is_word(1, if src { "dst" } else { "src" }) {
                        self.bump();
                        self.bump();
                        q.dir = Some(d);
                    }
                }
            }
            _ => {}
        }
        match self.word() {
            Some("host") => q.kind = Some(Kind::Host),
            Some("net") => q.kind = Some(Kind::Net),
            Some("port") => q.kind = Some(Kind::Port),
            Some("portrange") => q.kind = Some(Kind::PortRange),
            _ => {}
        }
        let kw = if q.kind.is_some() {
            Some(self.bump())
        } else {
            None
        };
        if q == Quals::default() {
            // A bare id takes the previous primitive's qualifiers.
            if matches!(
                self.peek().tok,
                Tok::Num(_) | Tok::Dotted(_) | Tok::V6(_) | Tok::Mac(_)
            ) && self.last != Quals::default()
            {
                let q = self.last;
                return self.id(q, None);
            }
            let t = self.peek().clone();
            return Err(self.err_at(
                &t,
                format!(
                    "expected a filter primitive (such as 'tcp', 'host 10.0.0.1', 'port 53' or \
                     'ip[0] & 0xf != 5'), found {}",
                    Self::found(&t)
                ),
            ));
        }
        // A protocol alone: `tcp`, `ip6`.
        if q.dir.is_none() && q.kind.is_none() && !self.id_follows() {
            let p = q.proto.unwrap_or(Proto::Ether);
            return match p {
                Proto::Ether => Err(self.err_at(
                    &start,
                    "'ether' needs a qualifier: 'ether host', 'ether proto', 'ether src' ..."
                        .into(),
                )),
                _ => Ok(Expr::Prim(proto_prim(p, self.off()))),
            };
        }
        self.last = q;
        self.id(q, kw.as_ref())
    }

    /// Whether an id (address, number, name) comes next rather than a connective.
    fn id_follows(&self) -> bool {
        match &self.peek().tok {
            Tok::Num(_) | Tok::Dotted(_) | Tok::V6(_) | Tok::Mac(_) => true,
            Tok::Word(w) => !is_keyword(w),
            _ => false,
        }
    }

    fn number_after(&mut self, kw: &Token) -> Result<u32, FilterError> {
        let t = self.bump();
        match t.tok {
            Tok::Num(n) => Ok(n),
            _ => Err(self.err_at(
                &t,
                format!(
                    "expected a number after '{}', found {}",
                    kw.text,
                    Self::found(&t)
                ),
            )),
        }
    }

    fn vlan(&mut self) -> Result<Expr, FilterError> {
        let kw = self.bump();
        let off = self.off();
        let id = if let Tok::Num(n) = self.peek().tok {
            let t = self.bump();
            if n > 4095 {
                return Err(self.err_at(&t, format!("VLAN id {n} is out of range (0 to 4095)")));
            }
            Some(n as u16)
        } else if self.id_follows() {
            let t = self.peek().clone();
            return Err(self.err_at(
                &t,
                format!(
                    "expected a VLAN id (0 to 4095) after '{}', found {}",
                    kw.text,
                    Self::found(&t)
                ),
            ));
        } else {
            None
        };
        self.vlans += 1;
        Ok(Expr::Prim(Prim::Vlan { off, id }))
    }

    fn proto_primitive(&mut self, proto: Option<Proto>, kw: &Token) -> Result<Expr, FilterError> {
        let t = self.bump();
        let off = self.off();
        let bad = |s: &Self, what: &str| {
            Err(s.err_at(
                &t,
                format!(
                    "expected {what} after '{}', found {}",
                    kw.text,
                    Self::found(&t)
                ),
            ))
        };
        match proto {
            Some(Proto::Ether) => {
                let v = match &t.tok {
                    Tok::Num(n) if *n <= 0xffff => *n as u16,
                    Tok::Word(w) => match ether_proto_name(w) {
                        Some(v) => v,
                        None => return bad(self, "an EtherType (a number or ip, ip6, arp, rarp)"),
                    },
                    _ => return bad(self, "an EtherType (a number or ip, ip6, arp, rarp)"),
                };
                if v <= 1500 {
                    return Err(self.err_at(
                        &t,
                        format!(
                            "EtherType {v} is an 802.3 length; 802.2 LLC protocols are not \
                             supported"
                        ),
                    ));
                }
                Ok(Expr::Prim(Prim::EtherType(off, v)))
            }
            None | Some(Proto::Ip) | Some(Proto::Ip6) => {
                let v = match &t.tok {
                    Tok::Num(n) if *n <= 255 => *n as u8,
                    Tok::Word(w) => match ip_proto_name(w) {
                        Some(v) => v,
                        None => {
                            return bad(self, "an IP protocol (a number or tcp, udp, icmp, ...)")
                        }
                    },
                    _ => return bad(self, "an IP protocol (a number 0 to 255 or a name)"),
                };
                Ok(Expr::Prim(Prim::IpProto {
                    off,
                    v4: proto != Some(Proto::Ip6),
                    v6: proto != Some(Proto::Ip),
                    proto: v,
                }))
            }
            Some(p) => Err(self.err_at(
                kw,
                format!(
                    "'{} proto' is not supported (use ether, ip or ip6)",
                    p.name()
                ),
            )),
        }
    }

    /// The id of a qualified primitive.
    fn id(&mut self, q: Quals, kw: Option<&Token>) -> Result<Expr, FilterError> {
        let t = self.bump();
        let dir = q.dir.unwrap_or(Dir::Either);
        let off = self.off();
        let after = kw.map_or_else(String::new, |k| format!(" after '{}'", k.text));
        match q.kind {
            Some(Kind::Port) | Some(Kind::PortRange) => {
                let proto = match q.proto {
                    None => None,
                    Some(p @ (Proto::Tcp | Proto::Udp | Proto::Sctp)) => p.ip_proto(),
                    Some(p) => {
                        return Err(self.err_at(
                            &t,
                            format!(
                                "'{} port' is not valid: ports need tcp, udp or sctp",
                                p.name()
                            ),
                        ))
                    }
                };
                let port = |s: &Self, t: &Token| -> Result<u16, FilterError> {
                    match &t.tok {
                        Tok::Num(n) if *n <= 0xffff => Ok(*n as u16),
                        Tok::Num(n) => Err(s.err_at(t, format!("port {n} is out of range (0 to 65535)"))),
                        Tok::Word(w) => service(w).ok_or_else(|| {
                            s.err_at(t, format!("expected a port number{after}, found '{w}' (not a known service name)"))
                        }),
                        _ => Err(s.err_at(t, format!("expected a port number{after}, found {}", Self::found(t)))),
                    }
                };
                let lo = port(self, &t)?;
                let mut hi = lo;
                if q.kind == Some(Kind::PortRange) {
                    if !self.is_op(0, "-") {
                        let n = self.peek().clone();
                        return Err(self.err_at(
                            &n,
                            format!(
                                "expected '-' in a port range like 1024-2047, found {}",
                                Self::found(&n)
                            ),
                        ));
                    }
                    self.bump();
                    let t2 = self.bump();
                    hi = port(self, &t2)?;
                }
                let (lo, hi) = (lo.min(hi), lo.max(hi));
                Ok(Expr::Prim(Prim::Port {
                    off,
                    proto,
                    dir,
                    ranges: vec![(lo, hi)],
                }))
            }
            Some(Kind::Host) | Some(Kind::Net) | None => {
                let net_kind = q.kind == Some(Kind::Net);
                // `net 10` is the network 10.0.0.0/8.
                let tok = match (&t.tok, net_kind) {
                    (Tok::Num(n), true) => Tok::Dotted(vec![*n]),
                    (x, _) => x.clone(),
                };
                match (&tok, q.proto) {
                    (Tok::Mac(m), None | Some(Proto::Ether)) if !net_kind => {
                        Ok(Expr::Prim(Prim::EtherHost { dir, mac: *m }))
                    }
                    (_, Some(Proto::Ether)) => Err(self.err_at(
                        &t,
                        format!("expected an Ethernet address{after}, found {}", Self::found(&t)),
                    )),
                    (_, Some(p @ (Proto::Tcp | Proto::Udp | Proto::Sctp | Proto::Icmp | Proto::Icmp6 | Proto::Igmp))) => {
                        Err(self.err_at(
                            &t,
                            format!("'{}' cannot qualify a host or net (use 'ip', 'ip6', 'arp' or 'rarp', or '{} port')", p.name(), p.name()),
                        ))
                    }
                    (Tok::Dotted(parts), p) => {
                        if p == Some(Proto::Ip6) {
                            return Err(self.err_at(&t, "an IPv4 address cannot qualify 'ip6'".into()));
                        }
                        let (addr, mut len) = dotted(parts).ok_or_else(|| {
                            self.err_at(&t, format!("'{}' is not an IPv4 address", t.text))
                        })?;
                        if !net_kind {
                            if parts.len() != 4 {
                                return Err(self.err_at(&t, format!("'{}' is not a complete IPv4 address; use 'net {}' for a network", t.text, t.text)));
                            }
                            len = 32;
                        }
                        let mut mask = prefix_mask(len);
                        if net_kind {
                            if self.is_op(0, "/") {
                                self.bump();
                                let lt = self.bump();
                                match lt.tok {
                                    Tok::Num(n) if n <= 32 => mask = prefix_mask(n),
                                    _ => return Err(self.err_at(&lt, format!("expected a prefix length 0 to 32 after '/', found {}", Self::found(&lt)))),
                                }
                            } else if self.is_word(0, "mask") {
                                self.bump();
                                let mt = self.bump();
                                match &mt.tok {
                                    Tok::Dotted(p) if p.len() == 4 => {
                                        mask = dotted(p).map(|(a, _)| a).ok_or_else(|| {
                                            self.err_at(&mt, "not an IPv4 netmask".into())
                                        })?;
                                    }
                                    _ => return Err(self.err_at(&mt, format!("expected a netmask like 255.255.0.0 after 'mask', found {}", Self::found(&mt)))),
                                }
                            }
                            if addr & !mask != 0 {
                                return Err(self.err_at(&t, format!("non-network bits set in '{}'", t.text)));
                            }
                        }
                        Ok(Expr::Prim(Prim::Host {
                            off,
                            proto: p,
                            dir,
                            net: Net::V4 { addr, mask },
                        }))
                    }
                    (Tok::V6(a), p) => {
                        if matches!(p, Some(Proto::Ip | Proto::Arp | Proto::Rarp)) {
                            return Err(self.err_at(&t, format!("an IPv6 address cannot qualify '{}'", p.map_or("", Proto::name))));
                        }
                        let addr = u128::from(*a);
                        let mut mask = u128::MAX;
                        if net_kind && self.is_op(0, "/") {
                            self.bump();
                            let lt = self.bump();
                            match lt.tok {
                                Tok::Num(n) if n <= 128 => {
                                    mask = if n == 0 { 0 } else { u128::MAX << (128 - n) }
                                }
                                _ => return Err(self.err_at(&lt, format!("expected a prefix length 0 to 128 after '/', found {}", Self::found(&lt)))),
                            }
                            if addr & !mask != 0 {
                                return Err(self.err_at(&t, format!("non-network bits set in '{}'", t.text)));
                            }
                        }
                        Ok(Expr::Prim(Prim::Host {
                            off,
                            proto: Some(Proto::Ip6),
                            dir,
                            net: Net::V6 { addr, mask },
                        }))
                    }
                    (Tok::Word(w), _) => Err(self.err_at(
                        &t,
                        format!("expected an address{after}, found '{w}' (host names are not resolved: give an address)"),
                    )),
                    _ => Err(self.err_at(
                        &t,
                        format!("expected an address{after}, found {}", Self::found(&t)),
                    )),
                }
            }
        }
    }
}

/// A protocol name alone as a primitive.
fn proto_prim(p: Proto, off: Off) -> Prim {
    if let Some(t) = p.ethertype() {
        return Prim::EtherType(off, t);
    }
    match p {
        Proto::Icmp | Proto::Igmp => Prim::IpProto {
            off,
            v4: true,
            v6: false,
            proto: p.ip_proto().unwrap_or(0),
        },
        Proto::Icmp6 => Prim::IpProto {
            off,
            v4: false,
            v6: true,
            proto: p.ip_proto().unwrap_or(0),
        },
        _ => Prim::IpProto {
            off,
            v4: true,
            v6: true,
            proto: p.ip_proto().unwrap_or(0),
        },
    }
}

/// `10.1` -> (0x0a010000, 16), as libpcap reads partial dotted networks.
fn dotted(parts: &[u32]) -> Option<(u32, u32)> {
    if parts.is_empty() || parts.len() > 4 || parts.iter().any(|&p| p > 255) {
        return None;
    }
    let mut addr = 0u32;
    for &p in parts {
        addr = (addr << 8) | p;
    }
    let n = parts.len() as u32;
    Some((addr << (8 * (4 - n)), 8 * n))
}

fn prefix_mask(len: u32) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    }
}

/// An IPv6 address as four 32-bit words, most significant first.
pub(crate) fn words(v: u128) -> [u32; 4] {
    [
        (v >> 96) as u32,
        (v >> 64) as u32,
        (v >> 32) as u32,
        v as u32,
    ]
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
