//! Evaluates expressions against an [`Env`], fully or partially.
//!
//! Both kinds of evaluation are one walk over the tree: every node reduces either to
//! a value or to a residual node holding what the environment could not answer.
//! Full evaluation is partial evaluation that must not leave a residual.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::ast::{self, CmpOp, Kind, Literal, Node};
use super::builtins::{self, Builtin};
use super::{Env, EvalError, Lookup, Side, Value};
use crate::glob::glob_match;

/// The result of partially evaluating a whole condition.
pub(super) enum Outcome {
    Known(bool),
    Residual(Node),
}

/// What one node reduces to.
enum Reduced {
    Known(Value),
    Residual(Node),
}

pub(super) fn partial_eval(root: &Node, env: &dyn Env) -> Result<Outcome, EvalError> {
    match reduce(root, env)? {
        Reduced::Known(Value::Bool(b)) => Ok(Outcome::Known(b)),
        Reduced::Known(other) => Err(error_in(
            root,
            ast::not_a_condition("a condition", Kind::of(&other)),
        )),
        Reduced::Residual(node) => Ok(Outcome::Residual(node)),
    }
}

pub(super) fn eval(root: &Node, env: &dyn Env) -> Result<bool, EvalError> {
    match partial_eval(root, env)? {
        Outcome::Known(b) => Ok(b),
        Outcome::Residual(node) => Err(undecided(&node)),
    }
}

/// The error for a residual left by full evaluation, naming its first term.
fn undecided(node: &Node) -> EvalError {
    let (text, side) = match super::terms::terms(node).into_iter().next() {
        Some(term) => (term.text, term.side),
        None => (node.to_string(), Side::Server),
    };
    let reason = match side {
        Side::Agent => "it depends on the machine at apply time, so only the agent can evaluate it",
        Side::Server => "a fact or variable it reads is not known here",
    };
    error(format!("cannot decide `{text}` on this side: {reason}"))
}

fn error(message: String) -> EvalError {
    EvalError { message }
}

/// An error about the sub-expression `node`, quoted as written.
fn error_in(node: &Node, message: String) -> EvalError {
    error(format!("in `{node}`: {message}"))
}

fn reduce(node: &Node, env: &dyn Env) -> Result<Reduced, EvalError> {
    match node {
        Node::Lit(literal) => Ok(Reduced::Known(literal.to_value())),
        Node::Fact(name) => match env.fact(name) {
            Lookup::Known(Some(value)) => Ok(Reduced::Known(value)),
            Lookup::Known(None) => Err(error(no_fact(name))),
            Lookup::Unknown => Ok(Reduced::Residual(node.clone())),
        },
        Node::Var(name) => match env.var(name) {
            Lookup::Known(Some(value)) => Ok(Reduced::Known(value)),
            Lookup::Known(None) => Err(error(unknown_var(name))),
            Lookup::Unknown => Ok(Reduced::Residual(node.clone())),
        },
        Node::Not(operand) => match reduce(operand, env)? {
            Reduced::Known(Value::Bool(b)) => Ok(Reduced::Known(Value::Bool(!b))),
            Reduced::Known(other) => Err(error_in(
                operand,
                ast::not_a_condition("!", Kind::of(&other)),
            )),
            Reduced::Residual(residual) => Ok(Reduced::Residual(Node::Not(Box::new(residual)))),
        },
        Node::And(operands) => reduce_chain(operands, env, false),
        Node::Or(operands) => reduce_chain(operands, env, true),
        Node::Cmp(op, left, right) => reduce_cmp(node, *op, left, right, env),
        Node::Call(builtin, args) => reduce_call(node, *builtin, args, env),
    }
}

/// Reduces `&&` (`decisive` false) or `||` (`decisive` true) left to right. An
/// operand equal to `decisive` decides the chain and later operands are skipped;
/// operands equal to `!decisive` drop out.
fn reduce_chain(operands: &[Node], env: &dyn Env, decisive: bool) -> Result<Reduced, EvalError> {
    let symbol = if decisive { "||" } else { "&&" };
    let mut residuals = Vec::new();
    for operand in operands {
        match reduce(operand, env)? {
            Reduced::Known(Value::Bool(b)) if b == decisive => {
                return Ok(Reduced::Known(Value::Bool(decisive)));
            }
            Reduced::Known(Value::Bool(_)) => {}
            Reduced::Known(other) => {
                return Err(error_in(
                    operand,
                    ast::not_a_condition(symbol, Kind::of(&other)),
                ));
            }
            Reduced::Residual(residual) => residuals.push(residual),
        }
    }
    let chain = if decisive {
        ast::make_or(residuals)
    } else {
        ast::make_and(residuals)
    };
    Ok(match chain {
        Some(residual) => Reduced::Residual(residual),
        None => Reduced::Known(Value::Bool(!decisive)),
    })
}

