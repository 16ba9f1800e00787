//! Parses `when:` expressions into a syntax tree, checking on the way everything
//! that can be checked before evaluation: function names, argument counts and the
//! types of literals.
//!
//! Grammar, lowest precedence first:
//!
//! ```text
//! or      = and ( ("||" | "or") and )*
//! and     = not ( ("&&" | "and") not )*
//! not     = ("!" | "not") not | compare
//! compare = primary ( ("==" | "!=" | "<" | "<=" | ">" | ">=") primary )?
//! primary = STRING | INTEGER | "true" | "false" | facts.NAME | vars.NAME
//!         | NAME "(" ( or ( "," or )* )? ")" | "(" or ")"
//! ```

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::ast::{self, CmpOp, Literal, Node};
use super::builtins::{self, BUILTINS, Builtin};
use super::lex::{Token, TokenKind, lex};
use super::{ParseError, column_of};

/// How deeply parentheses, `!` and calls may nest. Real conditions stay far below
/// this; the limit keeps the recursive parser and evaluator within a small stack.
const MAX_NESTING: usize = 64;

pub(super) fn parse(src: &str) -> Result<Node, ParseError> {
    let tokens = lex(src)?;
    let mut parser = Parser {
        src,
        tokens,
        pos: 0,
        nesting: 0,
        eof: Token {
            kind: TokenKind::Eof,
            offset: src.len(),
        },
    };
    let start = parser.peek().offset;
    if parser.peek().kind == TokenKind::Eof {
        return Err(parser.error(
            start,
            String::from("the condition is empty; write one, e.g. os_family('debian')"),
        ));
    }
    let node = parser.or()?;
    let next = parser.peek();
    if next.kind != TokenKind::Eof {
        let keyword = match &next.kind {
            TokenKind::Ident(name) => lowercase_keyword(name),
            _ => None,
        };
        let message = match keyword {
            Some(keyword) => format!("keywords are lowercase; write '{keyword}'"),
            None => format!(
                "expected an operator or the end of the condition, found {}",
                next.kind.describe()
            ),
        };
        return Err(parser.error(next.offset, message));
    }
    ast::check_condition("a condition", node.static_kind()).map_err(|m| parser.error(start, m))?;
    Ok(node)
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
    /// Returned by `peek` past the end, so that peeking never fails.
    eof: Token,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&self.eof)
    }

    fn advance(&mut self) {
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
    }

    fn error(&self, offset: usize, message: String) -> ParseError {
        ParseError::new(self.src, offset, message)
    }

    /// Enters one level of nesting, failing when the expression is too deep.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error(
                self.peek().offset,
                format!("the condition nests more than {MAX_NESTING} levels deep; simplify it"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    fn or(&mut self) -> Result<Node, ParseError> {
        self.chain(TokenKind::Or, "||", Self::and, Node::Or)
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        self.chain(TokenKind::And, "&&", Self::not, Node::And)
    }

    /// Parses `operand (separator operand)*`, checking that each operand can be a
    /// condition when there is more than one.
    fn chain(
        &mut self,
        separator: TokenKind,
        symbol: &str,
        operand: fn(&mut Self) -> Result<Node, ParseError>,
        build: fn(Vec<Node>) -> Node,
    ) -> Result<Node, ParseError> {
        let first_at = self.peek().offset;
        let first = operand(self)?;
        if self.peek().kind != separator {
            return Ok(first);
        }
        self.check_condition(symbol, &first, first_at)?;
        let mut operands = vec![first];
        while self.peek().kind == separator {
            self.advance();
            let at = self.peek().offset;
            let next = operand(self)?;
            self.check_condition(symbol, &next, at)?;
            operands.push(next);
        }
        Ok(build(operands))
    }

    fn check_condition(&self, operator: &str, node: &Node, at: usize) -> Result<(), ParseError> {
        ast::check_condition(operator, node.static_kind()).map_err(|m| self.error(at, m))
    }

    fn not(&mut self) -> Result<Node, ParseError> {
        if self.peek().kind != TokenKind::Not {
            return self.compare();
        }
        self.advance();
        self.enter()?;
        let at = self.peek().offset;
        let operand = self.not()?;
        self.leave();
        self.check_condition("!", &operand, at)?;
        Ok(Node::Not(Box::new(operand)))
    }

    fn compare(&mut self) -> Result<Node, ParseError> {
        let left = self.primary()?;
        let Some(op) = comparison(&self.peek().kind) else {
            return Ok(left);
        };
        let op_at = self.peek().offset;
        self.advance();
        let right = self.primary()?;
        if comparison(&self.peek().kind).is_some() {
            return Err(self.error(
                self.peek().offset,
                String::from(
                    "comparisons cannot be chained; join them with &&, e.g. a < b && b < c",
                ),
            ));
        }
        ast::check_cmp(op, left.static_kind(), right.static_kind())
            .map_err(|m| self.error(op_at, m))?;
        Ok(Node::Cmp(op, Box::new(left), Box::new(right)))
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let Token { kind, offset } = self.peek().clone();
        let node = match kind {
            TokenKind::Str(s) => Node::Lit(Literal::Str(s)),
            TokenKind::Int(i) => Node::Lit(Literal::Int(i)),
            TokenKind::Bool(b) => Node::Lit(Literal::Bool(b)),
            TokenKind::LParen => {
                self.advance();
                self.enter()?;
                let inner = self.or()?;
                self.leave();
                if self.peek().kind != TokenKind::RParen {
                    let message = format!(
                        "expected ')' to close the '(' at column {}, found {}",
                        column_of(self.src, offset),
                        self.peek().kind.describe()
                    );
                    return Err(self.error(self.peek().offset, message));
                }
                inner
            }
            TokenKind::Ident(name) => {
                self.advance();
                if self.peek().kind == TokenKind::LParen {
                    return self.call(&name, offset);
                }
                return reference(&name).map_err(|m| self.error(offset, m));
            }
            TokenKind::Eof => {
                return Err(self.error(
                    offset,
                    String::from("the condition ends too early; expected a value"),
                ));
            }
            other => {
                let message = format!("expected a value, found {}", other.describe());
                return Err(self.error(offset, message));
            }
        };
        self.advance();
        Ok(node)
    }

    /// Parses the arguments of a call to `name`, whose `(` is the next token.
    fn call(&mut self, name: &str, name_at: usize) -> Result<Node, ParseError> {
        let Some(builtin) = Builtin::from_name(name) else {
            return Err(self.error(name_at, unknown_function(name)));
        };
        self.advance();
        self.enter()?;
        let mut args = Vec::new();
        if self.peek().kind == TokenKind::RParen {
            self.advance();
        } else {
            loop {
                let at = self.peek().offset;
                let arg = self.or()?;
                ast::check_call_arg(builtin, args.len(), &arg).map_err(|m| self.error(at, m))?;
                args.push(arg);
                match self.peek().kind {
                    TokenKind::Comma => self.advance(),
                    TokenKind::RParen => {
                        self.advance();
                        break;
                    }
                    ref other => {
                        let message = format!(
                            "expected ',' or ')' in the call to {name}(), found {}",
                            other.describe()
                        );
                        return Err(self.error(self.peek().offset, message));
                    }
                }
            }
        }
        self.leave();
        builtins::check_arity(builtin, args.len()).map_err(|m| self.error(name_at, m))?;
        Ok(Node::Call(builtin, args))
    }
}

