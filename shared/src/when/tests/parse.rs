//! Parsing (tree shape, precedence and every error) and canonical printing.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::when::ast::{Literal, Node};
use crate::when::parse;

/// Renders a tree fully parenthesized, so that tests show its exact shape.
fn sexp(node: &Node) -> String {
    let list = |head: &str, children: &[Node]| {
        let children: Vec<String> = children.iter().map(sexp).collect();
        format!("({head} {})", children.join(" "))
    };
    match node {
        Node::Lit(Literal::Str(s)) => format!("{s:?}"),
        Node::Lit(Literal::Int(i)) => i.to_string(),
        Node::Lit(Literal::Bool(b)) => b.to_string(),
        Node::Fact(name) => format!("facts.{name}"),
        Node::Var(name) => format!("vars.{name}"),
        Node::Call(builtin, args) => list(builtin.name(), args),
        Node::Not(operand) => format!("(! {})", sexp(operand)),
        Node::And(operands) => list("&&", operands),
        Node::Or(operands) => list("||", operands),
        Node::Cmp(op, left, right) => format!("({} {} {})", op.symbol(), sexp(left), sexp(right)),
    }
}

/// Renders the result of parsing `src`: the tree, or the error with its offset.
fn render(src: &str) -> String {
    match parse(src) {
        Ok(expr) => sexp(&expr.root),
        Err(e) => format!("error@{}: {e}", e.offset),
    }
}

fn check(cases: &[(&str, &str)]) {
    for &(src, expected) in cases {
        assert_eq!(render(src), expected, "parse({src:?})");
    }
}

