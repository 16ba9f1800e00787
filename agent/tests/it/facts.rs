//! `vigo-agent facts`: real facts of this machine, as text and JSON.

use miniserde::json::Value;

use crate::support::*;

#[test]
fn facts_as_json_and_text() {
    let run = agent(&["facts", "--json"]);
    assert_eq!(run.code, 0, "{}", run.debug());
    let Some(Value::Object(facts)) = &run.report else {
        panic!("not a JSON object: {}", run.stdout)
    };
    for name in [
        "arch",
        "cpus",
        "path",
        "addresses",
        "hostname",
        "fqdn",
        "kernel",
        "memory_mb",
        "os",
        "os_family",
    ] {
        assert!(facts.contains_key(name), "{name} missing: {}", run.stdout);
    }
    assert!(matches!(facts.get("cpus"), Some(Value::Number(_))));
    assert!(matches!(facts.get("addresses"), Some(Value::Array(_))));

    let text = agent(&["facts"]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.lines().any(|l| l.starts_with("os_family ")),
        "{}",
        text.stdout
    );
    // Values line up in one column: the first non-space after the name.
    let columns: Vec<usize> = text
        .stdout
        .lines()
        .map(|l| {
            let name_end = l.find(' ').expect("name and value");
            l.len() - l[name_end..].trim_start().len()
        })
        .collect();
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{}", text.stdout);
}