fn reduce_cmp(
    node: &Node,
    op: CmpOp,
    left: &Node,
    right: &Node,
    env: &dyn Env,
) -> Result<Reduced, EvalError> {
    let l = reduce(left, env)?;
    let r = reduce(right, env)?;
    if let (Reduced::Known(a), Reduced::Known(b)) = (&l, &r) {
        let result = compare(op, a, b).map_err(|m| error_in(node, m))?;
        return Ok(Reduced::Known(Value::Bool(result)));
    }
    // Check now what parsing the residual would check, so that it always parses.
    ast::check_cmp(op, kind(&l), kind(&r)).map_err(|m| error_in(node, m))?;
    let l = residual_node(l, left);
    let r = residual_node(r, right);
    Ok(Reduced::Residual(Node::Cmp(op, Box::new(l), Box::new(r))))
}

/// The kind of a reduced value, as far as it is known.
fn kind(reduced: &Reduced) -> Option<Kind> {
    match reduced {
        Reduced::Known(value) => Some(Kind::of(value)),
        Reduced::Residual(node) => node.static_kind(),
    }
}

/// The node to put in a residual for a reduced sub-expression: its value as a
/// literal, or, for a list, which has no literal form, the `original` expression.
fn residual_node(reduced: Reduced, original: &Node) -> Node {
    match reduced {
        Reduced::Known(value) => match Literal::from_value(&value) {
            Some(literal) => Node::Lit(literal),
            None => original.clone(),
        },
        Reduced::Residual(node) => node,
    }
}