#[test]
fn values_and_calls() {
    check(&[
        ("true", "true"),
        ("facts.virtual", "facts.virtual"),
        ("vars.debug", "vars.debug"),
        ("facts.os.name == 'x'", r#"(== facts.os.name "x")"#),
        (r#"vars.tier == "prod""#, r#"(== vars.tier "prod")"#),
        ("facts.cpus >= 4", "(>= facts.cpus 4)"),
        ("facts.cpus > -1", "(> facts.cpus -1)"),
        ("os_family('debian')", r#"(os_family "debian")"#),
        (
            "os_family('debian', 'ubuntu')",
            r#"(os_family "debian" "ubuntu")"#,
        ),
        (
            "version_ge(facts.os_version, 12)",
            "(version_ge facts.os_version 12)",
        ),
        ("hour_range(22, 6)", "(hour_range 22 6)"),
        ("var('tier') == 'prod'", r#"(== (var "tier") "prod")"#),
        ("fact(vars.fact_name) > 2", "(> (fact vars.fact_name) 2)"),
        ("  has_command( 'nginx' )  ", r#"(has_command "nginx")"#),
    ]);
}

#[test]
fn precedence() {
    check(&[
        (
            "facts.a || facts.b && facts.c",
            "(|| facts.a (&& facts.b facts.c))",
        ),
        (
            "facts.a && facts.b || facts.c",
            "(|| (&& facts.a facts.b) facts.c)",
        ),
        (
            "facts.a or facts.b and facts.c",
            "(|| facts.a (&& facts.b facts.c))",
        ),
        (
            "facts.a && facts.b && facts.c",
            "(&& facts.a facts.b facts.c)",
        ),
        (
            "(facts.a && facts.b) && facts.c",
            "(&& (&& facts.a facts.b) facts.c)",
        ),
        (
            "facts.a && (facts.b || facts.c)",
            "(&& facts.a (|| facts.b facts.c))",
        ),
        ("!facts.a && facts.b", "(&& (! facts.a) facts.b)"),
        ("not facts.a or facts.b", "(|| (! facts.a) facts.b)"),
        ("!!facts.a", "(! (! facts.a))"),
        ("! not facts.a", "(! (! facts.a))"),
        // `!` binds more loosely than comparisons.
        ("!facts.os == 'linux'", r#"(! (== facts.os "linux"))"#),
        ("(!facts.virtual) == true", "(== (! facts.virtual) true)"),
        (
            "facts.cpus >= 4 or vars.tier == \"prod\"",
            r#"(|| (>= facts.cpus 4) (== vars.tier "prod"))"#,
        ),
        (
            "os_family('debian') && !has_command('nginx')",
            r#"(&& (os_family "debian") (! (has_command "nginx")))"#,
        ),
        (
            "version_ge(facts.os_version, '12') and hour_range(2, 5)",
            r#"(&& (version_ge facts.os_version "12") (hour_range 2 5))"#,
        ),
        ("(facts.a)", "facts.a"),
        (
            "os(facts.a || facts.b)",
            "error@3: at column 4: argument 1 of os() must be a string, \
          not a boolean; write e.g. os('linux', ...)",
        ),
    ]);
}

#[test]
fn errors() {
    check(&[
        (
            "",
            "error@0: at column 1: the condition is empty; write one, e.g. os_family('debian')",
        ),
        (
            "   ",
            "error@3: at column 4: the condition is empty; write one, e.g. os_family('debian')",
        ),
        (
            "facts.a &&",
            "error@10: at column 11: the condition ends too early; expected a value",
        ),
        (
            "facts.a && )",
            "error@11: at column 12: expected a value, found ')'",
        ),
        (
            "facts.a facts.b",
            "error@8: at column 9: expected an operator or the end of the condition, found 'facts.b'",
        ),
        (
            "12abc == 1",
            "error@2: at column 3: expected an operator or the end of the condition, found 'abc'",
        ),
        (
            "(facts.a",
            "error@8: at column 9: expected ')' to close the '(' at column 1, found the end of the condition",
        ),
        (
            "facts.a)",
            "error@7: at column 8: expected an operator or the end of the condition, found ')'",
        ),
        (
            "facts.a == facts.b == facts.c",
            "error@19: at column 20: comparisons cannot be chained; join them with &&, e.g. a < b && b < c",
        ),
        (
            "1 < 2 < 3",
            "error@6: at column 7: comparisons cannot be chained; join them with &&, e.g. a < b && b < c",
        ),
        (
            "facts.a = 1",
            "error@8: at column 9: use '==' to compare values",
        ),
        (
            "é == 'x'",
            "error@0: at column 1: unexpected character 'é'; remove it",
        ),
        (
            "'é' == 'x",
            "error@8: at column 8: this string is never closed; end it with '",
        ),
        (
            "x() || facts.b",
            "error@0: at column 1: unknown function 'x'; the functions are \
          os_family, os, arch, hostname_matches, var, fact, version_ge, version_lt, \
          has_command, file_exists, hour_range, weekday",
        ),
        (
            "os_famly('debian')",
            "error@0: at column 1: unknown function 'os_famly'; did you mean 'os_family'?",
        ),
        (
            "x && has_comand('a')",
            "error@0: at column 1: unknown name 'x'; read a fact as facts.x or a variable as vars.x",
        ),
        (
            "facts.a && has_comand('a')",
            "error@11: at column 12: unknown function 'has_comand'; did you mean 'has_command'?",
        ),
        (
            "facts.os.name('a')",
            "error@0: at column 1: unknown function 'facts.os.name'; the functions are \
          os_family, os, arch, hostname_matches, var, fact, version_ge, version_lt, \
          has_command, file_exists, hour_range, weekday",
        ),
        (
            "facts == 1",
            "error@0: at column 1: expected a fact name after 'facts', e.g. facts.os_family",
        ),
        (
            "vars",
            "error@0: at column 1: expected a variable name after 'vars', e.g. vars.tier",
        ),
        (
            "os_family",
            "error@0: at column 1: os_family is a function; call it with arguments, e.g. os_family(...)",
        ),
        (
            "facts.a AND facts.b",
            "error@8: at column 9: keywords are lowercase; write 'and'",
        ),
        (
            "True",
            "error@0: at column 1: keywords are lowercase; write 'true'",
        ),
        (
            "fact.os == 'linux'",
            "error@0: at column 1: unknown name 'fact.os'; did you mean facts.os?",
        ),
        (
            "var.tier == 'prod'",
            "error@0: at column 1: unknown name 'var.tier'; did you mean vars.tier?",
        ),
        (
            "node.name == 'x'",
            "error@0: at column 1: unknown name 'node.name'; read a fact as facts.NAME or a variable as vars.NAME",
        ),
        (
            "os('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h') && arch()",
            "error@46: at column 47: arch() takes at least 1 argument, got 0; write e.g. arch('x86_64', ...)",
        ),
        // Arity.
        (
            "os_family()",
            "error@0: at column 1: os_family() takes at least 1 argument, got 0; write e.g. os_family('debian', ...)",
        ),
        (
            "has_command('a', 'b')",
            "error@0: at column 1: has_command() takes exactly 1 argument, got 2; write e.g. has_command('nginx')",
        ),
        (
            "!version_ge('1')",
            "error@1: at column 2: version_ge() takes exactly 2 arguments, got 1; write e.g. version_ge(facts.os_version, '12')",
        ),
        (
            "os('a',)",
            "error@7: at column 8: expected a value, found ')'",
        ),
        (
            "os('a' 'b')",
            "error@7: at column 8: expected ',' or ')' in the call to os(), found a string",
        ),
        (
            "os('a'",
            "error@6: at column 7: expected ',' or ')' in the call to os(), found the end of the condition",
        ),
        // Literal argument types and values.
        (
            "os_family(1)",
            "error@10: at column 11: argument 1 of os_family() must be a string, not an integer; write e.g. os_family('debian', ...)",
        ),
        (
            "hour_range('2', 5)",
            "error@11: at column 12: argument 1 of hour_range() must be an integer, not a string; write e.g. hour_range(2, 5)",
        ),
        (
            "hour_range(2, 25)",
            "error@14: at column 15: hour 25 is out of range in hour_range(); use 0 to 24",
        ),
        (
            "hour_range(24, 2)",
            "error@11: at column 12: hour 24 is out of range in hour_range(); use 0 to 23",
        ),
        (
            "weekday('sat', 'sundae')",
            "error@15: at column 16: 'sundae' is not a weekday; use mon, tue, wed, thu, fri, sat or sun",
        ),
        (
            "hostname_matches('db[1')",
            "error@17: at column 18: in hostname_matches(): the '[' at column 3 is never closed; add a ']' or remove the '['",
        ),
        (
            "has_command('')",
            "error@12: at column 13: has_command() needs a non-empty argument; write e.g. has_command('nginx')",
        ),
        (
            "var('a b') == 1",
            "error@4: at column 5: 'a b' is not a valid name for var(); names are letters, digits, '_' and '.'",
        ),
        (
            "version_ge(true, '1')",
            "error@11: at column 12: argument 1 of version_ge() must be a string or an integer, not a boolean; write e.g. version_ge(facts.os_version, '12')",
        ),
        // Types that are wrong before evaluating anything.
        (
            "'debian'",
            "error@0: at column 1: a condition needs true or false, but this is a string; compare it, e.g. facts.os == 'linux'",
        ),
        (
            "facts.a && 1",
            "error@11: at column 12: && needs true or false, but this is an integer; compare it, e.g. facts.os == 'linux'",
        ),
        (
            "'a' || facts.a",
            "error@0: at column 1: || needs true or false, but this is a string; compare it, e.g. facts.os == 'linux'",
        ),
        (
            "!'a'",
            "error@1: at column 2: ! needs true or false, but this is a string; compare it, e.g. facts.os == 'linux'",
        ),
        (
            "facts.cpus == 4 == true",
            "error@16: at column 17: comparisons cannot be chained; join them with &&, e.g. a < b && b < c",
        ),
        (
            "1 == '1'",
            "error@2: at column 3: cannot compare an integer with a string; make both sides the same type",
        ),
        (
            "true < facts.a",
            "error@5: at column 6: cannot use < on booleans; only == and != apply to them",
        ),
        (
            "has_command('a') >= facts.a",
            "error@17: at column 18: cannot use >= on booleans; only == and != apply to them",
        ),
        (
            "os('linux') == 'linux'",
            "error@12: at column 13: cannot compare a boolean with a string; make both sides the same type",
        ),
    ]);
}

#[test]
fn nesting_is_limited() {
    let deep_parens = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
    let deep_nots = format!("{}true", "!".repeat(10_000));
    let deep_calls = format!("{}'x'{}", "var(".repeat(10_000), ")".repeat(10_000));
    for src in [deep_parens, deep_nots, deep_calls] {
        let error = parse(&src).err().map(|e| e.message);
        assert_eq!(
            error.as_deref(),
            Some("the condition nests more than 64 levels deep; simplify it")
        );
    }
    // Long flat chains are fine.
    let chain = ["facts.a"; 1000].join(" && ");
    assert!(parse(&chain).is_ok());
}

/// Checks that `src` prints as `canonical` and that the canonical text parses back
/// to the same tree and prints the same again.
fn check_print(cases: &[(&str, &str)]) {
    for &(src, canonical) in cases {
        let Ok(expr) = parse(src) else {
            panic!("parse({src:?}) failed")
        };
        assert_eq!(expr.to_string(), canonical, "printing {src:?}");
        assert_eq!(
            parse(canonical).as_ref(),
            Ok(&expr),
            "reparsing {canonical:?}"
        );
    }
}

#[test]
fn printing() {
    check_print(&[
        (
            "facts.a and facts.b or not facts.c",
            "facts.a && facts.b || !facts.c",
        ),
        (
            "facts.a && (facts.b || facts.c)",
            "facts.a && (facts.b || facts.c)",
        ),
        (
            "(facts.a || facts.b) && facts.c",
            "(facts.a || facts.b) && facts.c",
        ),
        (
            "(facts.a && facts.b) && facts.c",
            "(facts.a && facts.b) && facts.c",
        ),
        (
            "facts.a || (facts.b || facts.c)",
            "facts.a || (facts.b || facts.c)",
        ),
        ("((facts.a))", "facts.a"),
        ("!(facts.a && facts.b)", "!(facts.a && facts.b)"),
        ("!(facts.os == 'x')", "!facts.os == 'x'"),
        ("(!facts.a) == false", "(!facts.a) == false"),
        (
            "(facts.a == 1) == (facts.b < 2)",
            "(facts.a == 1) == (facts.b < 2)",
        ),
        ("not not facts.a", "!!facts.a"),
        ("vars.tier==\"prod\"", "vars.tier == 'prod'"),
        (r#"facts.a == "it's \"x\"""#, r#"facts.a == 'it\'s "x"'"#),
        (r"facts.a == 'a\\b\n\tc'", r"facts.a == 'a\\b\n\tc'"),
        ("facts.a == 'é'", "facts.a == 'é'"),
        (
            "facts.a >= -9223372036854775808",
            "facts.a >= -9223372036854775808",
        ),
        (
            "os_family('debian','ubuntu')",
            "os_family('debian', 'ubuntu')",
        ),
        ("var(fact('name'))==1", "var(fact('name')) == 1"),
        (
            "hour_range(22,6) || weekday('Sat')",
            "hour_range(22, 6) || weekday('Sat')",
        ),
    ]);
}
