//! The keywords that look inside an encapsulation: `vlan [id]`, `mpls [label]`,
//! `pppoes [session]`, `geneve [vni]` and `vxlan [vni]`. Each is a test of its own, and
//! everything after it in the text applies to the packet inside (libpcap's rule, whatever the
//! parentheses say).

use super::{Expr, FilterError, LinkKind, Off, Parser, Pos, Prim, Tunnel, MAX_TUNNEL_REGS};
use crate::filter::lex::{Tok, Token};

impl Parser<'_> {
    /// The optional number after `kw`, at most `max` (`what` names it in errors). Like
    /// libpcap, a number in parentheses is one too: `vlan (100)`.
    fn optional_number(
        &mut self,
        kw: &Token,
        what: &str,
        max: u32,
    ) -> Result<Option<u32>, FilterError> {
        let mut opens = 0;
        while self.is_op(opens, "(") {
            opens += 1;
        }
        let Tok::Num(n) = self.peek_at(opens).tok else {
            if opens == 0 && self.id_follows() {
                let t = self.peek().clone();
                return Err(self.err_at(
                    &t,
                    format!(
                        "expected {what} (0 to {max}) after '{}', found {}",
                        kw.text,
                        Self::found(&t)
                    ),
                ));
            }
            return Ok(None);
        };
        if (1..=opens).any(|i| !self.is_op(opens + i, ")")) {
            return Ok(None); // `vlan (100 or ...`: not a parenthesised number
        }
        for _ in 0..opens {
            self.bump();
        }
        let t = self.bump();
        for _ in 0..opens {
            self.bump();
        }
        if n > max {
            return Err(self.err_at(&t, format!("{what} {n} is out of range (0 to {max})")));
        }
        Ok(Some(n))
    }

    /// `vlan [id]`: an 802.1Q/802.1ad tag; what follows looks 4 bytes further on.
    pub(super) fn vlan(&mut self) -> Result<Expr, FilterError> {
        let kw = self.bump();
        match self.off.kind {
            LinkKind::Mpls => {
                return Err(self.err_at(&kw, "no VLAN match after MPLS".into()));
            }
            LinkKind::Ppp => {
                return Err(self.err_at(&kw, "no VLAN support for PPP (after 'pppoes')".into()))
            }
            LinkKind::Ether => {}
        }
        if self.off.linktype.reg.is_some() {
            return Err(self.err_at(
                &kw,
                "'vlan' inside 'geneve' or 'vxlan' is not supported".into(),
            ));
        }
        let id = self.optional_number(&kw, "a VLAN id", 4095)?;
        let off = self.off;
        self.off.linktype = off.linktype.plus(4);
        self.off.llc = off.llc.plus(4);
        self.off.nosnap = off.nosnap.plus(4);
        self.off.net = off.net.plus(4);
        Ok(Expr::Prim(Prim::Vlan {
            off,
            id: id.map(|n| n as u16),
        }))
    }

    /// `mpls [label]`: an MPLS label (the first after the link layer, or the next one of the
    /// stack); what follows looks past it.
    pub(super) fn mpls(&mut self) -> Result<Expr, FilterError> {
        let kw = self.bump();
        let label = self.optional_number(&kw, "an MPLS label", 0xf_ffff)?;
        let off = self.off;
        self.off.net = off.net.plus(4);
        self.off.nosnap = off.nosnap.plus(4);
        self.off.kind = LinkKind::Mpls;
        self.off.labels += 1;
        Ok(Expr::Prim(Prim::Mpls { off, label }))
    }

    /// `pppoes [session]`: a PPPoE session frame; what follows looks at the PPP packet inside.
    pub(super) fn pppoes(&mut self) -> Result<Expr, FilterError> {
        let kw = self.bump();
        self.need(&kw, 0x8864)?;
        let session = self.optional_number(&kw, "a PPPoE session id", 0xffff)?;
        let off = self.off;
        // The PPP header follows the 6-byte PPPoE header; its protocol field is the link type.
        let ppp = off.net.plus(6);
        self.off = Off {
            linkhdr: ppp,
            linktype: ppp,
            llc: ppp.plus(2),
            nosnap: ppp.plus(2),
            net: ppp.plus(2),
            kind: LinkKind::Ppp,
            l2_check: None,
            labels: 0,
        };
        Ok(Expr::Prim(Prim::Pppoes {
            off,
            session: session.map(|n| n as u16),
        }))
    }

    /// `geneve [vni]` / `vxlan [vni]`: the tunnel over UDP; what follows looks at the packet
    /// inside, whose offsets the program finds at run time and keeps in three scratch words.
    pub(super) fn tunnel(&mut self, kind: Tunnel) -> Result<Expr, FilterError> {
        let kw = self.bump();
        self.need(&kw, 0x0800)?;
        self.need(&kw, 0x86dd)?;
        let name = match kind {
            Tunnel::Geneve => "a Geneve VNI",
            Tunnel::Vxlan => "a VXLAN VNI",
        };
        let vni = self.optional_number(&kw, name, 0xff_ffff)?;
        if self.regs + 3 > MAX_TUNNEL_REGS {
            return Err(self.err_at(
                &kw,
                format!(
                    "too many 'geneve'/'vxlan' in one filter (at most {})",
                    MAX_TUNNEL_REGS / 3
                ),
            ));
        }
        let r = self.regs;
        self.regs += 3;
        let regs = [r, r + 1, r + 2];
        let off = self.off;
        let nosnap_rel = off.nosnap.k.wrapping_sub(off.llc.k);
        let (linktype, linkhdr, payload) = (
            Pos { reg: Some(r), k: 0 },
            Pos {
                reg: Some(r + 1),
                k: 0,
            },
            Pos {
                reg: Some(r + 2),
                k: 0,
            },
        );
        self.off = Off {
            linkhdr,
            linktype,
            llc: payload,
            nosnap: payload.plus(nosnap_rel),
            net: payload,
            kind: LinkKind::Ether,
            // A Geneve payload may be a bare network packet, without Ethernet header.
            l2_check: (kind == Tunnel::Geneve).then_some((r + 1, r + 2)),
            labels: 0,
        };
        Ok(Expr::Prim(Prim::Tunnel {
            off,
            kind,
            vni,
            regs,
        }))
    }
}
