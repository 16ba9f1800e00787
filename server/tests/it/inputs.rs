//! Which bundles a publish keeps (`compile::inputs`), checked against the compiler itself:
//! for each change to the example fleet's config and each node, the bundle is kept exactly
//! when the table says so, and a kept bundle is always what the new config compiles (its
//! `policy` field aside, which names the config it was compiled from).

use std::path::Path;

use vigo_server::compile::{self, Facts, facts_from_json, inputs::ConfigDigests};
use vigo_server::config::{self, Config};
use vigo_server::secrets::FileProvider;

use crate::fixture::TempDir;
use crate::serverkit::copy_tree;

const TODAY: &str = "2026-11-29";

/// Nodes of the example fleet: rules `everyone` (`*`), `web` (`web*.prod`), `db`
/// (`db*.prod`, with a fact condition) and `canary` (`canary*`).
const NODES: [&str; 5] = [
    "web01.prod",
    "db01.prod",
    "app01.prod",
    "canary1.prod",
    "cache01.prod",
];

fn facts(node: &str) -> Facts {
    facts_from_json(&format!(
        r#"{{"os_family":"debian","os":"debian","hostname":"{node}"}}"#
    ))
    .unwrap()
}

fn load(root: &Path) -> Config {
    let (config, diags) = config::load(
        &root.join("config"),
        &FileProvider::new(&root.join("secrets")),
    );
    assert!(diags.is_empty(), "{diags:?}");
    config
}

/// Edits a file of the copied fleet: replaces `from` with `to` (`from` empty: appends).
fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let changed = if from.is_empty() {
        format!("{text}{to}")
    } else {
        assert!(text.contains(from), "{file} has no {from:?}");
        text.replacen(from, to, 1)
    };
    std::fs::write(&path, changed).unwrap();
}

fn bundle_bytes(config: &Config, node: &str) -> Vec<u8> {
    let mut b = compile::compile(config, node, Some(&facts(node)), TODAY)
        .unwrap()
        .bundle;
    b.policy.clear();
    vigo_shared::codec::encode(&b)
}

#[test]
fn a_publish_keeps_exactly_the_bundles_it_does_not_change() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    // (what changes: file, text replaced (empty: appended), new text; nodes rebuilt)
    let cases: &[(&str, &str, &str, &str, &[&str])] = &[
        (
            "a comment",
            "config/modules/base.yaml",
            "",
            "\n# a note\n",
            &[],
        ),
        (
            "a waiver's expiry (trace only)",
            "config/waivers/web-sshd.yaml",
            "2027-06-30",
            "2027-07-31",
            &[],
        ),
        (
            "a variable of the web module",
            "config/modules/web.yaml",
            "listen_port: 80",
            "listen_port: 8080",
            &["web01.prod"],
        ),
        (
            "a comment in a rule",
            "config/nodes/20-db.yaml",
            "",
            "\n# tuned\n",
            &[],
        ),
        (
            "a variable of the web rule",
            "config/nodes/10-web.yaml",
            "www.example.com",
            "www2.example.com",
            &["web01.prod"],
        ),
        (
            "the db rule's priority",
            "config/nodes/20-db.yaml",
            "priority: 20",
            "priority: 21",
            &["db01.prod"],
        ),
        (
            "a fleet-wide variable",
            "config/vigo.yaml",
            "ops@example.com",
            "sre@example.com",
            &[
                "web01.prod",
                "db01.prod",
                "app01.prod",
                "canary1.prod",
                "cache01.prod",
            ],
        ),
        (
            "the db password (a secret only db nodes read)",
            "secrets/vigo/db/password",
            "",
            "-rotated",
            &["db01.prod"],
        ),
        (
            "alice's password (module os-users, which every node gets)",
            "secrets/vigo/os-users/alice",
            "",
            "-rotated",
            &[
                "web01.prod",
                "db01.prod",
                "app01.prod",
                "canary1.prod",
                "cache01.prod",
            ],
        ),
        (
            "a file base's `source:` reads",
            "config/files/managed-readme.txt",
            "",
            "one more line\n",
            &[
                "web01.prod",
                "db01.prod",
                "app01.prod",
                "canary1.prod",
                "cache01.prod",
            ],
        ),
        (
            "a new rule for other nodes",
            "config/nodes/30-cache.yaml",
            "",
            "name: cache\nmatch: \"cache*\"\nmodules: [web]\npriority: 30\n",
            &["cache01.prod"],
        ),
        (
            "a new rule whose glob matches but whose `when` does not",
            "config/nodes/30-cache.yaml",
            "",
            "name: cache\nmatch: \"cache*\"\nwhen: \"os_family('rhel')\"\nmodules: [web]\n",
            // The glob matches: the node's bundle is rebuilt (to the same bytes) rather
            // than the rule evaluated against facts at check-in.
            &["cache01.prod"],
        ),
        (
            "the resources' line numbers (the bundle carries origins)",
            "config/modules/db.yaml",
            "resources:\n",
            "\nresources:\n",
            &["db01.prod"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, file, from, to, rebuilt) in cases {
        let dir = TempDir::new("inputs");
        copy_tree(&example, &dir.0);
        let old = load(&dir.0);
        let old_digests = ConfigDigests::of(&old).expect("this machine has randomness");
        edit(&dir.0, file, from, to);
        let new = load(&dir.0);
        let new_digests = ConfigDigests::of(&new).unwrap();
        for node in NODES {
            let compiled = compile::compile(&old, node, Some(&facts(node)), TODAY).unwrap();
            let inputs = old_digests
                .record(&old, &compiled.trace)
                .expect("every part of the config it compiled from has a digest");
            let kept = new_digests.unchanged_for(&new, &inputs, node);
            let same_bytes = bundle_bytes(&old, node) == bundle_bytes(&new, node);
            if kept && !same_bytes {
                failures.push(format!("{what}: {node} kept a bundle that changed"));
            }
            if kept == rebuilt.contains(&node) {
                failures.push(format!(
                    "{what}: {node} {} (bundle bytes {})",
                    if kept {
                        "kept, expected rebuilt"
                    } else {
                        "rebuilt, expected kept"
                    },
                    if same_bytes { "same" } else { "changed" },
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A `source:` file is read when the config is loaded: editing it afterwards changes no
/// bundle until the next publish (load).
#[test]
fn source_files_are_read_at_load() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    let dir = TempDir::new("inputs-source");
    copy_tree(&example, &dir.0);
    let config = load(&dir.0);
    let before = bundle_bytes(&config, "app01.prod");
    edit(
        &dir.0,
        "config/files/managed-readme.txt",
        "",
        "edited after load\n",
    );
    assert_eq!(bundle_bytes(&config, "app01.prod"), before);
    assert_ne!(bundle_bytes(&load(&dir.0), "app01.prod"), before);
}

/// A `source:` file that is not UTF-8 text is refused at load, at the attribute.
#[test]
fn a_binary_source_file_is_refused_at_load() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    let dir = TempDir::new("inputs-binary");
    copy_tree(&example, &dir.0);
    std::fs::write(
        dir.0.join("config/files/managed-readme.txt"),
        [0xff, 0xfe, 0],
    )
    .unwrap();
    let (_, diags) = config::load(
        &dir.0.join("config"),
        &FileProvider::new(&dir.0.join("secrets")),
    );
    let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert!(
        text.iter().any(|d| d.contains("modules/base.yaml:")
            && d.contains("`source: files/managed-readme.txt` is not UTF-8 text")),
        "{text:?}"
    );
}