fn comparison(kind: &TokenKind) -> Option<CmpOp> {
    let op = match kind {
        TokenKind::EqEq => CmpOp::Eq,
        TokenKind::NotEq => CmpOp::Ne,
        TokenKind::Lt => CmpOp::Lt,
        TokenKind::Le => CmpOp::Le,
        TokenKind::Gt => CmpOp::Gt,
        TokenKind::Ge => CmpOp::Ge,
        _ => return None,
    };
    Some(op)
}

/// Resolves a name that is not called: `facts.NAME` or `vars.NAME`.
fn reference(name: &str) -> Result<Node, String> {
    if let Some(fact) = name.strip_prefix("facts.") {
        return Ok(Node::Fact(String::from(fact)));
    }
    if let Some(var) = name.strip_prefix("vars.") {
        return Ok(Node::Var(String::from(var)));
    }
    let message = match name {
        "facts" => String::from("expected a fact name after 'facts', e.g. facts.os_family"),
        "vars" => String::from("expected a variable name after 'vars', e.g. vars.tier"),
        _ if Builtin::from_name(name).is_some() => {
            format!("{name} is a function; call it with arguments, e.g. {name}(...)")
        }
        _ => match (name.split_once('.'), lowercase_keyword(name)) {
            (Some(("fact", rest)), _) => {
                format!("unknown name '{name}'; did you mean facts.{rest}?")
            }
            (Some(("var", rest)), _) => format!("unknown name '{name}'; did you mean vars.{rest}?"),
            (Some(_), _) => format!(
                "unknown name '{name}'; read a fact as facts.NAME or a variable as vars.NAME"
            ),
            (None, Some(keyword)) => format!("keywords are lowercase; write '{keyword}'"),
            (None, None) => format!(
                "unknown name '{name}'; read a fact as facts.{name} or a variable as vars.{name}"
            ),
        },
    };
    Err(message)
}

/// The keyword `name` spells in the wrong case, e.g. `and` for `AND`.
fn lowercase_keyword(name: &str) -> Option<&'static str> {
    ["and", "or", "not", "true", "false"]
        .into_iter()
        .find(|keyword| keyword.eq_ignore_ascii_case(name))
}

fn unknown_function(name: &str) -> String {
    match builtins::suggest(name) {
        Some(suggestion) => format!("unknown function '{name}'; did you mean '{suggestion}'?"),
        None => {
            let names: Vec<&str> = BUILTINS.iter().map(|&(name, _)| name).collect();
            format!(
                "unknown function '{name}'; the functions are {}",
                names.join(", ")
            )
        }
    }
}
