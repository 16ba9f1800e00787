//! The syntax tree of `when:` expressions and the type rules that can be checked
//! without evaluating anything. The parser applies these rules as it builds each
//! node, and partial evaluation applies them again to every residual node it builds,
//! so that a residual always parses back.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::Value;
use super::builtins::Builtin;

/// One node of an expression.
///
/// `And` and `Or` hold two or more operands. Literals are never lists: lists come
/// only from facts and variables, and have no literal syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Node {
    Lit(Literal),
    /// `facts.NAME`, holding `NAME`.
    Fact(String),
    /// `vars.NAME`, holding `NAME`.
    Var(String),
    Call(Builtin, Vec<Node>),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
}

/// A value written in the expression itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Literal {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Literal {
    pub(super) fn to_value(&self) -> Value {
        match self {
            Literal::Str(s) => Value::Str(s.clone()),
            Literal::Int(i) => Value::Int(*i),
            Literal::Bool(b) => Value::Bool(*b),
        }
    }

    /// The literal spelling of `value`, or `None` for a list, which has none.
    pub(super) fn from_value(value: &Value) -> Option<Literal> {
        match value {
            Value::Str(s) => Some(Literal::Str(s.clone())),
            Value::Int(i) => Some(Literal::Int(*i)),
            Value::Bool(b) => Some(Literal::Bool(*b)),
            Value::List(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn is_equality(self) -> bool {
        matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// The type of a value, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    Int,
    Bool,
    List,
}

impl Kind {
    pub(super) fn of(value: &Value) -> Kind {
        match value {
            Value::Str(_) => Kind::Str,
            Value::Int(_) => Kind::Int,
            Value::Bool(_) => Kind::Bool,
            Value::List(_) => Kind::List,
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "an integer",
            Kind::Bool => "a boolean",
            Kind::List => "a list",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Str => "strings",
            Kind::Int => "integers",
            Kind::Bool => "booleans",
            Kind::List => "lists",
        }
    }
}

impl Node {
    /// The kind this node evaluates to, when that is known without evaluating it.
    pub(super) fn static_kind(&self) -> Option<Kind> {
        match self {
            Node::Lit(literal) => Some(Kind::of(&literal.to_value())),
            Node::Fact(_) | Node::Var(_) => None,
            Node::Call(builtin, _) => builtin.returns(),
            Node::Not(_) | Node::And(_) | Node::Or(_) | Node::Cmp(..) => Some(Kind::Bool),
        }
    }
}

/// Checks that `op` can compare values of these kinds, where known. Strings and
/// integers allow all six comparisons; booleans and lists only `==` and `!=`.
pub(super) fn check_cmp(op: CmpOp, left: Option<Kind>, right: Option<Kind>) -> Result<(), String> {
    if let (Some(l), Some(r)) = (left, right)
        && l != r
    {
        return Err(format!(
            "cannot compare {} with {}; make both sides the same type",
            l.describe(),
            r.describe()
        ));
    }
    if op.is_equality() {
        return Ok(());
    }
    for kind in [left, right].into_iter().flatten() {
        if matches!(kind, Kind::Bool | Kind::List) {
            return Err(format!(
                "cannot use {} on {}; only == and != apply to them",
                op.symbol(),
                kind.plural()
            ));
        }
    }
    Ok(())
}

/// Checks that an operand of `operator` (`&&`, `||`, `!`, or the whole condition)
/// can be true or false, where its kind is known.
pub(super) fn check_condition(operator: &str, kind: Option<Kind>) -> Result<(), String> {
    match kind {
        None | Some(Kind::Bool) => Ok(()),
        Some(kind) => Err(not_a_condition(operator, kind)),
    }
}

/// The message for an operand of `operator` that turned out to be of `kind`.
pub(super) fn not_a_condition(operator: &str, kind: Kind) -> String {
    format!(
        "{operator} needs true or false, but this is {}; compare it, e.g. facts.os == 'linux'",
        kind.describe()
    )
}

/// Checks a call's arguments whose kind or value is known before evaluation.
pub(super) fn check_call_arg(builtin: Builtin, index: usize, arg: &Node) -> Result<(), String> {
    match arg {
        Node::Lit(literal) => super::builtins::check_arg_value(builtin, index, &literal.to_value()),
        _ => match arg.static_kind() {
            Some(kind) => super::builtins::check_arg_kind(builtin, index, kind),
            None => Ok(()),
        },
    }
}

/// Builds `&&` of `operands`, flattening nested `&&` and collapsing one operand to
/// itself; `None` when there are no operands left.
pub(super) fn make_and(operands: Vec<Node>) -> Option<Node> {
    make_chain(operands, Node::And, |node| match node {
        Node::And(inner) => Ok(inner),
        other => Err(other),
    })
}

/// Builds `||` of `operands`, like [`make_and`].
pub(super) fn make_or(operands: Vec<Node>) -> Option<Node> {
    make_chain(operands, Node::Or, |node| match node {
        Node::Or(inner) => Ok(inner),
        other => Err(other),
    })
}

fn make_chain(
    operands: Vec<Node>,
    build: fn(Vec<Node>) -> Node,
    split: fn(Node) -> Result<Vec<Node>, Node>,
) -> Option<Node> {
    let mut flat = Vec::with_capacity(operands.len());
    for operand in operands {
        match split(operand) {
            Ok(inner) => flat.extend(inner),
            Err(single) => flat.push(single),
        }
    }
    if flat.len() > 1 {
        Some(build(flat))
    } else {
        flat.pop()
    }
}
