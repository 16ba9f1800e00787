//! `config trace` and `compile`: fixtures with a node name (and optional facts) whose
//! trace and bundle summary are compared with `.expected` files.

use std::fmt::Write as _;
use std::path::Path;

use vigo_server::compile::{self, facts_from_json};
use vigo_server::config;
use vigo_server::secrets::FileProvider;
use vigo_shared::bundle::{AttrValue, Bundle};

use crate::fixture::{TempDir, expect, fixtures, materialize};

/// The day the fixtures are traced on, so waiver expiry is reproducible.
const TODAY: &str = "2026-11-29";

/// The bundle as readable text: resources in order with their attributes; sensitive
/// values redacted exactly as every report shows them.
pub fn bundle_summary(b: &Bundle) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "bundle for {} (observe {}, interval {}s)",
        b.node, b.observe, b.interval_secs
    );
    for r in &b.resources {
        let _ = writeln!(o, "  {} [{}]", r.id(), r.origin);
        if let Some(w) = &r.when {
            let _ = writeln!(o, "    when {w}");
        }
        if let Some(s) = &r.skip {
            let _ = writeln!(o, "    SKIP {s}");
        }
        for a in &r.attrs {
            let v = match &a.value {
                AttrValue::Str(s) => format!("{s:?}"),
                AttrValue::Int(i) => i.to_string(),
                AttrValue::Bool(b) => b.to_string(),
                AttrValue::List(l) => format!("{l:?}"),
                AttrValue::Sensitive(_) => "<sensitive>".into(),
                AttrValue::Sealed(_) => "<sealed>".into(),
            };
            let _ = writeln!(o, "    {} = {v}", a.key);
        }
        if !r.depends_on.is_empty() {
            let _ = writeln!(o, "    depends_on {:?}", r.depends_on);
        }
        if !r.notify.is_empty() {
            let _ = writeln!(o, "    notify {:?}", r.notify);
        }
    }
    o
}

fn trace_dir(root: &Path, node: &str, facts: Option<&str>) -> String {
    let (config, diags) = config::load(
        &root.join("config"),
        &FileProvider::new(&root.join("secrets")),
    );
    let mut out = String::new();
    for d in &diags {
        let _ = writeln!(out, "diagnostic: {d}");
    }
    let facts = facts.map(|f| facts_from_json(f).expect("fixture facts are valid JSON"));
    match compile::compile(&config, node, facts.as_ref(), TODAY) {
        Ok(c) => {
            out.push_str(&c.trace.render_text());
            out.push('\n');
            out.push_str(&bundle_summary(&c.bundle));
        }
        Err(e) => {
            let _ = writeln!(out, "compile error: {e}");
        }
    }
    out
}

#[test]
fn trace_fixtures() {
    let mut failures = Vec::new();
    for f in fixtures("trace") {
        let tmp = TempDir::new("trace");
        materialize(&std::fs::read_to_string(&f).unwrap(), &tmp.0);
        let node = std::fs::read_to_string(tmp.0.join("node"))
            .expect("trace fixtures name their node in `//- node`");
        let facts = std::fs::read_to_string(tmp.0.join("facts.json")).ok();
        failures.extend(expect(
            &f,
            &trace_dir(&tmp.0, node.trim(), facts.as_deref()),
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn example_fleet_traces() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    let db_facts = r#"{"os_family":"debian","os":"debian","os_version":"12","arch":"x86_64","hostname":"db01.demo","cpus":2}"#;
    let cases = [
        ("web01.prod", None, "example_web01"),
        ("db01.demo", Some(db_facts), "example_db01"),
    ];
    let mut failures = Vec::new();
    for (node, facts, name) in cases {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/trace-example")
            .join(format!("{name}.txt"));
        failures.extend(expect(&fixture, &trace_dir(&root, node, facts)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The planted secrets of the example fleet must appear in no trace (text or JSON), no
/// error and no Debug output of the bundle; only inside sensitive attribute values.
#[test]
fn secrets_never_leak_into_traces_or_debug() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    let planted: Vec<String> = [
        "vigo/os-users/alice",
        "vigo/db/password",
        "vigo/db/root-token",
    ]
    .iter()
    .map(|p| {
        std::fs::read_to_string(root.join("secrets").join(p))
            .unwrap()
            .trim()
            .to_string()
    })
    .collect();
    let (config, diags) = config::load(
        &root.join("config"),
        &FileProvider::new(&root.join("secrets")),
    );
    assert!(diags.is_empty());
    let facts =
        facts_from_json(r#"{"os_family":"debian","os":"debian","hostname":"db01.demo"}"#).unwrap();
    let c = compile::compile(&config, "db01.demo", Some(&facts), TODAY).unwrap();
    let surfaces = [
        c.trace.render_text(),
        serde_json::to_string(&c.trace).unwrap(),
        format!("{:?}", c.bundle),
        format!("{config:?}"),
    ];
    for s in &surfaces {
        for p in &planted {
            assert!(
                !s.contains(p.as_str()),
                "secret value leaked into: {}",
                &s[..s.len().min(200)]
            );
        }
    }
    // The secret did reach the bundle, sealed inside a sensitive value.
    let pgpass = c
        .bundle
        .resources
        .iter()
        .find(|r| r.name == "/etc/vigo-managed/pgpass")
        .unwrap();
    match pgpass.attr("content") {
        Some(AttrValue::Sensitive(s)) => assert!(s.expose().contains("pg-Demo-Pass-4821")),
        other => panic!("pgpass content should be sensitive, got {other:?}"),
    }
    let alice = c
        .bundle
        .resources
        .iter()
        .find(|r| r.name == "alice")
        .unwrap();
    match alice.attr("password") {
        Some(AttrValue::Sensitive(s)) => {
            assert!(s.expose().starts_with("$6$") && !s.expose().contains(&planted[0]))
        }
        other => panic!("alice's password should be a sensitive hash, got {other:?}"),
    }
}

/// Same inputs, same bytes: compiling twice gives identical canonical bundles.
#[test]
fn compile_is_deterministic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    let load = || {
        config::load(
            &root.join("config"),
            &FileProvider::new(&root.join("secrets")),
        )
        .0
    };
    let (a, b) = (load(), load());
    let ca = compile::compile(&a, "web01.prod", None, TODAY).unwrap();
    let cb = compile::compile(&b, "web01.prod", None, TODAY).unwrap();
    assert_eq!(
        vigo_shared::codec::encode(&ca.bundle),
        vigo_shared::codec::encode(&cb.bundle)
    );
    assert_eq!(ca.hash, cb.hash);
}
