//! The no-panic property: arbitrary input never panics the parser, whatever parses
//! prints back to itself, and evaluating it never panics either.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::when::{Expr, Partial, eval, parse, partial_eval};

use super::TestEnv;

/// A small deterministic pseudo-random generator (Knuth's MMIX constants), so that
/// the test needs no crate and fails the same way every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in `0..n`; `n` is a small length, so the conversions are lossless.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len())]
    }

    fn byte(&mut self) -> u8 {
        // Keeping the low eight bits is the point: any byte at all.
        self.next() as u8
    }
}

const VALUES: &[&str] = &[
    "'prod'",
    "\"it\\'s\"",
    "3",
    "-1",
    "true",
    "false",
    "facts.cpus",
    "facts.os",
    "facts.virtual",
    "facts.addresses",
    "facts.missing",
    "vars.tier",
    "vars.replicas",
    "vars.dns",
    "vars.nope",
    "fact('cpus')",
    "var('tier')",
    "'12.4'",
];

const CALLS: &[&str] = &[
    "os_family('debian')",
    "os('linux', 'freebsd')",
    "arch(facts.arch)",
    "hostname_matches('*.prod', 'db[0-9]')",
    "version_ge(facts.os_version, vars.tier)",
    "version_lt('1.9', 10)",
    "has_command(vars.tier)",
    "file_exists('/etc/nginx/nginx.conf')",
    "hour_range(22, 6)",
    "hour_range(vars.replicas, facts.cpus)",
    "weekday('sat', facts.os)",
];

const OPERATORS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

/// A random expression that is usually well formed, though often ill typed.
fn expression(rng: &mut Lcg, depth: usize) -> String {
    let choice = if depth == 0 {
        rng.below(3)
    } else {
        rng.below(7)
    };
    match choice {
        0 => String::from(rng.pick(CALLS)),
        1 => [rng.pick(VALUES), rng.pick(OPERATORS), rng.pick(VALUES)].join(" "),
        2 => String::from(rng.pick(VALUES)),
        3 => ["!", &expression(rng, depth - 1)].concat(),
        4 => ["(", &expression(rng, depth - 1), ")"].concat(),
        5 => [expression(rng, depth - 1), expression(rng, depth - 1)].join(" && "),
        _ => [expression(rng, depth - 1), expression(rng, depth - 1)].join(" or "),
    }
}

/// Damages `bytes` a little: deletes, duplicates or replaces a few bytes.
fn mutate(rng: &mut Lcg, bytes: &mut Vec<u8>) {
    for _ in 0..rng.below(4) {
        if bytes.is_empty() {
            return;
        }
        let at = rng.below(bytes.len());
        match rng.below(3) {
            0 => {
                bytes.remove(at);
            }
            1 => bytes.insert(at, bytes[at]),
            _ => bytes[at] = rng.byte(),
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Lcg(0x5eed);
    for _ in 0..300 {
        let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.byte()).collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn damaged_expressions_never_panic() {
    let mut rng = Lcg(0xc0ffee);
    let mut parsed = 0;
    for _ in 0..600 {
        let mut bytes = expression(&mut rng, 4).into_bytes();
        if rng.below(2) == 0 {
            mutate(&mut rng, &mut bytes);
        }
        if check(&String::from_utf8_lossy(&bytes)) {
            parsed += 1;
        }
    }
    // Make sure the test reaches the printer and evaluator, not just parse errors.
    assert!(parsed > 100, "only {parsed} inputs parsed");
}

/// Parses `src`; if it parses, checks that it prints back to itself and that
/// evaluating it, or what is left of it on the server, never panics. Returns
/// whether it parsed.
fn check(src: &str) -> bool {
    let Ok(expr) = parse(src) else {
        return false;
    };
    let text = expr.to_string();
    assert_eq!(
        parse(&text).as_ref(),
        Ok(&expr),
        "reparsing {text:?} from {src:?}"
    );
    check_residuals(&expr);
    let _ = eval(&expr, &TestEnv::full());
    true
}

fn check_residuals(expr: &Expr) {
    for server in [TestEnv::server(), TestEnv::server_without_facts()] {
        if let Ok(Partial::Residual(residual)) = partial_eval(expr, &server) {
            let text = residual.to_string();
            assert_eq!(
                parse(&text).as_ref(),
                Ok(&residual),
                "reparsing residual {text:?}"
            );
            let _ = eval(&residual, &TestEnv::agent());
        }
    }
}
