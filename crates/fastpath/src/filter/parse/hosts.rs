//! The id of a qualified primitive: a port or port range, an IPv4, IPv6 or DECnet host or
//! network (`/len`, `mask M`), or a MAC address.

use super::names::{service, Over};
use super::{Dir, Expr, FilterError, Kind, LinkKind, Net, Off, Parser, Prim, Proto, Quals};
use crate::filter::lex::{Tok, Token};

impl Parser<'_> {
    /// The id of a qualified primitive.
    pub(super) fn id(&mut self, q: Quals, kw: Option<&Token>) -> Result<Expr, FilterError> {
        if q.kind == Some(Kind::Proto) {
            // An id after `ip proto 6 or`: the same qualifiers.
            let at = self.peek().clone();
            return self.proto_primitive(q.proto, &at, &at);
        }
        let t = self.bump();
        let dir = q.dir.unwrap_or(Dir::Either);
        let off = self.off;
        let after = kw.map_or_else(String::new, |k| format!(" after '{}'", k.text));
        match q.kind {
            Some(Kind::Port) | Some(Kind::PortRange) => self.port_id(q, &t, dir, off, &after),
            Some(Kind::Host) | Some(Kind::Net) | Some(Kind::Proto) | None => {
                self.host_id(q, &t, dir, off, &after)
            }
        }
    }

    /// `[tcp|udp|sctp] [dir] port N|NAME` or `portrange N-M|NAME-NAME|N`, `t` being the first
    /// number or name.
    fn port_id(
        &mut self,
        q: Quals,
        t: &Token,
        dir: Dir,
        off: Off,
        after: &str,
    ) -> Result<Expr, FilterError> {
        let qual = match q.proto {
            None => None,
            Some(p @ (Proto::Tcp | Proto::Udp | Proto::Sctp)) => Some(p),
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
        self.need(t, 0x0800)?;
        self.need(t, 0x86dd)?;
        let range = q.kind == Some(Kind::PortRange);
        // A number, or a service name and the transport protocols it is registered for.
        let port =
            |s: &Self, t: &Token, w: Option<&str>| -> Result<(u16, Option<Over>), FilterError> {
                match (&t.tok, w) {
                    (Tok::Num(n), _) if *n <= 0xffff => Ok((*n as u16, None)),
                    (Tok::Num(n), _) => {
                        Err(s.err_at(t, format!("port {n} is out of range (0 to 65535)")))
                    }
                    (_, Some(w)) => match w.parse::<u16>() {
                        Ok(n) => Ok((n, None)),
                        Err(_) => service(w).map(|(n, o)| (n, Some(o))).ok_or_else(|| {
                            s.err_at(
                                t,
                                format!(
                                    "expected a port number{after}, found '{w}' (not a known \
                                 service name)"
                                ),
                            )
                        }),
                    },
                    _ => Err(s.err_at(
                        t,
                        format!("expected a port number{after}, found {}", Self::found(t)),
                    )),
                }
            };
        let word = match &t.tok {
            Tok::Word(w) | Tok::Name(w) => Some(w.as_str()),
            _ => None,
        };
        let (lo, hi, over) = match word.and_then(|w| w.split_once('-')) {
            // `portrange smtp-domain`: one word, two service names.
            Some((a, b)) if range && service(word.unwrap_or("")).is_none() => {
                let (lo, o1) = port(self, t, Some(a))?;
                let (hi, o2) = port(self, t, Some(b))?;
                let over = match (o1, o2) {
                    (Some(x), Some(y)) if x == y => Some(x),
                    (None, None) => None,
                    _ => Some(Over::Both),
                };
                (lo, hi, over)
            }
            _ => {
                let (lo, o1) = port(self, t, word)?;
                if range && self.is_op(0, "-") {
                    self.bump();
                    let t2 = self.bump();
                    let w2 = match &t2.tok {
                        Tok::Word(w) | Tok::Name(w) => Some(w.clone()),
                        _ => None,
                    };
                    let (hi, o2) = port(self, &t2, w2.as_deref())?;
                    let over = match (o1, o2) {
                        (Some(x), Some(y)) if x == y => Some(x),
                        (None, None) => None,
                        _ => Some(Over::Both),
                    };
                    (lo, hi, over)
                } else {
                    // `port 53`, and `portrange 53` (a range of one port).
                    (lo, lo, o1)
                }
            }
        };
        // A name registered for one protocol only means that protocol (libpcap: `port ssh`
        // is `tcp port 22`); qualified by another, it is an error.
        let what = if range { "port in range" } else { "port" };
        let protos = match (qual, over) {
            (Some(p), Some(o))
                if (p == Proto::Tcp && o == Over::Udp)
                    || (p == Proto::Udp && o == Over::Tcp)
                    || (p == Proto::Sctp && o != Over::Both) =>
            {
                let is = if o == Over::Udp { "udp" } else { "tcp" };
                return Err(self.err_at(t, format!("{what} '{}' is {is}", t.text)));
            }
            (Some(p), _) => vec![p.ip_proto().unwrap_or(0)],
            (None, Some(Over::Tcp)) => vec![6],
            (None, Some(Over::Udp)) => vec![17],
            (None, _) => vec![132, 6, 17],
        };
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        Ok(Expr::Prim(Prim::Port {
            off,
            protos,
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
        // `net 10` is the network 10.0.0.0/8; `host 10` is the host 0.0.0.10.
        let tok = match (&t.tok, net_kind) {
            (Tok::Num(n), true) => Tok::Dotted(vec![*n]),
            (x, _) => x.clone(),
        };
        match (&tok, q.proto) {
            (Tok::Mac(m), None | Some(Proto::Ether)) if !net_kind => {
                self.ether_ok(t, "Ethernet addresses are not supported here")?;
                Ok(Expr::Prim(Prim::EtherHost { off, dir, mac: *m }))
            }
            (_, Some(Proto::Ether)) => Err(self.err_at(
                t,
                format!("expected an Ethernet address{after}, found {}", Self::found(t)),
            )),
            (Tok::Dotted(parts), Some(Proto::Decnet)) if parts.len() == 2 => {
                self.need(t, 0x6003)?;
                // AREA.NODE: 6 bits of area, 10 of node, stored little-endian.
                let a = ((parts[0] << 10) & 0xfc00) | (parts[1] & 0x3ff);
                Ok(Expr::Prim(Prim::DecnetHost {
                    off,
                    dir,
                    addr: (a as u16).swap_bytes(),
                }))
            }
            (_, Some(Proto::Decnet)) => Err(self.err_at(
                t,
                format!("expected a DECnet address like 50.764 (area.node){after}, found {}", Self::found(t)),
            )),
            (_, Some(p)) if !matches!(p, Proto::Ip | Proto::Ip6 | Proto::Arp | Proto::Rarp) => {
                Err(self.err_at(
                    t,
                    format!(
                        "'{}' cannot qualify a host or net (use 'ip', 'ip6', 'arp' or 'rarp'{})",
                        p.name(),
                        if p.ip_proto().is_some() { format!(", or '{} port'", p.name()) } else { String::new() }
                    ),
                ))
            }
            (Tok::Num(n), p) => self.ipv4_host(u64::from(*n) as u32, u32::MAX, p, t, dir, off),
            (Tok::Dotted(parts), p) => self.ipv4_id(parts, p, net_kind, t, dir, off),
            (Tok::V6(a), p) => self.ipv6_id(u128::from(*a), p, net_kind, t, dir, off),
            (Tok::Word(w) | Tok::Name(w), _) => Err(self.err_at(
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
        let (addr, len) = dotted(parts)
            .ok_or_else(|| self.err_at(t, format!("'{}' is not an IPv4 address", t.text)))?;
        // A partial address (`10.1`) is a network, with or without `net`, as in libpcap.
        let mut mask = prefix_mask(len);
        if net_kind {
            mask = self.ipv4_netmask(mask)?;
            if addr & !mask != 0 {
                return Err(self.err_at(t, format!("non-network bits set in '{}'", t.text)));
            }
        }
        self.ipv4_host(addr, mask, p, t, dir, off)
    }

    /// `[ip|arp|rarp] [dir] host|net` of an IPv4 `addr` under `mask`.
    fn ipv4_host(
        &self,
        addr: u32,
        mask: u32,
        p: Option<Proto>,
        t: &Token,
        dir: Dir,
        off: Off,
    ) -> Result<Expr, FilterError> {
        if p == Some(Proto::Ip6) {
            return Err(self.err_at(t, "an IPv4 address cannot qualify 'ip6'".into()));
        }
        // Inside MPLS, libpcap looks for IPv4 hosts in IPv4 only (not ARP and RARP).
        let p = match (p, off.kind) {
            (None, LinkKind::Mpls) => Some(Proto::Ip),
            (p, _) => p,
        };
        for ll in match p {
            Some(Proto::Ip) => &[0x0800][..],
            Some(Proto::Arp) => &[0x0806],
            Some(Proto::Rarp) => &[0x8035],
            _ => &[0x0800, 0x0806, 0x8035],
        } {
            self.need(t, *ll)?;
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
                // A partial mask (`255.255`) is left-justified, as in libpcap.
                Tok::Dotted(p) => dotted(p)
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
        self.need(t, 0x86dd)?;
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
