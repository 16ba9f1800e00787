//! Prints expressions as canonical text: `&&`, `||` and `!` rather than the word
//! forms, single-quoted strings, and only the parentheses precedence requires. The
//! text parses back to the same tree, which is what lets the server ship residual
//! conditions to the agent as text.

use core::fmt::{self, Write};

use super::Expr;
use super::ast::{Literal, Node};

/// Binding strength, weakest first. A child printed where a stronger level is
/// expected gets parentheses.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const COMPARE: u8 = 4;
const ATOM: u8 = 5;

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_node(f, self, OR)
    }
}

fn level(node: &Node) -> u8 {
    match node {
        Node::Or(_) => OR,
        Node::And(_) => AND,
        Node::Not(_) => NOT,
        Node::Cmp(..) => COMPARE,
        Node::Lit(_) | Node::Fact(_) | Node::Var(_) | Node::Call(..) => ATOM,
    }
}

/// Writes `node` where an expression of at least level `min` is expected.
fn write_node(f: &mut fmt::Formatter<'_>, node: &Node, min: u8) -> fmt::Result {
    let parenthesize = level(node) < min;
    if parenthesize {
        f.write_char('(')?;
    }
    match node {
        Node::Lit(literal) => write_literal(f, literal)?,
        Node::Fact(name) => write!(f, "facts.{name}")?,
        Node::Var(name) => write!(f, "vars.{name}")?,
        Node::Call(builtin, args) => {
            write!(f, "{}(", builtin.name())?;
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_node(f, arg, OR)?;
            }
            f.write_char(')')?;
        }
        Node::Not(operand) => {
            f.write_char('!')?;
            write_node(f, operand, NOT)?;
        }
        // Chains are written flat, so an operand that is itself the same kind of
        // chain (only possible through explicit parentheses) keeps them.
        Node::And(operands) => write_chain(f, operands, " && ", AND + 1)?,
        Node::Or(operands) => write_chain(f, operands, " || ", OR + 1)?,
        Node::Cmp(op, left, right) => {
            write_node(f, left, ATOM)?;
            write!(f, " {} ", op.symbol())?;
            write_node(f, right, ATOM)?;
        }
    }
    if parenthesize {
        f.write_char(')')?;
    }
    Ok(())
}

fn write_chain(
    f: &mut fmt::Formatter<'_>,
    operands: &[Node],
    separator: &str,
    min: u8,
) -> fmt::Result {
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write_node(f, operand, min)?;
    }
    Ok(())
}

fn write_literal(f: &mut fmt::Formatter<'_>, literal: &Literal) -> fmt::Result {
    match literal {
        Literal::Str(s) => write_quoted(f, s),
        Literal::Int(i) => write!(f, "{i}"),
        Literal::Bool(b) => write!(f, "{b}"),
    }
}

/// Writes `s` in single quotes, escaping exactly what the lexer unescapes.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\'' => f.write_str("\\'")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            other => f.write_char(other)?,
        }
    }
    f.write_char('\'')
}
