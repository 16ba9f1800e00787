//! The `when:` expression language: conditions on resources and modules such as
//! `os_family('debian') && !has_command('nginx')`.
//!
//! The server compiles policy for one node at a time. It knows that node's facts and
//! variables, so it calls [`partial_eval`] to decide every term it can and ships the
//! rest, printed with [`Expr`]'s `Display`, in the bundle. The agent parses that
//! residual text again with [`parse()`] and decides it with [`eval()`], asking the
//! machine about commands, files and the clock. The printed text is therefore part
//! of the wire contract: `parse(&expr.to_string()) == Ok(expr)` always holds.
//!
//! Grammar, lowest precedence first: `||` (or `or`), `&&` (or `and`), prefix `!`
//! (or `not`), then one non-chaining comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`).
//! Values are strings in single or double quotes, integers, `true`, `false`,
//! `facts.NAME`, `vars.NAME`, calls of the [`BUILTINS`] and parenthesized
//! expressions.

mod ast;
mod builtins;
mod eval;
mod lex;
mod parse;
mod print;
mod terms;

#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

pub use builtins::BUILTINS;

/// A parsed `when:` expression.
///
/// Build one with [`parse()`]; turn it back into canonical text with `Display`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    root: ast::Node,
}

/// Parses a `when:` expression, reporting the first syntax or type error found.
///
/// Everything that can be checked without evaluating is checked here: unknown
/// functions, argument counts, literal argument types and values, and comparisons
/// or conditions whose types are already wrong.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    parse::parse(src).map(|root| Expr { root })
}

impl FromStr for Expr {
    type Err = ParseError;

    fn from_str(src: &str) -> Result<Expr, ParseError> {
        parse(src)
    }
}

/// Why an expression could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the source where the problem was found.
    pub offset: usize,
    /// 1-based character column of `offset`, for people.
    pub column: usize,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl ParseError {
    fn new(src: &str, offset: usize, message: String) -> ParseError {
        ParseError {
            offset,
            column: column_of(src, offset),
            message,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.column, self.message)
    }
}

impl core::error::Error for ParseError {}

/// The 1-based character column of byte `offset` in `src`.
fn column_of(src: &str, offset: usize) -> usize {
    let before = src.get(..offset).unwrap_or(src);
    before.chars().count() + 1
}

/// Why an expression could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError {
    /// What went wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl core::error::Error for EvalError {}

/// A value that facts, variables and literals can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string; compared byte by byte.
    Str(String),
    /// A signed integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// A list, such as `facts.addresses`. Lists have no literal syntax and support
    /// only `==` and `!=`.
    List(Vec<Value>),
}

/// Which side can evaluate a builtin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// Decidable from the node's facts and variables, which the server knows when it
    /// compiles policy for that node.
    Server,
    /// Depends on the machine's live state or the clock when the agent applies.
    Agent,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Server => "server",
            Side::Agent => "agent",
        })
    }
}

/// The side that evaluates the builtin `name`, or `None` if there is no such builtin.
pub fn builtin_side(name: &str) -> Option<Side> {
    BUILTINS
        .iter()
        .find(|&&(builtin, _)| builtin == name)
        .map(|&(_, side)| side)
}

/// What an evaluator knows. Returning `Lookup::Unknown` defers that term to the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// The answer on this side.
    Known(T),
    /// This side cannot tell; the term stays in the residual expression.
    Unknown,
}

/// The local wall-clock time on the node, for `hour_range()` and `weekday()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// The hour of the day, 0 to 23.
    pub hour: u8,
    /// The day of the week: 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
}

/// What an expression is evaluated against. The server implements it with the
/// node's facts and variables and answers `Unknown` for the machine's live state;
/// the agent implements it with the live machine.
pub trait Env {
    /// The node's name, which `hostname_matches()` uses when no `hostname` fact exists.
    fn node_name(&self) -> &str;
    /// The fact `name` (dotted for nesting, e.g. `os.name`). `Known(None)` means the
    /// fact is definitely absent, which makes reading it an error.
    fn fact(&self, name: &str) -> Lookup<Option<Value>>;
    /// The variable `name`. `Known(None)` means it is not defined, which makes reading
    /// it an error.
    fn var(&self, name: &str) -> Lookup<Option<Value>>;
    /// Whether an executable called `name` is on `PATH`.
    fn has_command(&self, name: &str) -> Lookup<bool>;
    /// Whether `path` exists.
    fn file_exists(&self, path: &str) -> Lookup<bool>;
    /// The current local time.
    fn now(&self) -> Lookup<LocalTime>;
}

/// The result of [`partial_eval`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partial {
    /// The condition is decided.
    Known(bool),
    /// What is left to decide on the other side.
    Residual(Expr),
}

/// Evaluates everything `env` knows and returns what is left.
///
/// Known facts and variables are replaced by their values (except lists, which
/// have no literal form: the reference stays), builtins whose inputs are known are
/// decided, and `&&`, `||` and `!` with decided operands are simplified. Operands
/// are evaluated left to right, and an operand after a `false` in `&&` (or a
/// `true` in `||`) is not evaluated, so guards such as
/// `os_family('debian') && version_ge(facts.debian_version, '12')` work.
pub fn partial_eval(expr: &Expr, env: &dyn Env) -> Result<Partial, EvalError> {
    eval::partial_eval(&expr.root, env).map(|partial| match partial {
        eval::Outcome::Known(b) => Partial::Known(b),
        eval::Outcome::Residual(root) => Partial::Residual(Expr { root }),
    })
}

/// Evaluates `expr` completely, by the same rules as [`partial_eval`]. A term `env`
/// answers `Unknown` to is an error, unless the result does not depend on it (as in
/// `has_command('x') && false`).
pub fn eval(expr: &Expr, env: &dyn Env) -> Result<bool, EvalError> {
    eval::eval(&expr.root, env)
}

/// A leaf condition of an expression, for `config trace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// The condition as canonical text, e.g. `has_command('nginx')`.
    pub text: String,
    /// Agent if the condition calls an agent-side builtin, Server otherwise.
    pub side: Side,
}

/// The leaf conditions of `expr` (calls, comparisons and bare references; not the
/// `&&`, `||` and `!` joining them, nor bare `true`/`false`), in order of first
/// appearance and without duplicates.
pub fn terms(expr: &Expr) -> Vec<Term> {
    terms::terms(&expr.root)
}

/// The sorted, deduplicated names of the facts `expr` reads: `facts.X`,
/// `fact('X')`, and the facts builtins read implicitly (`os_family`, `os`, `arch`
/// and `hostname`).
pub fn facts_used(expr: &Expr) -> Vec<String> {
    terms::facts_used(&expr.root)
}

/// The sorted, deduplicated names of the variables `expr` reads: `vars.X` and `var('X')`.
pub fn vars_used(expr: &Expr) -> Vec<String> {
    terms::vars_used(&expr.root)
}
