//! Primitives: the qualifiers (`tcp`, `src`, `host`, ...), the keyword primitives
//! (`broadcast`, `greater`, `llc`, `inbound`, ...), `proto` and a protocol name alone. The id
//! after the qualifiers is read in `hosts.rs`; the keywords that move the offsets in `encap.rs`.

use super::names::{ip_proto_name, is_keyword, link_proto_name, osi_proto_name};
use super::{
    Arith, Dir, Expr, FilterError, Kind, LinkKind, Llc, Parser, Prim, Proto, Quals, RelOp,
};
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
        if let Some(e) = self.keyword_primitive(q.proto, &start)? {
            return Ok(e);
        }
        if self.is_word(0, "proto") {
            let kw = self.bump();
            q.kind = Some(Kind::Proto);
            // `ip proto 6 or 17`: the next id is a protocol too.
            self.last = q;
            return self.proto_primitive(q.proto, &start, &kw);
        }
        if let Some(w @ ("protochain" | "gateway")) = self.word() {
            let t = self.peek().clone();
            let why = if w == "gateway" {
                "'gateway' is not supported: it needs host names resolved to Ethernet and IP \
                 addresses (use 'ether host MAC and not host IP')"
            } else {
                "'protochain' is not supported (use 'ip proto' or 'ip6 proto')"
            };
            return Err(self.err_at(&t, why.into()));
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
        // A protocol alone: `tcp`, `ip6`, `isis`.
        if q.dir.is_none() && q.kind.is_none() && !self.id_follows() {
            return self.proto_alone(q.proto, &start);
        }
        self.last = q;
        self.id(q, kw.as_ref())
    }

    /// Keywords that make a primitive of their own: `[ether|ip|ip6] broadcast|multicast`, and,
    /// without a protocol, `vlan`, `mpls`, `pppoed`, `pppoes`, `geneve`, `vxlan`, `llc`,
    /// `inbound`, `outbound`, `greater`, `less`. `None` if the cursor is at none of them.
    fn keyword_primitive(
        &mut self,
        proto: Option<Proto>,
        start: &Token,
    ) -> Result<Option<Expr>, FilterError> {
        match self.word() {
            Some("broadcast") => {
                let kw = self.bump();
                return self.broadcast(proto, &kw).map(Some);
            }
            Some("multicast") => {
                let kw = self.bump();
                return self.multicast(proto, &kw).map(Some);
            }
            _ => {}
        }
        if proto.is_some() {
            return Ok(None);
        }
        let Some(w) = self.word().map(str::to_owned) else {
            return Ok(None);
        };
        let w = w.as_str();
        Ok(Some(match w {
            "vlan" => self.vlan()?,
            "mpls" => self.mpls()?,
            "pppoed" => {
                let kw = self.bump();
                self.link_proto(&kw, 0x8863)?
            }
            "pppoes" => self.pppoes()?,
            "geneve" => self.tunnel(super::Tunnel::Geneve)?,
            "vxlan" => self.tunnel(super::Tunnel::Vxlan)?,
            "llc" => self.llc()?,
            "inbound" | "outbound" => {
                if self.env.savefile {
                    return Err(self.err_at(
                        start,
                        "inbound/outbound not supported on Ethernet when reading savefiles (a \
                         file keeps no packet direction)"
                            .into(),
                    ));
                }
                self.bump();
                Expr::Prim(Prim::Outbound(w == "outbound"))
            }
            "greater" | "less" => {
                let greater = w == "greater";
                let kw = self.bump();
                let n = self.number_after(&kw)?;
                if greater {
                    Expr::Rel(RelOp::Ge, Arith::Len, Arith::Num(n))
                } else {
                    Expr::Rel(RelOp::Le, Arith::Len, Arith::Num(n))
                }
            }
            "ifindex" | "byte" | "radio" => {
                return Err(self.err_at(
                    start,
                    format!(
                        "'{w}' is not supported{}",
                        if w == "ifindex" {
                            " (capture on that interface with -i instead)"
                        } else {
                            ""
                        }
                    ),
                ))
            }
            _ => return Ok(None),
        }))
    }

    /// `[ether|ip] broadcast`.
    fn broadcast(&mut self, proto: Option<Proto>, kw: &Token) -> Result<Expr, FilterError> {
        match proto {
            None | Some(Proto::Ether) => {
                self.ether_ok(kw, "not a broadcast link")?;
                Ok(Expr::Prim(Prim::EtherBroadcast(self.off)))
            }
            Some(Proto::Ip) => {
                let Some(netmask) = self.env.netmask else {
                    return Err(self.err_at(
                        kw,
                        "netmask not known, so 'ip broadcast' not supported (it needs the \
                         capture interface's IPv4 netmask)"
                            .into(),
                    ));
                };
                self.need(kw, 0x0800)?;
                Ok(Expr::Prim(Prim::IpBroadcast {
                    off: self.off,
                    netmask,
                }))
            }
            Some(_) => Err(self.err_at(
                kw,
                "only link-layer and IP broadcast filters are supported ('ether broadcast', \
                 'ip broadcast')"
                    .into(),
            )),
        }
    }

    /// `[ether|ip|ip6] multicast`.
    fn multicast(&mut self, proto: Option<Proto>, kw: &Token) -> Result<Expr, FilterError> {
        match proto {
            None | Some(Proto::Ether) => {
                self.ether_ok(kw, "not a multicast link")?;
                Ok(Expr::Prim(Prim::EtherMulticast(self.off)))
            }
            Some(p @ (Proto::Ip | Proto::Ip6)) => {
                let v6 = p == Proto::Ip6;
                self.need(kw, if v6 { 0x86dd } else { 0x0800 })?;
                Ok(Expr::Prim(Prim::IpMulticast { off: self.off, v6 }))
            }
            Some(_) => Err(self.err_at(
                kw,
                "only link-layer, IP and IPv6 multicast filters are supported ('ether \
                 multicast', 'ip multicast', 'ip6 multicast')"
                    .into(),
            )),
        }
    }

    /// Refuses an Ethernet-address primitive where there is no Ethernet header (inside a
    /// PPPoE session).
    pub(super) fn ether_ok(&self, t: &Token, what: &str) -> Result<(), FilterError> {
        if self.off.kind == LinkKind::Ppp {
            return Err(self.err_at(
                t,
                format!("{what}: after 'pppoes' the packet is PPP, without Ethernet addresses"),
            ));
        }
        Ok(())
    }

    /// Refuses a test for link-layer protocol `ll` where the link layer cannot tell it (inside
    /// an MPLS label stack only IPv4 and IPv6 can be told apart), as libpcap does.
    pub(super) fn need(&self, t: &Token, ll: u32) -> Result<(), FilterError> {
        if self.off.kind == LinkKind::Mpls && ll != 0x0800 && ll != 0x86dd {
            return Err(self.err_at(
                t,
                "unsupported protocol over mpls (inside MPLS only IPv4 and IPv6 can be told \
                 apart)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The link-layer protocol test `ll` at the current offsets.
    pub(super) fn link_proto(&self, t: &Token, ll: u32) -> Result<Expr, FilterError> {
        self.need(t, ll)?;
        Ok(Expr::Prim(Prim::LinkProto(self.off, ll)))
    }

    /// `src`, `dst`, `src or dst`, `src and dst` (either order) at the cursor, consumed;
    /// `None` if none.
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
        let id = match &self.peek().tok {
            Tok::Num(_) | Tok::Dotted(_) | Tok::V6(_) | Tok::Mac(_) | Tok::Name(_) => true,
            // `port domain or smtp`: a name, not a keyword.
            Tok::Word(w) => !is_keyword(w) && named_constant_free(w),
            _ => false,
        };
        if id && self.last != Quals::default() {
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

    /// A protocol qualifier alone (`tcp`, `ip6`, `isis`, `l1`); `ether` alone is an error at
    /// `start`.
    fn proto_alone(&self, proto: Option<Proto>, start: &Token) -> Result<Expr, FilterError> {
        let p = proto.unwrap_or(Proto::Ether);
        if p == Proto::Ether {
            return Err(self.err_at(
                start,
                "'ether' needs a qualifier: 'ether host', 'ether proto', 'ether src' ...".into(),
            ));
        }
        if let Some(ll) = p.link_proto() {
            return self.link_proto(start, ll);
        }
        if let Some(ip) = p.ip_proto() {
            let (v4, v6) = p.ip_versions();
            if v4 {
                self.need(start, 0x0800)?;
            }
            if v6 {
                self.need(start, 0x86dd)?;
            }
            return Ok(Expr::Prim(Prim::IpProto {
                off: self.off,
                v4,
                v6,
                proto: ip,
            }));
        }
        self.need(start, u32::from(super::LLCSAP_ISONS))?;
        // The OSI protocols and the IS-IS PDU types (libpcap lists the PDU types of each name
        // last first).
        let osi = |proto| {
            Expr::Prim(Prim::OsiProto {
                off: self.off,
                isis: false,
                proto,
            })
        };
        let isis = |types: &[u8]| {
            let v: Vec<Expr> = types
                .iter()
                .map(|&proto| {
                    Expr::Prim(Prim::OsiProto {
                        off: self.off,
                        isis: true,
                        proto,
                    })
                })
                .collect();
            Expr::Or(v)
        };
        Ok(match p {
            Proto::Esis => osi(0x82),
            Proto::Isis => osi(0x83),
            Proto::Clnp => osi(0x81),
            Proto::IsisL1 => isis(&[26, 24, 18, 15, 17]),
            Proto::IsisL2 => isis(&[27, 25, 20, 16, 17]),
            Proto::Iih => isis(&[17, 15, 16]),
            Proto::Lsp => isis(&[18, 20]),
            Proto::Snp => isis(&[27, 26, 24, 25]),
            Proto::Csnp => isis(&[24, 25]),
            Proto::Psnp => isis(&[26, 27]),
            _ => unreachable!("every protocol qualifier is a link, IP or OSI protocol"),
        })
    }

    /// Whether an id (address, number, name) comes next rather than a connective.
    pub(super) fn id_follows(&self) -> bool {
        match &self.peek().tok {
            Tok::Num(_) | Tok::Dotted(_) | Tok::V6(_) | Tok::Mac(_) | Tok::Name(_) => true,
            Tok::Word(w) => !is_keyword(w),
            _ => false,
        }
    }

    pub(super) fn number_after(&mut self, kw: &Token) -> Result<u32, FilterError> {
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

    /// `llc`, `llc i|s|u`, `llc rr|rnr|rej` (supervisory kinds), `llc ui|ua|disc|dm|sabme|
    /// test|xid|frmr` (unnumbered kinds).
    fn llc(&mut self) -> Result<Expr, FilterError> {
        let kw = self.bump();
        if self.off.kind == LinkKind::Ppp {
            return Err(self.err_at(
                &kw,
                "'llc' is not supported after 'pppoes' (the packet is PPP, not 802.2)".into(),
            ));
        }
        let (name, t) = match &self.peek().tok {
            Tok::Word(w) if !is_keyword(w) => (w.to_ascii_lowercase(), self.peek().clone()),
            Tok::Name(w) => (w.to_ascii_lowercase(), self.peek().clone()),
            _ => return Ok(Expr::Prim(Prim::Llc(self.off, Llc::Any))),
        };
        let llc = match name.as_str() {
            "i" => Llc::I,
            "s" => Llc::S(None),
            "u" => Llc::U(None),
            "rr" => Llc::S(Some(0x01)),
            "rnr" => Llc::S(Some(0x05)),
            "rej" => Llc::S(Some(0x09)),
            "ui" => Llc::U(Some(0x03)),
            "ua" => Llc::U(Some(0x63)),
            "disc" => Llc::U(Some(0x43)),
            "dm" => Llc::U(Some(0x0f)),
            "sabme" => Llc::U(Some(0x6f)),
            "test" => Llc::U(Some(0xe3)),
            "xid" => Llc::U(Some(0xaf)),
            "frmr" => Llc::U(Some(0x87)),
            _ => {
                return Err(self.err_at(
                    &t,
                    format!(
                        "unknown LLC type name \"{}\" (use i, s, u, rr, rnr, rej, ui, ua, \
                         disc, dm, sabme, test, xid or frmr)",
                        t.text
                    ),
                ))
            }
        };
        self.bump();
        Ok(Expr::Prim(Prim::Llc(self.off, llc)))
    }

    /// `[ether|ip|ip6|iso|isis] proto N` (`start` is the protocol qualifier, `kw` is `proto`).
    pub(super) fn proto_primitive(
        &mut self,
        proto: Option<Proto>,
        start: &Token,
        kw: &Token,
    ) -> Result<Expr, FilterError> {
        let t = self.bump();
        let name = match &t.tok {
            Tok::Word(w) | Tok::Name(w) => Some(w.clone()),
            _ => None,
        };
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
                let v = match (&t.tok, &name) {
                    (Tok::Num(n), _) if *n <= 0xffff => *n,
                    (_, Some(w)) => match link_proto_name(w) {
                        Some(v) => v,
                        None => {
                            return Err(self.err_at(
                                &t,
                                format!(
                                    "unknown ether proto '{w}' (give a number, or one of ip, \
                                     ip6, arp, rarp, atalk, aarp, decnet, lat, sca, moprc, \
                                     mopdl, loopback, iso, stp, ipx, netbeui)"
                                ),
                            ))
                        }
                    },
                    _ => return bad(self, "an EtherType (0 to 65535) or a protocol name"),
                };
                self.link_proto(&t, v)
            }
            None | Some(Proto::Ip) | Some(Proto::Ip6) => {
                let v = match (&t.tok, &name) {
                    (Tok::Num(n), _) if *n <= 255 => *n as u8,
                    (_, Some(w)) => match ip_proto_name(w) {
                        Some(v) => v,
                        None => {
                            return Err(self.err_at(
                                &t,
                                format!("unknown ip proto '{w}' (give a number 0 to 255)"),
                            ))
                        }
                    },
                    _ => return bad(self, "an IP protocol (a number 0 to 255 or a name)"),
                };
                let (v4, v6) = (proto != Some(Proto::Ip6), proto != Some(Proto::Ip));
                if v4 {
                    self.need(&t, 0x0800)?;
                }
                if v6 {
                    self.need(&t, 0x86dd)?;
                }
                Ok(Expr::Prim(Prim::IpProto {
                    off: self.off,
                    v4,
                    v6,
                    proto: v,
                }))
            }
            Some(p @ (Proto::Iso | Proto::Isis)) => {
                let v = match (&t.tok, &name) {
                    (Tok::Num(n), _) if *n <= 255 => *n as u8,
                    (_, Some(w)) if p == Proto::Iso => match osi_proto_name(w) {
                        Some(v) => v,
                        None => {
                            return Err(self.err_at(
                                &t,
                                format!("unknown osi proto '{w}' (use clnp, esis or isis)"),
                            ))
                        }
                    },
                    _ => return bad(self, "a number 0 to 255"),
                };
                self.need(&t, u32::from(super::LLCSAP_ISONS))?;
                Ok(Expr::Prim(Prim::OsiProto {
                    off: self.off,
                    isis: p == Proto::Isis,
                    proto: v,
                }))
            }
            Some(p) => Err(self.err_at(
                start,
                format!(
                    "'{} proto' is not valid: {} does not carry a protocol number (use \
                     ether, ip, ip6, iso or isis proto)",
                    p.name(),
                    p.name()
                ),
            )),
        }
    }

    /// Checks the protocol of `proto[...]` and builds the load at the current offsets.
    pub(super) fn load(
        &self,
        proto: Proto,
        t: &Token,
        index: Arith,
        size: u8,
    ) -> Result<Arith, FilterError> {
        let indexable = matches!(
            proto,
            Proto::Ether
                | Proto::Ip
                | Proto::Ip6
                | Proto::Arp
                | Proto::Rarp
                | Proto::Atalk
                | Proto::Decnet
                | Proto::Sca
                | Proto::Lat
                | Proto::Moprc
                | Proto::Mopdl
                | Proto::Tcp
                | Proto::Udp
                | Proto::Sctp
                | Proto::Icmp
                | Proto::Igmp
                | Proto::Igrp
                | Proto::Pim
                | Proto::Vrrp
                | Proto::Carp
                | Proto::Icmp6
        );
        if !indexable {
            return Err(self.err_at(
                t,
                format!("'{}' does not support the index operation", proto.name()),
            ));
        }
        if let Some(ll) = proto.link_proto() {
            self.need(t, ll)?;
        }
        if proto.ip_proto().is_some() {
            self.need(
                t,
                if proto == Proto::Icmp6 {
                    0x86dd
                } else {
                    0x0800
                },
            )?;
        }
        Ok(Arith::Load {
            proto,
            off: self.off,
            index: Box::new(index),
            size,
        })
    }
}

/// Whether `w` is not one of the named constants (`tcp-syn`), which start a relation.
fn named_constant_free(w: &str) -> bool {
    super::names::named_constant(w).is_none()
}
