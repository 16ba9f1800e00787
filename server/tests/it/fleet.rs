//! A small fleet against the real server: three real `vigo-agent` processes enroll with
//! one-time tokens and converge temporary roots through `vigo-agent once`; their results
//! reach the server and leave the agents' queues. The server is then SIGKILLed: the agents
//! keep converging from their cached bundles and queue results, which drain once it is
//! back; a config published meanwhile reaches every agent. A fourth agent with a token for
//! another host glob is refused and stores nothing.

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::e2e::{agent_bin, seed_root, snapshot};
use crate::fixture::TempDir;
use crate::serverkit::{Server, copy_tree, example, wait_for};

fn agent(args: &[&str], state: &Path, root: Option<&Path>) -> Output {
    let mut cmd = Command::new(agent_bin());
    cmd.args(args).arg("--state").arg(state);
    if let Some(r) = root {
        cmd.arg("--root").arg(r).args(["--family", "debian"]);
    }
    cmd.output().expect("vigo-agent runs")
}

/// SHA-256 of the CA certificate's DER: what `vigo-server init` prints for agents to pin.
fn ca_fingerprint(server: &Server) -> String {
    let pem = server.file("ca.pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("ca.pem is PEM");
    vigo_shared::hex::encode(&Sha256::digest(&der))
}

fn queued(state: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(state.join("results"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn three_agents_enroll_and_converge_and_a_fourth_is_refused() {
    let tmp_config = TempDir::new("fleet-config");
    let config = tmp_config.0.join("config");
    copy_tree(&example().join("config"), &config);
    let mut server = Server::start_with((config.clone(), example().join("secrets")), &[]);
    let fp = ca_fingerprint(&server);
    let tmp = TempDir::new("fleet");
    let nodes = ["web01.fleet", "web02.fleet", "db01.fleet"];
    for node in nodes {
        let state = tmp.0.join(node).join("state");
        let root = tmp.0.join(node).join("root");
        seed_root(&root);
        let token = server.token(node, 600);
        let out = agent(
            &[
                "enroll",
                "--server",
                &server.url(),
                "--token",
                &token,
                "--ca-fingerprint",
                &fp,
                "--hostname",
                node,
            ],
            &state,
            None,
        );
        assert!(
            out.status.success(),
            "{node} enroll: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = agent(&["once", "--json"], &state, Some(&root));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{node} once: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let motd = std::fs::read_to_string(root.join("etc/motd")).unwrap();
        assert!(motd.contains(&format!("Host: {node}")), "{motd}");
    }
    // Every result is acknowledged once durable and then leaves the agent's queue: the
    // first cycle's report is gone after later cycles (each cycle queues its own report,
    // so only the newest may still wait); a converged node changes nothing.
    for node in nodes {
        let state = tmp.0.join(node).join("state");
        let root = tmp.0.join(node).join("root");
        let first = queued(&state);
        let mut last = None;
        wait_for(
            20,
            &format!("{node}'s first results to be acknowledged"),
            || {
                let out = agent(&["once"], &state, Some(&root));
                last = out.status.code();
                first.iter().all(|p| !p.exists())
            },
        );
        assert_eq!(
            last,
            Some(0),
            "{node}: a converged node has nothing to change"
        );
        assert!(queued(&state).len() <= 1, "{:?}", queued(&state));
    }
    let listed = Command::new(env!("CARGO_BIN_EXE_vigocli"))
        .args(["node", "list", "--data"])
        .arg(&server.data)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for node in nodes {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(node) && l.contains("active")),
            "{listed}"
        );
    }

    // The server dies (SIGKILL): every agent keeps converging from its cached bundle and
    // queues its results.
    server.kill();
    let mut offline: Vec<Vec<std::path::PathBuf>> = Vec::new();
    for node in nodes {
        let state = tmp.0.join(node).join("state");
        let root = tmp.0.join(node).join("root");
        std::fs::remove_file(root.join("etc/motd")).unwrap();
        let out = agent(&["once"], &state, Some(&root));
        assert_eq!(
            out.status.code(),
            Some(4),
            "{node}: converged from cache: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            root.join("etc/motd").is_file(),
            "{node}: drift repaired while the server is down"
        );
        let waiting = queued(&state);
        assert!(!waiting.is_empty(), "{node}: the offline result is queued");
        offline.push(waiting);
    }

    // The server comes back (on a new port: tell the agents) with a published change:
    // the offline results drain, and every agent gets the new policy.
    std::fs::write(config.join("modules/fleet-extra.yaml"), "name: fleet-extra\nresources:\n  - name: /etc/fleet-marker\n    type: file\n    content: \"published\\n\"\n").unwrap();
    std::fs::write(
        config.join("nodes/50-fleet.yaml"),
        "name: fleet\nmatch: \"*.fleet\"\nmodules: [fleet-extra]\n",
    )
    .unwrap();
    server.restart(&[]);
    let published = server.vigocli(&["config", "publish"]);
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    for (node, waiting) in nodes.iter().zip(&offline) {
        let state = tmp.0.join(node).join("state");
        let root = tmp.0.join(node).join("root");
        std::fs::write(state.join("server"), server.url()).unwrap();
        wait_for(
            20,
            &format!("{node}'s offline results to be acknowledged"),
            || {
                agent(&["once"], &state, Some(&root));
                waiting.iter().all(|p| !p.exists())
            },
        );
        assert_eq!(
            std::fs::read_to_string(root.join("etc/fleet-marker")).unwrap(),
            "published\n",
            "{node}"
        );
    }

    // Observe mode from config: the fleet reports what it would change and no byte of any
    // root changes.
    std::fs::write(config.join("modules/fleet-extra.yaml"), "name: fleet-extra\nresources:\n  - name: /etc/fleet-marker\n    type: file\n    content: \"changed\\n\"\n").unwrap();
    std::fs::write(
        config.join("nodes/60-observe.yaml"),
        "name: observe\nmatch: \"*.fleet\"\npriority: 100\nobserve: true\n",
    )
    .unwrap();
    let published = server.vigocli(&["config", "publish"]);
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    for node in nodes {
        let state = tmp.0.join(node).join("state");
        let root = tmp.0.join(node).join("root");
        let before = snapshot(&root);
        let out = agent(&["once"], &state, Some(&root));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{node}: would change: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            snapshot(&root),
            before,
            "{node}: observe mode changed the root"
        );
    }

    // A token for *.web.prod cannot enroll db01.staging; nothing is stored.
    let state = tmp.0.join("intruder");
    let token = server.token("*.web.prod", 600);
    let out = agent(
        &[
            "enroll",
            "--server",
            &server.url(),
            "--token",
            &token,
            "--ca-fingerprint",
            &fp,
            "--hostname",
            "db01.staging",
        ],
        &state,
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!state.join("node.pem").exists());
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token));
}
