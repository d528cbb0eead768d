//! The id of a qualified primitive: a port or port range, an IPv4 or IPv6 host or network
//! (`/len`, `mask M`), or a MAC address.

use super::names::service;
use super::{Dir, Expr, FilterError, Kind, Net, Off, Parser, Prim, Proto, Quals};
use crate::filter::lex::{Tok, Token};

impl Parser<'_> {
    /// The id of a qualified primitive.
    pub(super) fn id(&mut self, q: Quals, kw: Option<&Token>) -> Result<Expr, FilterError> {
        let t = self.bump();
        let dir = q.dir.unwrap_or(Dir::Either);
        let off = self.off();
        let after = kw.map_or_else(String::new, |k| format!(" after '{}'", k.text));
        match q.kind {
            Some(Kind::Port) | Some(Kind::PortRange) => self.port_id(q, &t, dir, off, &after),
            Some(Kind::Host) | Some(Kind::Net) | None => self.host_id(q, &t, dir, off, &after),
        }
    }

    /// `[tcp|udp|sctp] [dir] port N` or `portrange N-M`, `t` being the first number (or name).
    fn port_id(
        &mut self,
        q: Quals,
        t: &Token,
        dir: Dir,
        off: Off,
        after: &str,
    ) -> Result<Expr, FilterError> {
        let proto = match q.proto {
            None => None,
            Some(p @ (Proto::Tcp | Proto::Udp | Proto::Sctp)) => p.ip_proto(),
            Some(p) => {
                return Err(self.err_at(
                    t,
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
                    s.err_at(
                        t,
                        format!(
                            "expected a port number{after}, found '{w}' (not a known service name)"
                        ),
                    )
                }),
                _ => Err(s.err_at(
                    t,
                    format!("expected a port number{after}, found {}", Self::found(t)),
                )),
            }
        };
        let lo = port(self, t)?;
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

    /// `[ether|ip|ip6|arp|rarp] [dir] host|net ADDRESS` (or an id without a kind), `t` being
    /// the address.
    fn host_id(
        &mut self,
        q: Quals,
        t: &Token,
        dir: Dir,
        off: Off,
        after: &str,
    ) -> Result<Expr, FilterError> {
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
                t,
                format!("expected an Ethernet address{after}, found {}", Self::found(t)),
            )),
            (_, Some(p @ (Proto::Tcp | Proto::Udp | Proto::Sctp | Proto::Icmp | Proto::Icmp6 | Proto::Igmp))) => {
                Err(self.err_at(
                    t,
                    format!("'{}' cannot qualify a host or net (use 'ip', 'ip6', 'arp' or 'rarp', or '{} port')", p.name(), p.name()),
                ))
            }
            (Tok::Dotted(parts), p) => self.ipv4_id(parts, p, net_kind, t, dir, off),
            (Tok::V6(a), p) => self.ipv6_id(u128::from(*a), p, net_kind, t, dir, off),
            (Tok::Word(w), _) => Err(self.err_at(
                t,
                format!("expected an address{after}, found '{w}' (host names are not resolved: give an address)"),
            )),
            _ => Err(self.err_at(
                t,
                format!("expected an address{after}, found {}", Self::found(t)),
            )),
        }
    }

    /// An IPv4 host (all four parts) or network (`net 10.1`, `/len`, `mask M`) from the dotted
    /// `parts` of token `t`.
    fn ipv4_id(
        &mut self,
        parts: &[u32],
        p: Option<Proto>,
        net_kind: bool,
        t: &Token,
        dir: Dir,
        off: Off,
    ) -> Result<Expr, FilterError> {
        if p == Some(Proto::Ip6) {
            return Err(self.err_at(t, "an IPv4 address cannot qualify 'ip6'".into()));
        }
        let (addr, mut len) = dotted(parts)
            .ok_or_else(|| self.err_at(t, format!("'{}' is not an IPv4 address", t.text)))?;
        if !net_kind {
            if parts.len() != 4 {
                return Err(self.err_at(
                    t,
                    format!(
                        "'{}' is not a complete IPv4 address; use 'net {}' for a network",
                        t.text, t.text
                    ),
                ));
            }
            len = 32;
        }
        let mut mask = prefix_mask(len);
        if net_kind {
            mask = self.ipv4_netmask(mask)?;
            if addr & !mask != 0 {
                return Err(self.err_at(t, format!("non-network bits set in '{}'", t.text)));
            }
        }
        Ok(Expr::Prim(Prim::Host {
            off,
            proto: p,
            dir,
            net: Net::V4 { addr, mask },
        }))
    }

    /// An IPv4 network's `/len` or `mask M` at the cursor, consumed; `mask` (the one the dotted
    /// form implies) if neither follows.
    fn ipv4_netmask(&mut self, mask: u32) -> Result<u32, FilterError> {
        if self.is_op(0, "/") {
            self.bump();
            let lt = self.bump();
            match lt.tok {
                Tok::Num(n) if n <= 32 => Ok(prefix_mask(n)),
                _ => Err(self.err_at(
                    &lt,
                    format!(
                        "expected a prefix length 0 to 32 after '/', found {}",
                        Self::found(&lt)
                    ),
                )),
            }
        } else if self.is_word(0, "mask") {
            self.bump();
            let mt = self.bump();
            match &mt.tok {
                Tok::Dotted(p) if p.len() == 4 => dotted(p)
                    .map(|(a, _)| a)
                    .ok_or_else(|| self.err_at(&mt, "not an IPv4 netmask".into())),
                _ => Err(self.err_at(
                    &mt,
                    format!(
                        "expected a netmask like 255.255.0.0 after 'mask', found {}",
                        Self::found(&mt)
                    ),
                )),
            }
        } else {
            Ok(mask)
        }
    }

    /// An IPv6 host or (`net A/len`) network `addr` from token `t`.
    fn ipv6_id(
        &mut self,
        addr: u128,
        p: Option<Proto>,
        net_kind: bool,
        t: &Token,
        dir: Dir,
        off: Off,
    ) -> Result<Expr, FilterError> {
        if matches!(p, Some(Proto::Ip | Proto::Arp | Proto::Rarp)) {
            return Err(self.err_at(
                t,
                format!(
                    "an IPv6 address cannot qualify '{}'",
                    p.map_or("", Proto::name)
                ),
            ));
        }
        let mut mask = u128::MAX;
        if net_kind && self.is_op(0, "/") {
            self.bump();
            let lt = self.bump();
            match lt.tok {
                Tok::Num(n) if n <= 128 => mask = if n == 0 { 0 } else { u128::MAX << (128 - n) },
                _ => {
                    return Err(self.err_at(
                        &lt,
                        format!(
                            "expected a prefix length 0 to 128 after '/', found {}",
                            Self::found(&lt)
                        ),
                    ))
                }
            }
            if addr & !mask != 0 {
                return Err(self.err_at(t, format!("non-network bits set in '{}'", t.text)));
            }
        }
        Ok(Expr::Prim(Prim::Host {
            off,
            proto: Some(Proto::Ip6),
            dir,
            net: Net::V6 { addr, mask },
        }))
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
