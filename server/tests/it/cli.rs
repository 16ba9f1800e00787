//! The `vigocli config` commands as an operator runs them: exit codes, output format, the
//! signing key's mode, and a compiled bundle that verifies against the key's public half.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vigo_shared::sign::{PublicKey, verify_bundle};

use crate::fixture::{TempDir, materialize};

fn vigocli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigocli"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("vigocli runs")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet/config")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_exit_codes_and_output() {
    let ok = vigocli(&["config", "validate", example().to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains(": ok"), "{}", text(&ok.stdout));

    let tmp = TempDir::new("cli-validate");
    materialize(
        "//- config/modules/m.yaml\nname: m\nresources:\n  - name: /etc/x\n    type: fiel\n  - name: /etc/y\n    type: file\n    mdoe: \"0644\"\n",
        &tmp.0,
    );
    let bad = vigocli(&["config", "validate", tmp.0.join("config").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let err = text(&bad.stderr);
    // Every problem at once, each as file:line:col with a suggestion.
    assert!(
        err.contains("modules/m.yaml:4:11: unknown resource type `fiel` (did you mean `file`?)"),
        "{err}"
    );
    assert!(
        err.contains(
            "modules/m.yaml:7:5: unknown key `mdoe` in a file resource (did you mean `mode`?)"
        ),
        "{err}"
    );
    assert!(err.contains("2 problem(s) found"), "{err}");

    let json = vigocli(&[
        "config",
        "validate",
        "--json",
        tmp.0.join("config").to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(v["diagnostics"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["diagnostics"][0]["span"]["line"], 4);
}

#[test]
fn secrets_inside_the_config_directory_are_refused() {
    let out = vigocli(&[
        "config",
        "trace",
        "web01.prod",
        "--config",
        example().to_str().unwrap(),
        "--secrets",
        example().join("modules").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("inside the config directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn compile_writes_a_signed_bundle_and_a_private_key() {
    let tmp = TempDir::new("cli-compile");
    let key = tmp.0.join("keys/signing.key");
    let out_file = tmp.0.join("web01.bundle");
    let out = vigocli(&[
        "config",
        "compile",
        "web01.prod",
        "--config",
        example().to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public =
        PublicKey::parse(&std::fs::read_to_string(tmp.0.join("keys/signing.key.pub")).unwrap())
            .unwrap();
    let bytes = std::fs::read(&out_file).unwrap();
    let verified = verify_bundle(&bytes, &[public]).expect("bundle verifies with the printed key");
    assert_eq!(verified.bundle().node, "web01.prod");
    assert!(
        verified
            .bundle()
            .resources
            .iter()
            .any(|r| r.id() == "service:nginx")
    );

    // The same key is reused, and the same config gives the same bytes.
    let again = vigocli(&[
        "config",
        "compile",
        "web01.prod",
        "--config",
        example().to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(std::fs::read(&out_file).unwrap(), bytes);
}

#[test]
fn compile_refuses_an_invalid_config_and_writes_nothing() {
    let tmp = TempDir::new("cli-compile-bad");
    materialize(
        "//- config/modules/m.yaml\nname: m\nresources:\n  - name: x\n    type: nope\n",
        &tmp.0,
    );
    let out_file = tmp.0.join("out.bundle");
    let out = vigocli(&[
        "config",
        "compile",
        "n1",
        "--config",
        tmp.0.join("config").to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--key",
        tmp.0.join("k").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out_file.exists());
}

#[test]
fn trace_json_is_stable_for_scripts() {
    let out = vigocli(&[
        "config",
        "trace",
        "web01.prod",
        "--config",
        example().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["node"], "web01.prod");
    let rules = v["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["name"] == "web" && r["matched"] == true)
    );
    let vars = v["vars"].as_array().unwrap();
    let motd = vars.iter().find(|x| x["name"] == "motd_banner").unwrap();
    assert_eq!(motd["layers"].as_array().unwrap().len(), 3);
    assert_eq!(motd["layers"][2]["at"]["file"], "nodes/10-web.yaml");
}
