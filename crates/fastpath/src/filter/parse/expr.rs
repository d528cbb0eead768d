//! Connectives (`and`, `or`, `not`, parentheses), relations and arithmetic.

use super::names::named_constant;
use super::{Arith, BinOp, Expr, FilterError, Parser, Proto, RelOp};
use crate::filter::lex::Tok;

impl Parser<'_> {
    /// expr := unary (('and'|'&&'|'or'|'||') unary)*, left-associative, one precedence. A
    /// chain of one connective is one list; each switch between `and` and `or` nests one level.
    pub(super) fn expr(&mut self, depth: usize) -> Result<Expr, FilterError> {
        self.depth_check(depth)?;
        let mut lhs = self.unary(depth + 1)?;
        let mut nest = depth;
        loop {
            let is_and = self.is_word(0, "and") || self.is_op(0, "&&");
            let is_or = self.is_word(0, "or") || self.is_op(0, "||");
            if !is_and && !is_or {
                return Ok(lhs);
            }
            self.bump();
            let rhs = self.unary(depth + 1)?;
            lhs = match (lhs, is_and) {
                (Expr::And(mut v), true) => {
                    push_flat(&mut v, rhs, true);
                    Expr::And(v)
                }
                (Expr::Or(mut v), false) => {
                    push_flat(&mut v, rhs, false);
                    Expr::Or(v)
                }
                (l, and) => {
                    nest += 1;
                    self.depth_check(nest)?;
                    let mut v = Vec::with_capacity(2);
                    push_flat(&mut v, l, and);
                    push_flat(&mut v, rhs, and);
                    if and {
                        Expr::And(v)
                    } else {
                        Expr::Or(v)
                    }
                }
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
            let save = self.save();
            if let Ok(rel) = self.relation(depth + 1) {
                return Ok(rel);
            }
            self.restore(save);
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
            Tok::Word(w) if w == "len" || w == "length" => true,
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
        // Each operator of a chain nests the tree one level deeper.
        let mut chain = depth;
        while let Some((op, prec)) = self.binop() {
            chain += 1;
            self.depth_check(chain)?;
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
            Tok::Word(w) if w == "len" || w == "length" => Ok(Arith::Len),
            Tok::Word(w) if named_constant(w).is_some() => {
                Ok(Arith::Num(named_constant(w).unwrap_or(0)))
            }
            Tok::Word(w) if Proto::from_word(w).is_some() && self.is_op(0, "[") => {
                let Some(proto) = Proto::from_word(w) else {
                    unreachable!("the guard found a protocol")
                };
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
                self.load(proto, &t, index, size)
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
}

/// Appends `e` to the operand list of an `and` (`and` true) or `or`, its own operands if it is
/// the same connective.
fn push_flat(v: &mut Vec<Expr>, e: Expr, and: bool) {
    match (e, and) {
        (Expr::And(inner), true) | (Expr::Or(inner), false) => v.extend(inner),
        (e, _) => v.push(e),
    }
}
