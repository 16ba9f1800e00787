//! Full evaluation, and partial evaluation on the server followed by evaluation of
//! the shipped residual on the agent.

use alloc::format;
use alloc::string::{String, ToString};

use crate::when::{Env, Partial, eval, parse, partial_eval};

use super::TestEnv;

/// Renders the full evaluation of `src` in `env`: `true`, `false` or the error.
fn render_eval(src: &str, env: &dyn Env) -> String {
    let expr = match parse(src) {
        Ok(expr) => expr,
        Err(e) => return format!("parse error: {e}"),
    };
    match eval(&expr, env) {
        Ok(b) => b.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

fn check_eval(env: &dyn Env, cases: &[(&str, &str)]) {
    for &(src, expected) in cases {
        assert_eq!(render_eval(src, env), expected, "eval({src:?})");
    }
}

#[test]
fn full_evaluation() {
    check_eval(
        &TestEnv::full(),
        &[
            ("os_family('debian')", "true"),
            ("os_family('RedHat', 'Debian')", "true"),
            ("os_family('redhat')", "false"),
            ("os('linux') && arch('x86_64', 'aarch64')", "true"),
            ("arch('aarch64')", "false"),
            ("hostname_matches('*.prod')", "true"),
            ("hostname_matches('db*', 'WEB0?.PROD')", "true"),
            ("hostname_matches('*.staging')", "false"),
            ("facts.cpus >= 4", "true"),
            ("facts.cpus < 4", "false"),
            ("facts.cpus == 8 and facts.cpus <= 8", "true"),
            ("facts.cpus != 8 or facts.cpus > 8", "false"),
            ("vars.tier == 'prod'", "true"),
            ("vars.tier < 'q'", "true"),
            ("'B' < 'a'", "true"),
            ("facts.virtual == false", "true"),
            ("!facts.virtual", "true"),
            ("facts.virtual", "false"),
            ("facts.addresses == facts.addresses", "true"),
            ("facts.addresses != vars.dns", "true"),
            ("version_ge(facts.os_version, '12')", "true"),
            ("version_ge(facts.os_version, vars.min_version)", "true"),
            ("version_lt(facts.os_version, '12.10')", "true"),
            ("version_ge('1.10', '1.9')", "true"),
            ("version_lt(facts.os_version, 12)", "false"),
            ("var('tier') == 'prod'", "true"),
            ("fact('os.name') == 'Debian GNU/Linux'", "true"),
            ("facts.os.name == \"Debian GNU/Linux\"", "true"),
            ("fact(vars.fact_name) == 8", "true"),
            ("has_command('nginx') && !has_command('apache2')", "true"),
            ("file_exists('/etc/nginx/nginx.conf')", "true"),
            ("file_exists('/nope')", "false"),
            ("hour_range(2, 5) && hour_range(3, 4)", "true"),
            ("hour_range(4, 6)", "false"),
            ("hour_range(22, 6)", "true"),
            ("hour_range(6, 22)", "false"),
            ("hour_range(vars.replicas, facts.cpus)", "true"),
            ("weekday('sat', 'sun')", "true"),
            ("weekday('Saturday')", "true"),
            ("weekday('mon')", "false"),
            // Short circuits skip operands that would fail, so guards work.
            ("true || facts.missing == 1", "true"),
            ("false && facts.missing == 1", "false"),
            (
                "os_family('redhat') && version_ge(facts.redhat_version, '8')",
                "false",
            ),
            // Errors.
            (
                "facts.missing == 1",
                "error: the node reports no fact 'missing'; check the name against the node's facts",
            ),
            (
                "vars.nope == 1",
                "error: unknown variable 'nope'; define it under vars: or fix the name",
            ),
            (
                "var('nope') == 1",
                "error: in `var('nope')`: unknown variable 'nope'; define it under vars: or fix the name",
            ),
            (
                "facts.cpus >= '4'",
                "error: in `facts.cpus >= '4'`: cannot compare an integer with a string; \
                 make both sides the same type",
            ),
            (
                "facts.virtual < vars.debug",
                "error: in `facts.virtual < vars.debug`: cannot use < on booleans; \
                 only == and != apply to them",
            ),
            (
                "facts.addresses < vars.dns",
                "error: in `facts.addresses < vars.dns`: cannot use < on lists; \
                 only == and != apply to them",
            ),
            (
                "facts.addresses == 'x'",
                "error: in `facts.addresses == 'x'`: cannot compare a list with a string; \
                 make both sides the same type",
            ),
            (
                "facts.os && true",
                "error: in `facts.os`: && needs true or false, but this is a string; \
                 compare it, e.g. facts.os == 'linux'",
            ),
            (
                "!facts.cpus",
                "error: in `facts.cpus`: ! needs true or false, but this is an integer; \
                 compare it, e.g. facts.os == 'linux'",
            ),
            (
                "facts.os",
                "error: in `facts.os`: a condition needs true or false, but this is a string; \
                 compare it, e.g. facts.os == 'linux'",
            ),
            (
                "os_family(facts.cpus)",
                "error: in `os_family(facts.cpus)`: argument 1 of os_family() must be a string, \
                 not an integer; write e.g. os_family('debian', ...)",
            ),
            (
                "hour_range(2, vars.late)",
                "error: in `hour_range(2, vars.late)`: hour 30 is out of range in hour_range(); \
                 use 0 to 24",
            ),
            (
                "weekday(vars.tier)",
                "error: in `weekday(vars.tier)`: 'prod' is not a weekday; \
                 use mon, tue, wed, thu, fri, sat or sun",
            ),
        ],
    );
}

#[test]
fn full_evaluation_refuses_what_this_side_cannot_know() {
    check_eval(
        &TestEnv::server(),
        &[
            ("os_family('debian') || has_command('nginx')", "true"),
            (
                "os_family('debian') && !has_command('nginx')",
                "error: cannot decide `has_command('nginx')` on this side: it depends on the \
                 machine at apply time, so only the agent can evaluate it",
            ),
        ],
    );
    check_eval(
        &TestEnv::server_without_facts(),
        &[(
            "vars.tier == 'prod' && facts.cpus > 2",
            "error: cannot decide `facts.cpus > 2` on this side: a fact or variable it reads \
             is not known here",
        )],
    );
}

/// Partially evaluates `src` in `server`, renders the outcome (the residual's text
/// if any), then parses that text as the agent would and evaluates it there.
/// Returns both renderings.
fn render_partial(src: &str, server: &dyn Env) -> (String, String) {
    let expr = match parse(src) {
        Ok(expr) => expr,
        Err(e) => return (format!("parse error: {e}"), String::new()),
    };
    match partial_eval(&expr, server) {
        Ok(Partial::Known(b)) => (b.to_string(), b.to_string()),
        Ok(Partial::Residual(residual)) => {
            let text = residual.to_string();
            let on_agent = render_eval(&text, &TestEnv::agent());
            (text, on_agent)
        }
        Err(e) => (format!("error: {e}"), String::new()),
    }
}

/// Each case is (condition, residual shipped by the server, result on the agent).
/// Where the server knows the facts, the result must also match full evaluation.
fn check_partial(server: &dyn Env, cases: &[(&str, &str, &str)]) {
    for &(src, residual, on_agent) in cases {
        let actual = render_partial(src, server);
        assert_eq!(
            (actual.0.as_str(), actual.1.as_str()),
            (residual, on_agent),
            "partial_eval({src:?})"
        );
    }
}

#[test]
fn server_then_agent() {
    check_partial(
        &TestEnv::server(),
        &[
            (
                "os_family('debian') && !has_command('nginx')",
                "!has_command('nginx')",
                "false",
            ),
            (
                "os_family('redhat') && !has_command('nginx')",
                "false",
                "false",
            ),
            (
                "has_command('nginx') && os_family('redhat')",
                "false",
                "false",
            ),
            (
                "has_command('nginx') || os_family('debian')",
                "true",
                "true",
            ),
            (
                "has_command('nginx') || os_family('redhat')",
                "has_command('nginx')",
                "true",
            ),
            ("facts.cpus >= 4 or vars.tier == \"prod\"", "true", "true"),
            (
                "version_ge(facts.os_version, '12') and hour_range(2, 5)",
                "hour_range(2, 5)",
                "true",
            ),
            (
                "vars.tier == 'prod' && file_exists(vars.tier)",
                "file_exists('prod')",
                "false",
            ),
            (
                "has_command(vars.tier) == vars.debug",
                "has_command('prod') == false",
                "true",
            ),
            (
                "weekday('sat') && hostname_matches('web*') && (has_command('curl') || file_exists('/x'))",
                "weekday('sat') && (has_command('curl') || file_exists('/x'))",
                "true",
            ),
            (
                "!(os('linux') && has_command('nginx'))",
                "!has_command('nginx')",
                "false",
            ),
            (
                "!has_command('a') && !has_command('b') || false",
                "!has_command('a') && !has_command('b')",
                "true",
            ),
            (
                "(has_command('a') && has_command('b')) && true && has_command('c')",
                "has_command('a') && has_command('b') && has_command('c')",
                "false",
            ),
            (
                "file_exists(fact('os.name') == 'x' || true)",
                "parse error: at column 13: argument 1 of file_exists() must be a string, \
                 not a boolean; write e.g. file_exists('/etc/nginx/nginx.conf')",
                "",
            ),
            ("true", "true", "true"),
            (
                "has_command('nginx') && facts.missing == 1",
                "error: the node reports no fact 'missing'; check the name against the node's facts",
                "",
            ),
            (
                "has_command(fact('cpus'))",
                "error: in `has_command(fact('cpus'))`: argument 1 of has_command() must be a \
                 string, not an integer; write e.g. has_command('nginx')",
                "",
            ),
        ],
    );
}

#[test]
fn server_without_facts_then_agent() {
    check_partial(
        &TestEnv::server_without_facts(),
        &[
            (
                "os_family('debian') && vars.tier == 'prod'",
                "os_family('debian')",
                "true",
            ),
            ("facts.cpus >= vars.replicas", "facts.cpus >= 3", "true"),
            ("fact(vars.fact_name) > 2", "fact('cpus') > 2", "true"),
            (
                "hostname_matches('web*')",
                "hostname_matches('web*')",
                "true",
            ),
            (
                "facts.os == vars.tier || facts.os.name == 'it\\'s'",
                "facts.os == 'prod' || facts.os.name == 'it\\'s'",
                "false",
            ),
            // A list has no literal form, so the reference stays, and the agent,
            // which has no variables, cannot decide it.
            (
                "facts.addresses == vars.dns",
                "facts.addresses == vars.dns",
                "error: cannot decide `facts.addresses == vars.dns` on this side: a fact or \
                 variable it reads is not known here",
            ),
            // A type error the server cannot see yet is caught by the agent.
            (
                "facts.cpus >= vars.tier",
                "facts.cpus >= 'prod'",
                "error: in `facts.cpus >= 'prod'`: cannot compare an integer with a string; \
                 make both sides the same type",
            ),
            (
                "fact(vars.fact_name) == has_command(vars.tier)",
                "fact('cpus') == has_command('prod')",
                "error: in `fact('cpus') == has_command('prod')`: cannot compare an integer \
                 with a boolean; make both sides the same type",
            ),
            // A substituted value that makes the residual ill-typed is an error at once,
            // so that the residual always parses.
            (
                "vars.tier == has_command(fact('x'))",
                "error: in `vars.tier == has_command(fact('x'))`: cannot compare a string \
                 with a boolean; make both sides the same type",
                "",
            ),
        ],
    );
}
