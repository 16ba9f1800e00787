//! Shared test scaffolding: temporary roots, bundles built from vigo-shared types and
//! signed with a test key, runs of the real binary, and JSON report access.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use miniserde::json::{self, Value};
use vigo_shared::bundle::{Attr, AttrValue, Bundle, Resource, ResourceKind, Sensitive};
use vigo_shared::sign::SigningKey;

/// The node name every test bundle is compiled for.
pub const NODE: &str = "test-node";

/// The key the tests sign bundles with.
pub fn key() -> SigningKey {
    SigningKey::from_seed([42; 32])
}

/// A fresh folder under the system temp dir, removed on drop.
pub struct Temp(PathBuf);

impl Temp {
    pub fn new(label: &str) -> Temp {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vigo-it-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        Temp(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `rel` (a node path such as `/etc/motd`) beneath this folder.
    pub fn at(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }

    /// Writes a file, creating its parents.
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.at(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("writable");
        std::fs::write(p, content).expect("writable");
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A root with the account databases the tests refer to.
pub fn root() -> Temp {
    let t = Temp::new("root");
    t.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n");
    t.write(
        "/etc/group",
        "root:x:0:\nalice:x:1000:\nbob:x:1001:\nstaff:x:50:alice\n",
    );
    t
}

/// An attribute value: strings by default, see the helpers below for others.
pub fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.to_string())
}

pub fn int(v: i64) -> AttrValue {
    AttrValue::Int(v)
}

pub fn boolean(v: bool) -> AttrValue {
    AttrValue::Bool(v)
}

pub fn list(items: &[&str]) -> AttrValue {
    AttrValue::List(items.iter().map(|i| i.to_string()).collect())
}

pub fn secret(v: &str) -> AttrValue {
    AttrValue::Sensitive(Sensitive::new(v.to_string()))
}

/// A resource `kind:name` with `attrs` (sorted here, as the codec requires).
pub fn res(kind: &str, name: &str, attrs: Vec<(&str, AttrValue)>) -> Resource {
    let mut attrs: Vec<Attr> = attrs
        .into_iter()
        .map(|(k, v)| Attr {
            key: k.to_string(),
            value: v,
        })
        .collect();
    attrs.sort_by(|a, b| a.key.cmp(&b.key));
    Resource {
        kind: ResourceKind::parse(kind).expect("known kind"),
        name: name.to_string(),
        attrs,
        when: None,
        depends_on: Vec::new(),
        notify: Vec::new(),
        compliance: Vec::new(),
        dangerous: false,
        origin: format!("modules/test.yaml:{}:5", name.len()),
        module: "test".to_string(),
        skip: None,
    }
}

/// Builder-style tweaks of a resource.
pub trait ResExt {
    fn when(self, expr: &str) -> Resource;
    fn depends(self, ids: &[&str]) -> Resource;
    fn notify(self, ids: &[&str]) -> Resource;
    fn dangerous(self) -> Resource;
    fn skip(self, reason: &str) -> Resource;
}

impl ResExt for Resource {
    fn when(mut self, expr: &str) -> Resource {
        self.when = Some(expr.to_string());
        self
    }
    fn depends(mut self, ids: &[&str]) -> Resource {
        self.depends_on = ids.iter().map(|i| i.to_string()).collect();
        self
    }
    fn notify(mut self, ids: &[&str]) -> Resource {
        self.notify = ids.iter().map(|i| i.to_string()).collect();
        self
    }
    fn dangerous(mut self) -> Resource {
        self.dangerous = true;
        self
    }
    fn skip(mut self, reason: &str) -> Resource {
        self.skip = Some(reason.to_string());
        self
    }
}

pub fn bundle(resources: Vec<Resource>) -> Bundle {
    Bundle {
        node: NODE.to_string(),
        policy: "policy-1".to_string(),
        observe: false,
        interval_secs: 1800,
        resources,
    }
}

/// What one run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<Value>,
}

/// A signed bundle and trust file on disk, outside the root.
pub struct Files {
    pub _dir: Temp,
    pub bundle: PathBuf,
    pub trust: PathBuf,
}

pub fn write_bundle(b: &Bundle) -> Files {
    write_bytes(&key().sign_bundle(b))
}

pub fn write_bytes(bytes: &[u8]) -> Files {
    let dir = Temp::new("bundle");
    let bundle = dir.at("bundle.vgsb");
    let trust = dir.at("trusted.pub");
    std::fs::write(&bundle, bytes).expect("writable");
    std::fs::write(&trust, format!("# test key\n{}\n", key().public())).expect("writable");
    Files {
        _dir: dir,
        bundle,
        trust,
    }
}

/// Runs `vigo-agent apply` on `b` into `root` with `--json`, plus `extra` flags.
pub fn apply(b: &Bundle, root: &Temp, extra: &[&str]) -> Run {
    let f = write_bundle(b);
    apply_files(&f, root, extra)
}

pub fn apply_files(f: &Files, root: &Temp, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        "apply".into(),
        "--bundle".into(),
        f.bundle.display().to_string(),
    ];
    args.extend(["--trust".into(), f.trust.display().to_string()]);
    args.extend(["--root".into(), root.path().display().to_string()]);
    args.extend([
        "--node".into(),
        NODE.into(),
        "--family".into(),
        "debian".into(),
        "--json".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    agent(&args)
}

/// Runs the binary with `args`.
pub fn agent<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_vigo-agent"))
        .args(args)
        .output()
        .expect("the agent binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = json::from_str::<Value>(stdout.trim()).ok();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(key),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

impl Run {
    fn report(&self) -> &Value {
        self.report.as_ref().unwrap_or_else(|| {
            panic!(
                "no JSON report; exit {}\nstdout: {}\nstderr: {}",
                self.code, self.stdout, self.stderr
            )
        })
    }

    fn resource(&self, id: &str) -> &Value {
        let Some(Value::Array(items)) = field(self.report(), "resources") else {
            panic!("no resources in {}", self.stdout)
        };
        items
            .iter()
            .find(|r| text(field(r, "id")) == id)
            .unwrap_or_else(|| panic!("{id} not in report: {}", self.stdout))
    }

    /// `ok`, `changed`, `failed` or `skipped`.
    pub fn status(&self, id: &str) -> String {
        text(field(self.resource(id), "status"))
    }

    /// The failure or skip message, or "".
    pub fn message(&self, id: &str) -> String {
        text(field(self.resource(id), "message"))
    }

    pub fn refresh(&self, id: &str) -> String {
        text(field(self.resource(id), "refresh"))
    }

    /// `field: from -> to` lines.
    pub fn changes(&self, id: &str) -> Vec<String> {
        let Some(Value::Array(items)) = field(self.resource(id), "changes") else {
            return Vec::new();
        };
        items
            .iter()
            .map(|c| {
                format!(
                    "{}: {} -> {}",
                    text(field(c, "field")),
                    text(field(c, "from")),
                    text(field(c, "to"))
                )
            })
            .collect()
    }

    /// `[ok, changed, failed, skipped]` from the summary.
    pub fn summary(&self) -> [u64; 4] {
        let s = field(self.report(), "summary").expect("summary");
        ["ok", "changed", "failed", "skipped"]
            .map(|k| text(field(s, k)).parse().unwrap_or(u64::MAX))
    }

    /// Every resource as `id=status`, in report order.
    pub fn statuses(&self) -> Vec<String> {
        let Some(Value::Array(items)) = field(self.report(), "resources") else {
            return Vec::new();
        };
        items
            .iter()
            .map(|r| format!("{}={}", text(field(r, "id")), text(field(r, "status"))))
            .collect()
    }

    pub fn debug(&self) -> String {
        format!(
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Everything in a folder: path → (type, mode, uid, gid, content or link target).
pub fn snapshot(dir: &Path) -> BTreeMap<String, (char, u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).expect("readable");
        let rel = p.strip_prefix(dir).expect("beneath").display().to_string();
        let (kind, data) = if m.file_type().is_symlink() {
            (
                'l',
                std::fs::read_link(&p)
                    .expect("link")
                    .as_os_str()
                    .as_encoded_bytes()
                    .to_vec(),
            )
        } else if m.is_dir() {
            for e in std::fs::read_dir(&p).expect("listable") {
                stack.push(e.expect("entry").path());
            }
            ('d', Vec::new())
        } else {
            ('f', std::fs::read(&p).expect("readable"))
        };
        out.insert(rel, (kind, m.mode() & 0o7777, m.uid(), m.gid(), data));
    }
    out
}

/// Mode, uid and gid of a path (not following links).
pub fn stat(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}
