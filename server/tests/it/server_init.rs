//! `vigo-server init`: the files it creates, their modes, and refusing to overwrite.

use std::os::unix::fs::PermissionsExt;

use crate::fixture::TempDir;
use crate::serverkit::init;

#[test]
fn init_creates_keys_0600_and_refuses_to_overwrite() {
    let dir = TempDir::new("init");
    let data = dir.0.join("data");
    let out = init(&data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fp = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ca fingerprint "))
        .expect("fingerprint printed");
    assert_eq!(fp.len(), 64);
    assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));

    let mode = |f: &str| {
        std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    for key in ["ca.key", "server.key", "bundle.key", "admin.key", "vigo.db"] {
        assert_eq!(mode(key), 0o600, "{key}");
    }
    for public in ["ca.pem", "server.pem", "bundle.pub", "admin.pem"] {
        assert!(data.join(public).exists(), "{public}");
    }
    let ca = std::fs::read_to_string(data.join("ca.pem")).unwrap();
    let der = vigo_server::pki::pem_to_der(&ca).unwrap();
    assert_eq!(vigo_server::pki::fingerprint(&der), fp);

    let before = std::fs::read(data.join("ca.key")).unwrap();
    let again = init(&data);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(data.join("ca.key")).unwrap(), before);
}

#[test]
fn run_refuses_a_config_with_problems_and_a_missing_data_dir() {
    let dir = TempDir::new("run-refuses");
    let data = dir.0.join("data");
    let run = |config: &std::path::Path| {
        std::process::Command::new(crate::serverkit::server_bin())
            .args(["run", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    };
    let good = crate::serverkit::example().join("config");
    let out = run(&good);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("vigo-server init"));

    assert!(init(&data).status.success());
    let config = dir.0.join("config");
    std::fs::create_dir_all(config.join("modules")).unwrap();
    std::fs::write(config.join("modules/bad.yaml"), "name: bad\nresources: 7\n").unwrap();
    let out = run(&config);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:"), "{stderr}");
    assert!(stderr.contains("problem(s)"), "{stderr}");
    assert!(!data.join("server.addr").exists(), "it never listened");
}
