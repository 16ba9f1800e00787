//! The fleet simulator end to end at small scale: the debug `vigo-fleetsim` spawns a real
//! server, enrolls every node and checks in in both modes, publishing a change to the web
//! module during each. Only correctness is asserted (no errors, every node enrolled,
//! changing nodes got new bundles, the publishes were accepted and recompiled the web nodes
//! and not the fleet), never timing.

use std::process::Command;

use crate::fixture::TempDir;

#[test]
fn simulated_fleet_enrolls_and_checks_in_without_errors() {
    let dir = TempDir::new("fleetsim");
    let json = dir.0.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_vigo-fleetsim"))
        .args([
            "--spawn",
            "--nodes",
            "20",
            "--concurrency",
            "4",
            "--duration",
            "2",
            "--mode",
            // The keep-alive phase paced at 40 check-ins/s (it would do far more in a closed
            // loop), the reconnect phase with fewer in flight than --concurrency.
            "keepalive/40,reconnect@2",
            "--changing-share",
            "0.1",
            "--results-share",
            "0.2",
            "--publish-at",
            "0.5",
            "--publish-change",
            "module",
            "--publish-share",
            "0.25",
            // A few check-ins signed ahead, so that path is taken too (signing many in a
            // debug build would take long).
            "--presign-rate",
            "50",
            "--server-bin",
            env!("CARGO_BIN_EXE_vigo-server"),
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vigo-fleetsim failed:\n{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    assert_eq!(r["nodes"], 20);
    assert_eq!(r["enrollment"]["enrolled"], 20, "{stderr}");
    assert_eq!(r["enrollment"]["errors_by_kind"], serde_json::json!({}));
    assert_eq!(r["first_checkin_errors"], serde_json::json!({}));
    assert_eq!(r["changing_nodes"], 2);
    // A quarter of the 18 steady nodes, evenly spread.
    assert_eq!(r["web_nodes"], 4);
    assert_eq!(r["stats_end"]["nodes"], 20);
    let modes = r["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 2);
    for m in modes {
        let name = m["mode"].as_str().unwrap();
        assert_eq!(m["errors"], 0, "{name}: {}", m["errors_by_kind"]);
        assert!(m["checkins"].as_u64().unwrap() > 0, "{name}");
        assert!(m["unchanged"].as_u64().unwrap() > 0, "{name}");
        assert_eq!(m["changing_nodes_with_new_bundle"], 2, "{name}");
        assert!(m["bundles"].as_u64().unwrap() >= 2, "{name}");
        let per_second: u64 = m["per_second"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(per_second, m["checkins"].as_u64().unwrap(), "{name}");
        // The 100 ms windows hold the same check-ins, and the server's CPU time (read from
        // /proc while the phase ran) for windows other than the last.
        let windows = m["windows"].as_array().unwrap();
        let in_windows: u64 = windows
            .iter()
            .map(|w| w["checkins"].as_u64().unwrap())
            .sum();
        assert_eq!(in_windows, m["checkins"].as_u64().unwrap(), "{name}");
        assert!(
            windows
                .iter()
                .any(|w| w["server_cpu_ms"].as_f64().is_some_and(|ms| ms > 0.0)),
            "{name}: {windows:?}"
        );
        // Host steal, from /proc/stat: of all CPUs, as the server is not pinned here. Its
        // size depends on the host, so what is checked is that it was read: a share for
        // the phase, for its peak and for some window.
        assert_eq!(m["host_steal_line"], "cpu", "{name}");
        let share = |v: &serde_json::Value| v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p));
        assert!(
            share(&m["host_steal_pct"]),
            "{name}: {}",
            m["host_steal_pct"]
        );
        assert!(
            share(&m["host_steal_max"]["pct"]),
            "{name}: {}",
            m["host_steal_max"]
        );
        assert!(
            windows.iter().any(|w| share(&w["host_steal_pct"])),
            "{name}: {windows:?}"
        );
        // The publish half a second in changed the web module: it was accepted, every web
        // node checked in after it and took exactly one new bundle for it (a second one, or
        // one for any other steady node, is an unexpected_bundle error, and a web node
        // answered unchanged a missed_publish one: both would be in `errors` above).
        let p = &m["publish"];
        assert_eq!(p["error"], serde_json::Value::Null, "{name}: {p}");
        assert_eq!(p["result"], "accepted", "{name}: {p}");
        assert_eq!(p["affected_nodes"], 4, "{name}: {p}");
        assert_eq!(p["nodes_with_new_bundle"], 4, "{name}: {p}");
        // The server recompiled the web nodes and far fewer than the fleet. The changing
        // nodes compile on every check-in besides; their new bundles from check-ins started
        // after the publish are taken off, which leaves at most their check-ins in flight
        // at the publish (2) on top of the publish's own compiles.
        let compiles = p["compiles_since"].as_u64().unwrap();
        let publish_compiles =
            compiles.saturating_sub(p["changing_bundles_since"].as_u64().unwrap());
        assert!(publish_compiles >= 4, "{name}: {p}");
        assert!(publish_compiles <= 4 + 2, "{name}: {p}");
    }
    // The keep-alive phase kept to its schedule: 40/s for 2 s is 80 check-ins at most. Its
    // connections were opened before it, so it made no handshake.
    let keepalive = &modes[0];
    assert_eq!(keepalive["offered_per_sec"], 40);
    assert_eq!(keepalive["label"], "keepalive/40");
    assert_eq!(modes[1]["label"], "reconnect");
    assert_eq!(modes[1]["offered_per_sec"], serde_json::Value::Null);
    assert!(
        keepalive["checkins"].as_u64().unwrap() <= 80,
        "{}",
        keepalive["checkins"]
    );
    assert_eq!(keepalive["handshakes_full"], 0, "{keepalive}");
    assert_eq!(keepalive["handshakes_resumed"], 0, "{keepalive}");
    // Every check-in of the reconnect mode made a handshake, and the server resumed them
    // (it issues TLS 1.3 tickets; see daemon::tls_config).
    let reconnect = &modes[1];
    assert_eq!(modes[0]["concurrency"], 4);
    assert_eq!(reconnect["concurrency"], 2);
    assert_eq!(
        reconnect["handshakes_full"].as_u64().unwrap()
            + reconnect["handshakes_resumed"].as_u64().unwrap(),
        reconnect["checkins"].as_u64().unwrap() + reconnect["errors"].as_u64().unwrap()
    );
    assert!(reconnect["handshakes_resumed"].as_u64().unwrap() > 0);
    // Each handshake, full or resumed, leaves its node a ticket for the next one (the server
    // sends one per handshake): at most a node's first handshake of the phase is full.
    assert!(
        reconnect["handshakes_full"].as_u64().unwrap() <= 20,
        "{reconnect}"
    );
}
