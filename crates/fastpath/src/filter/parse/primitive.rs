//! Primitives: the qualifiers (`tcp`, `src`, `host`, ...), the keyword primitives (`vlan`,
//! `greater`, `broadcast`, ...), `proto` and a protocol name alone. The id after the qualifiers
//! is read in `hosts.rs`.

use super::names::{ether_proto_name, ip_proto_name, is_keyword};
use super::{Arith, Dir, Expr, FilterError, Kind, Off, Parser, Prim, Proto, Quals, RelOp};
use crate::filter::lex::{Tok, Token};

impl Parser<'_> {
    /// A qualified primitive (`tcp`, `src host 10.0.0.1`, `vlan 100`, `greater 64`, ...).
    pub(super) fn primitive(&mut self) -> Result<Expr, FilterError> {
        let start = self.peek().clone();
        let mut q = Quals::default();
        if let Some(p) = self.word().and_then(Proto::from_word) {
            q.proto = Some(p);
            self.bump();
        }
        if let Some(e) = self.keyword_primitive(q.proto)? {
            return Ok(e);
        }
        if self.is_word(0, "proto") {
            let kw = self.bump();
            return self.proto_primitive(q.proto, &kw);
        }
        q.dir = self.direction();
        q.kind = self.kind();
        let kw = if q.kind.is_some() {
            Some(self.bump())
        } else {
            None
        };
        if q == Quals::default() {
            return self.unqualified_id();
        }
        // A protocol alone: `tcp`, `ip6`.
        if q.dir.is_none() && q.kind.is_none() && !self.id_follows() {
            return self.proto_alone(q.proto, &start);
        }
        self.last = q;
        self.id(q, kw.as_ref())
    }

    /// Keywords that take no further qualifiers: `[ether] broadcast`, `[ether] multicast`, and,
    /// without a protocol, `vlan`, `greater`, `less`. `None` if the cursor is at none of them.
    fn keyword_primitive(&mut self, proto: Option<Proto>) -> Result<Option<Expr>, FilterError> {
        if proto.is_none() || proto == Some(Proto::Ether) {
            match self.word() {
                Some("broadcast") => {
                    self.bump();
                    return Ok(Some(Expr::Prim(Prim::EtherBroadcast)));
                }
                Some("multicast") => {
                    self.bump();
                    return Ok(Some(Expr::Prim(Prim::EtherMulticast)));
                }
                _ => {}
            }
        }
        if proto.is_none() {
            match self.word() {
                Some("vlan") => return self.vlan().map(Some),
                Some(w @ ("greater" | "less")) => {
                    let greater = w == "greater";
                    let kw = self.bump();
                    let n = self.number_after(&kw)?;
                    return Ok(Some(if greater {
                        Expr::Rel(RelOp::Ge, Arith::Len, Arith::Num(n))
                    } else {
                        Expr::Rel(RelOp::Le, Arith::Len, Arith::Num(n))
                    }));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// `src`, `dst`, `src or dst`, `src and dst` at the cursor, consumed; `None` if none.
    fn direction(&mut self) -> Option<Dir> {
        if !matches!(self.word(), Some("src") | Some("dst")) {
            return None;
        }
        let src = self.is_word(0, "src");
        self.bump();
        let mut dir = if src { Dir::Src } else { Dir::Dst };
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
                dir = d;
            }
        }
        Some(dir)
    }

    /// `host`, `net`, `port` or `portrange` at the cursor (not consumed).
    fn kind(&self) -> Option<Kind> {
        match self.word() {
            Some("host") => Some(Kind::Host),
            Some("net") => Some(Kind::Net),
            Some("port") => Some(Kind::Port),
            Some("portrange") => Some(Kind::PortRange),
            _ => None,
        }
    }

    /// No qualifier at all: an id takes the previous primitive's qualifiers (`port 53 or 80`);
    /// anything else is not a primitive.
    fn unqualified_id(&mut self) -> Result<Expr, FilterError> {
        if matches!(
            self.peek().tok,
            Tok::Num(_) | Tok::Dotted(_) | Tok::V6(_) | Tok::Mac(_)
        ) && self.last != Quals::default()
        {
            let q = self.last;
            return self.id(q, None);
        }
        let t = self.peek().clone();
        Err(self.err_at(
            &t,
            format!(
                "expected a filter primitive (such as 'tcp', 'host 10.0.0.1', 'port 53' or \
                 'ip[0] & 0xf != 5'), found {}",
                Self::found(&t)
            ),
        ))
    }

    /// A protocol qualifier alone (`tcp`, `ip6`); `ether` alone is an error at `start`.
    fn proto_alone(&self, proto: Option<Proto>, start: &Token) -> Result<Expr, FilterError> {
        let p = proto.unwrap_or(Proto::Ether);
        match p {
            Proto::Ether => Err(self.err_at(
                start,
                "'ether' needs a qualifier: 'ether host', 'ether proto', 'ether src' ...".into(),
            )),
            _ => Ok(Expr::Prim(proto_prim(p, self.off()))),
        }
    }

    /// Whether an id (address, number, name) comes next rather than a connective.
    pub(super) fn id_follows(&self) -> bool {
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
