//! Benchmarks of the config pipeline at fleet scale: load + validate of a config with
//! 1,000 module files and 20,000 resources, compiling one node's bundle from it, and what
//! a publish adds: digesting every part, and checking that a node keeps its bundle.
//! Targets (issue 2): validate under 1 s, one node's compile under 5 ms on a 2-core VM.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use vigo_server::compile;
use vigo_server::compile::inputs::ConfigDigests;
use vigo_server::config;
use vigo_server::secrets::FileProvider;

const MODULES: usize = 1_000;
const RESOURCES_PER_MODULE: usize = 20;
const RULES: usize = 100;

/// Writes the synthetic config: module i has 20 resources (files with templates, packages,
/// services, users, execs); rule r includes modules r*10..r*10+10 for nodes `app{r}-*`,
/// and a catch-all rule includes the first 10 modules everywhere.
fn generate(root: &Path) -> PathBuf {
    let config = root.join("config");
    std::fs::create_dir_all(config.join("modules")).unwrap();
    std::fs::create_dir_all(config.join("nodes")).unwrap();
    std::fs::create_dir_all(root.join("secrets/bench")).unwrap();
    std::fs::write(root.join("secrets/bench/pw"), "bench-password\n").unwrap();
    std::fs::write(
        config.join("vigo.yaml"),
        "interval: 15m\nvars:\n  domain: example.com\n  ntp: [a, b, c]\n",
    )
    .unwrap();
    for m in 0..MODULES {
        let mut y = String::new();
        let _ = writeln!(
            y,
            "name: mod{m}\ndescription: synthetic module {m}\ncompliance: [cis-{}]\nvars:\n  port: {}\n  owner: root\nresources:",
            m % 50,
            8000 + m
        );
        for r in 0..RESOURCES_PER_MODULE {
            match r % 5 {
                0 | 1 => {
                    let _ = writeln!(
                        y,
                        "  - name: /etc/app{m}/conf{r}.conf\n    type: file\n    mode: \"0644\"\n    owner: \"{{{{ vars.owner }}}}\"\n    content: |\n      # {{{{ node.name }}}} in {{{{ vars.domain }}}}\n      listen {{{{ vars.port }}}}\n      {{% for s in vars.ntp %}}server {{{{ s }}}}\n      {{% endfor %}}\n    when: \"os_family('debian') && !has_command('app{m}')\""
                    );
                }
                2 => {
                    let _ = writeln!(
                        y,
                        "  - name: pkg{m}-{r}\n    type: package\n    state: present"
                    );
                }
                3 => {
                    let _ = writeln!(
                        y,
                        "  - name: svc{m}-{r}\n    type: service\n    state: running\n    enabled: true\n    depends_on: [package:pkg{m}-{}]",
                        r - 1
                    );
                }
                _ => {
                    let _ = writeln!(
                        y,
                        "  - name: run{m}-{r}\n    type: exec\n    command: /usr/bin/true\n    creates: /var/lib/app{m}/done{r}"
                    );
                }
            }
        }
        std::fs::write(config.join(format!("modules/mod{m:04}.yaml")), y).unwrap();
    }
    for r in 0..RULES {
        let mods: Vec<String> = (0..10).map(|i| format!("mod{}", r * 10 + i)).collect();
        std::fs::write(
            config.join(format!("nodes/rule{r:03}.yaml")),
            format!("name: rule{r}\nmatch: \"app{r}-*\"\npriority: {r}\nmodules: [{}]\nvars:\n  owner: root\n", mods.join(", ")),
        )
        .unwrap();
    }
    std::fs::write(
        config.join("nodes/all.yaml"),
        "name: all\nmatch: \"*\"\nmodules: [mod0, mod1, mod2, mod3, mod4, mod5, mod6, mod7, mod8, mod9]\n",
    )
    .unwrap();
    config
}

fn bench(c: &mut Criterion) {
    let root = std::env::temp_dir().join(format!("vigo-bench-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = generate(&root);
    let secrets = FileProvider::new(&root.join("secrets"));

    let (cfg, diags) = config::load(&dir, &secrets);
    assert!(
        diags.is_empty(),
        "synthetic config must be valid: {:?}",
        &diags[..diags.len().min(5)]
    );
    let resources: usize = cfg.modules.values().map(|m| m.resources.len()).sum();
    assert_eq!(resources, MODULES * RESOURCES_PER_MODULE);

    let mut group = c.benchmark_group("config");
    group.sample_size(10);
    group.bench_function("load_validate_1000_modules_20000_resources", |b| {
        b.iter(|| config::load(&dir, &secrets))
    });
    group.finish();

    let facts =
        compile::facts_from_json(r#"{"os_family":"debian","os":"debian","hostname":"app42-web1"}"#)
            .unwrap();
    let compiled = compile::compile(&cfg, "app42-web1", Some(&facts), "2026-11-29").unwrap();
    assert_eq!(compiled.bundle.resources.len(), 20 * RESOURCES_PER_MODULE);
    c.bench_function("compile_one_node_400_resources", |b| {
        b.iter(|| compile::compile(&cfg, "app42-web1", Some(&facts), "2026-11-29").unwrap())
    });

    // What a publish costs besides loading (digests of every part), and what deciding that
    // a node keeps its bundle costs at its next check-in (101 rules to glob, 20 modules).
    c.bench_function("publish_digests_1000_modules_101_rules", |b| {
        b.iter(|| ConfigDigests::of(&cfg).unwrap())
    });
    let digests = ConfigDigests::of(&cfg).unwrap();
    let inputs = digests.record(&cfg, &compiled.trace).unwrap();
    assert!(digests.unchanged_for(&cfg, &inputs, "app42-web1"));
    c.bench_function("bundle_kept_check_one_node_101_rules", |b| {
        b.iter(|| digests.unchanged_for(&cfg, &inputs, "app42-web1"))
    });
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, bench);
criterion_main!(benches);
