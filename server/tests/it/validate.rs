//! `config validate`: every fixture's diagnostics, compared with its `.expected` file.

use vigo_server::config;
use vigo_server::secrets::FileProvider;

use crate::fixture::{TempDir, expect, fixtures, materialize};

fn diagnostics(text: &str) -> String {
    let tmp = TempDir::new("validate");
    materialize(text, &tmp.0);
    let (_, diags) = config::load(
        &tmp.0.join("config"),
        &FileProvider::new(&tmp.0.join("secrets")),
    );
    let mut out = String::new();
    for d in &diags {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    if diags.is_empty() {
        out.push_str("ok\n");
    }
    out.replace(&tmp.0.display().to_string(), "$TMP")
}

#[test]
fn validate_fixtures() {
    let failures: Vec<String> = fixtures("validate")
        .iter()
        .filter_map(|f| expect(f, &diagnostics(&std::fs::read_to_string(f).unwrap())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_example_fleet_is_clean() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    let (config, diags) = config::load(
        &root.join("config"),
        &FileProvider::new(&root.join("secrets")),
    );
    assert!(diags.is_empty(), "{diags:#?}");
    assert!(config.modules.len() >= 4);
}
