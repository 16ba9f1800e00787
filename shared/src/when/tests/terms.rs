//! Terms for `config trace`, and the facts and variables a condition reads.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::when::{facts_used, parse, terms, vars_used};

fn check_terms(cases: &[(&str, &[&str])]) {
    for &(src, expected) in cases {
        let rendered: Vec<String> = match parse(src) {
            Ok(expr) => terms(&expr)
                .into_iter()
                .map(|term| format!("{}: {}", term.side, term.text))
                .collect(),
            Err(e) => Vec::from([format!("parse error: {e}")]),
        };
        assert_eq!(rendered, expected, "terms({src:?})");
    }
}

#[test]
fn leaf_conditions_and_their_sides() {
    check_terms(&[
        (
            "os_family('debian') && !has_command('nginx')",
            &["server: os_family('debian')", "agent: has_command('nginx')"],
        ),
        (
            "facts.cpus >= 4 or vars.tier == \"prod\"",
            &["server: facts.cpus >= 4", "server: vars.tier == 'prod'"],
        ),
        (
            "has_command(facts.cmd) == true && facts.virtual && (facts.virtual || false)",
            &[
                "agent: has_command(facts.cmd) == true",
                "server: facts.virtual",
            ],
        ),
        (
            "true && version_ge(facts.os_version, '12') && hour_range(22, 6)",
            &[
                "server: version_ge(facts.os_version, '12')",
                "agent: hour_range(22, 6)",
            ],
        ),
        ("true", &[]),
    ]);
}

fn check_names(used: fn(&crate::when::Expr) -> Vec<String>, cases: &[(&str, &[&str])]) {
    for &(src, expected) in cases {
        let names = match parse(src) {
            Ok(expr) => used(&expr),
            Err(e) => Vec::from([format!("parse error: {e}")]),
        };
        assert_eq!(names, expected, "{src:?}");
    }
}

#[test]
fn facts_read() {
    check_names(
        facts_used,
        &[
            (
                "os_family('d') && arch('x') && hostname_matches('*') && os('l') \
                 && facts.cpus > fact('os.name') && facts.cpus > 1",
                &["arch", "cpus", "hostname", "os", "os.name", "os_family"],
            ),
            (
                "fact(vars.name) == 1 && vars.x == 2 && has_command('a')",
                &[],
            ),
        ],
    );
}

#[test]
fn vars_read() {
    check_names(
        vars_used,
        &[
            (
                "vars.tier == var('replicas') && fact(vars.fact_name) == 1 && vars.tier != 'x'",
                &["fact_name", "replicas", "tier"],
            ),
            ("var(facts.x) == 1 && facts.y == 2", &[]),
        ],
    );
}