/// Compares two known values. Equality works on any two values of the same kind;
/// ordering only on strings (byte by byte) and integers.
fn compare(op: CmpOp, a: &Value, b: &Value) -> Result<bool, String> {
    ast::check_cmp(op, Some(Kind::of(a)), Some(Kind::of(b)))?;
    let ordering = match (op, a, b) {
        (CmpOp::Eq, ..) => return Ok(a == b),
        (CmpOp::Ne, ..) => return Ok(a != b),
        (_, Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (_, Value::Int(x), Value::Int(y)) => x.cmp(y),
        _ => {
            return Err(format!(
                "cannot use {} on {} and {}",
                op.symbol(),
                Kind::of(a).describe(),
                Kind::of(b).describe()
            ));
        }
    };
    Ok(match op {
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
    })
}

fn reduce_call(
    node: &Node,
    builtin: Builtin,
    args: &[Node],
    env: &dyn Env,
) -> Result<Reduced, EvalError> {
    let mut reduced = Vec::with_capacity(args.len());
    for (index, arg) in args.iter().enumerate() {
        let r = reduce(arg, env)?;
        // Known arguments are checked even if the call stays residual, so that the
        // residual always parses.
        let checked = match &r {
            Reduced::Known(value) => builtins::check_arg_value(builtin, index, value),
            Reduced::Residual(residual) => ast::check_call_arg(builtin, index, residual),
        };
        checked.map_err(|m| error_in(node, m))?;
        reduced.push(r);
    }
    let known: Option<Vec<Value>> = reduced
        .iter()
        .map(|r| match r {
            Reduced::Known(value) => Some(value.clone()),
            Reduced::Residual(_) => None,
        })
        .collect();
    if let Some(values) = known
        && let Lookup::Known(value) = apply(builtin, &values, env).map_err(|m| error_in(node, m))?
    {
        return Ok(Reduced::Known(value));
    }
    let args = reduced
        .into_iter()
        .zip(args)
        .map(|(r, original)| residual_node(r, original))
        .collect();
    Ok(Reduced::Residual(Node::Call(builtin, args)))
}

/// Calls `builtin` on known, already checked argument values.
fn apply(builtin: Builtin, args: &[Value], env: &dyn Env) -> Result<Lookup<Value>, String> {
    let answer = match builtin {
        Builtin::OsFamily => fact_is_any(env, "os_family", args)?,
        Builtin::Os => fact_is_any(env, "os", args)?,
        Builtin::Arch => fact_is_any(env, "arch", args)?,
        Builtin::HostnameMatches => {
            let hostname = match env.fact("hostname") {
                Lookup::Unknown => return Ok(Lookup::Unknown),
                Lookup::Known(None) => String::from(env.node_name()),
                Lookup::Known(Some(Value::Str(hostname))) => hostname,
                Lookup::Known(Some(other)) => return Err(fact_not_string("hostname", &other)),
            };
            let mut patterns = strings(args);
            Lookup::Known(patterns.any(|pattern| glob_match(pattern, &hostname)))
        }
        Builtin::Var => {
            let name = string_arg(args, 0)?;
            return match env.var(name) {
                Lookup::Known(Some(value)) => Ok(Lookup::Known(value)),
                Lookup::Known(None) => Err(unknown_var(name)),
                Lookup::Unknown => Ok(Lookup::Unknown),
            };
        }
        Builtin::Fact => {
            let name = string_arg(args, 0)?;
            return match env.fact(name) {
                Lookup::Known(Some(value)) => Ok(Lookup::Known(value)),
                Lookup::Known(None) => Err(no_fact(name)),
                Lookup::Unknown => Ok(Lookup::Unknown),
            };
        }
        Builtin::VersionGe | Builtin::VersionLt => {
            let order = builtins::compare_versions(&version_arg(args, 0)?, &version_arg(args, 1)?);
            let less = order == Ordering::Less;
            Lookup::Known(if builtin == Builtin::VersionLt {
                less
            } else {
                !less
            })
        }
        Builtin::HasCommand => env.has_command(string_arg(args, 0)?),
        Builtin::FileExists => env.file_exists(string_arg(args, 0)?),
        Builtin::HourRange => {
            let (start, end) = (int_arg(args, 0)?, int_arg(args, 1)?);
            match env.now() {
                Lookup::Known(now) => {
                    Lookup::Known(builtins::in_hour_range(i64::from(now.hour), start, end))
                }
                Lookup::Unknown => Lookup::Unknown,
            }
        }
        Builtin::Weekday => match env.now() {
            Lookup::Known(now) => {
                let mut days = strings(args);
                Lookup::Known(days.any(|day| builtins::parse_weekday(day) == Some(now.weekday)))
            }
            Lookup::Unknown => Lookup::Unknown,
        },
    };
    Ok(match answer {
        Lookup::Known(b) => Lookup::Known(Value::Bool(b)),
        Lookup::Unknown => Lookup::Unknown,
    })
}

/// Whether the string fact `fact` equals any of `names`, ignoring ASCII case.
fn fact_is_any(env: &dyn Env, fact: &str, names: &[Value]) -> Result<Lookup<bool>, String> {
    match env.fact(fact) {
        Lookup::Unknown => Ok(Lookup::Unknown),
        Lookup::Known(None) => Err(no_fact(fact)),
        Lookup::Known(Some(Value::Str(actual))) => {
            let mut names = strings(names);
            Ok(Lookup::Known(
                names.any(|name| name.eq_ignore_ascii_case(&actual)),
            ))
        }
        Lookup::Known(Some(other)) => Err(fact_not_string(fact, &other)),
    }
}

/// The string arguments; the arguments were checked to be strings already.
fn strings(args: &[Value]) -> impl Iterator<Item = &str> {
    args.iter().filter_map(|arg| match arg {
        Value::Str(s) => Some(s.as_str()),
        _ => None,
    })
}

fn string_arg(args: &[Value], index: usize) -> Result<&str, String> {
    match args.get(index) {
        Some(Value::Str(s)) => Ok(s),
        _ => Err(format!("argument {} must be a string", index + 1)),
    }
}

fn int_arg(args: &[Value], index: usize) -> Result<i64, String> {
    match args.get(index) {
        Some(Value::Int(i)) => Ok(*i),
        _ => Err(format!("argument {} must be an integer", index + 1)),
    }
}

/// A version argument: a string, or an integer taken as its decimal digits.
fn version_arg(args: &[Value], index: usize) -> Result<String, String> {
    match args.get(index) {
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(Value::Int(i)) => Ok(i.to_string()),
        _ => Err(format!(
            "argument {} must be a version string such as '12.4'",
            index + 1
        )),
    }
}

fn no_fact(name: &str) -> String {
    format!("the node reports no fact '{name}'; check the name against the node's facts")
}

fn unknown_var(name: &str) -> String {
    format!("unknown variable '{name}'; define it under vars: or fix the name")
}

fn fact_not_string(fact: &str, value: &Value) -> String {
    format!(
        "the fact '{fact}' is {}, expected a string; check what the node reports",
        Kind::of(value).describe()
    )
}
