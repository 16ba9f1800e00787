//! What an expression is made of, for `config trace` and for knowing which facts
//! and variables a condition depends on.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::ast::{Literal, Node};
use super::builtins::Builtin;
use super::{Side, Term};

pub(super) fn terms(root: &Node) -> Vec<Term> {
    let mut terms = Vec::new();
    collect_terms(root, &mut terms);
    terms
}

fn collect_terms(node: &Node, terms: &mut Vec<Term>) {
    match node {
        Node::And(operands) | Node::Or(operands) => {
            for operand in operands {
                collect_terms(operand, terms);
            }
        }
        Node::Not(operand) => collect_terms(operand, terms),
        // A bare `true` or `false` is not a condition worth tracing.
        Node::Lit(_) => {}
        Node::Fact(_) | Node::Var(_) | Node::Call(..) | Node::Cmp(..) => {
            let text = node.to_string();
            if terms.iter().all(|term| term.text != text) {
                terms.push(Term {
                    text,
                    side: side(node),
                });
            }
        }
    }
}

/// Agent if `node` calls an agent-side builtin anywhere, Server otherwise.
fn side(node: &Node) -> Side {
    let agent = match node {
        Node::Lit(_) | Node::Fact(_) | Node::Var(_) => false,
        Node::Call(builtin, args) => {
            builtin.side() == Side::Agent || args.iter().any(|arg| side(arg) == Side::Agent)
        }
        Node::Not(operand) => side(operand) == Side::Agent,
        Node::And(operands) | Node::Or(operands) => {
            operands.iter().any(|operand| side(operand) == Side::Agent)
        }
        Node::Cmp(_, left, right) => side(left) == Side::Agent || side(right) == Side::Agent,
    };
    if agent { Side::Agent } else { Side::Server }
}

pub(super) fn facts_used(root: &Node) -> Vec<String> {
    let mut names = BTreeSet::new();
    visit(root, &mut |node| match node {
        Node::Fact(name) => {
            names.insert(name.clone());
        }
        Node::Call(builtin, args) => {
            let implicit = match builtin {
                Builtin::OsFamily => Some("os_family"),
                Builtin::Os => Some("os"),
                Builtin::Arch => Some("arch"),
                Builtin::HostnameMatches => Some("hostname"),
                _ => None,
            };
            if let Some(name) = implicit {
                names.insert(String::from(name));
            }
            if *builtin == Builtin::Fact
                && let Some(name) = literal_name(args)
            {
                names.insert(name);
            }
        }
        _ => {}
    });
    names.into_iter().collect()
}

pub(super) fn vars_used(root: &Node) -> Vec<String> {
    let mut names = BTreeSet::new();
    visit(root, &mut |node| match node {
        Node::Var(name) => {
            names.insert(name.clone());
        }
        Node::Call(Builtin::Var, args) => {
            if let Some(name) = literal_name(args) {
                names.insert(name);
            }
        }
        _ => {}
    });
    names.into_iter().collect()
}

/// The name passed to `fact()` or `var()`, when it is written as a literal. A name
/// computed at evaluation time cannot be known here.
fn literal_name(args: &[Node]) -> Option<String> {
    match args {
        [Node::Lit(Literal::Str(name))] => Some(name.clone()),
        _ => None,
    }
}

/// Calls `f` on `node` and every node beneath it.
fn visit(node: &Node, f: &mut dyn FnMut(&Node)) {
    f(node);
    match node {
        Node::Lit(_) | Node::Fact(_) | Node::Var(_) => {}
        Node::Call(_, children) | Node::And(children) | Node::Or(children) => {
            for child in children {
                visit(child, f);
            }
        }
        Node::Not(operand) => visit(operand, f),
        Node::Cmp(_, left, right) => {
            visit(left, f);
            visit(right, f);
        }
    }
}
