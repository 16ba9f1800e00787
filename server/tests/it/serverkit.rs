//! Test harness for the running server: `vigo-server init` + `run` as real processes on
//! 127.0.0.1 with a free port, an admin client, and a small node client that enrolls and
//! sends signed check-ins the way the agent does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use vigo_server::client::{Client, Reply};
use vigo_shared::protocol::{
    HEADER_NODE, HEADER_SEQ, HEADER_SIGNATURE, HEADER_TIME, PATH_CHECKIN, PATH_ENROLL,
    enroll_message, request_message,
};
use vigo_shared::sign::SigningKey;

use crate::fixture::TempDir;

pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vigo-server")
}

pub fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet")
}

/// Runs `vigo-server init` into `dir`.
pub fn init(dir: &Path) -> std::process::Output {
    Command::new(server_bin())
        .args(["init", "--data"])
        .arg(dir)
        .output()
        .unwrap()
}

/// Polls `cond` until it holds or `secs` pass.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Copies a directory tree (the example config, so a test may edit its copy).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn spawn(
    dir: &TempDir,
    data: &Path,
    config: &(PathBuf, PathBuf),
    extra: &[&str],
) -> (Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.0.join("server.log"))
        .unwrap();
    let mut child = Command::new(server_bin())
        .args(["run", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--config")
        .arg(&config.0)
        .arg("--secrets")
        .arg(&config.1)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on https://") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => (child, addr),
        Err(_) => {
            let _ = child.kill();
            panic!(
                "server did not start:\n{}",
                std::fs::read_to_string(dir.0.join("server.log")).unwrap_or_default()
            );
        }
    }
}

/// A running server in a temporary data directory.
pub struct Server {
    child: Child,
    pub addr: String,
    pub data: PathBuf,
    /// The config and secrets directories it runs with.
    pub config: (PathBuf, PathBuf),
    pub dir: TempDir,
}

impl Server {
    /// Inits and starts a server with the example config and extra `run` flags.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with((example().join("config"), example().join("secrets")), extra)
    }

    /// Inits and starts a server with a config directory (and secrets directory) of the
    /// test's own, e.g. a copy of the example that the test edits.
    pub fn start_with(config: (PathBuf, PathBuf), extra: &[&str]) -> Server {
        let dir = TempDir::new("server");
        let data = dir.0.join("data");
        let out = init(&data);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (child, addr) = spawn(&dir, &data, &config, extra);
        Server {
            child,
            addr,
            data,
            config,
            dir,
        }
    }

    /// Starts the server again on the same data directory (after [`Server::stop`]).
    pub fn restart(&mut self, extra: &[&str]) {
        let (child, addr) = spawn(&self.dir, &self.data, &self.config, extra);
        self.child = child;
        self.addr = addr;
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.data.join(name)).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default()
    }

    pub fn admin(&self) -> Client {
        Client::admin(&self.url(), &self.data).unwrap()
    }

    /// A TLS client that trusts the CA but presents no certificate.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.url(), &self.file("ca.pem"), None).unwrap()
    }

    /// Creates a token through the admin API.
    pub fn token(&self, hosts: &str, ttl_secs: u64) -> String {
        let body = serde_json::json!({ "hosts": hosts, "ttl_secs": ttl_secs }).to_string();
        let r = self
            .admin()
            .post("/v1/admin/tokens", body.as_bytes(), &[])
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// Bundles compiled so far.
    pub fn compiles(&self) -> u64 {
        let r = self.admin().get("/v1/admin/stats").unwrap();
        r.json()["compiles"].as_u64().unwrap()
    }

    /// Database statements run so far.
    pub fn db_queries(&self) -> u64 {
        let r = self.admin().get("/v1/admin/stats").unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["db_queries"].as_u64().unwrap()
    }

    /// Kills the process with SIGKILL (no flush, no cleanup) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs `vigocli` with this server's data directory and URL after `args`.
    pub fn vigocli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_vigocli"))
            .args(args)
            .arg("--data")
            .arg(&self.data)
            .args(["--server", &self.url()])
            .output()
            .unwrap()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The PKCS#8 v1 PEM of an Ed25519 seed, for rustls.
pub fn pkcs8_pem(seed: &[u8; 32]) -> String {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

/// An enrolling or enrolled node.
pub struct Node {
    pub name: String,
    pub seed: [u8; 32],
    pub key: SigningKey,
    pub cert: Option<String>,
    pub seq: u64,
}

impl Node {
    pub fn new(name: &str, seed_byte: u8) -> Node {
        let seed = [seed_byte; 32];
        Node {
            name: name.to_string(),
            seed,
            key: SigningKey::from_seed(seed),
            cert: None,
            seq: 0,
        }
    }

    /// Posts an enrollment request; keeps the certificate on success.
    pub fn enroll(&mut self, server: &Server, token: &str) -> Reply {
        let public = self.key.public().to_string();
        let proof = self.key.sign(&enroll_message(&self.name, &public, token));
        let body = serde_json::json!({
            "token": token,
            "hostname": self.name,
            "public_key": public,
            "proof": vigo_shared::hex::encode(&proof),
        })
        .to_string();
        let r = server
            .anonymous()
            .post(PATH_ENROLL, body.as_bytes(), &[])
            .unwrap();
        if r.status == 200 {
            self.cert = Some(r.json()["certificate"].as_str().unwrap().to_string());
        }
        r
    }

    /// A client presenting this node's certificate.
    pub fn client(&self, server: &Server) -> Client {
        let cert = self.cert.as_deref().expect("node is enrolled");
        Client::new(
            &server.url(),
            &server.file("ca.pem"),
            Some((cert, &pkcs8_pem(&self.seed))),
        )
        .unwrap()
    }

    /// Headers signing `body` for `path` with `key`, at `time` and `seq`.
    pub fn headers(
        &self,
        key: &SigningKey,
        path: &str,
        body: &[u8],
        time: u64,
        seq: u64,
    ) -> Vec<(&'static str, String)> {
        let sig = key.sign(&request_message("POST", path, &self.name, time, seq, body));
        vec![
            (HEADER_NODE, self.name.clone()),
            (HEADER_TIME, time.to_string()),
            (HEADER_SEQ, seq.to_string()),
            (HEADER_SIGNATURE, vigo_shared::hex::encode(&sig)),
        ]
    }

    /// A correctly signed check-in with the next sequence number.
    pub fn checkin(&mut self, server: &Server, body: &serde_json::Value) -> Reply {
        let client = self.client(server);
        self.checkin_with(&client, body).unwrap()
    }

    /// A signed check-in through `client` (made by [`Node::client`]); an error when the
    /// server cannot be reached, as when it is killed meanwhile.
    pub fn checkin_with(
        &mut self,
        client: &Client,
        body: &serde_json::Value,
    ) -> anyhow::Result<Reply> {
        self.seq += 1;
        let body = body.to_string();
        let headers = self.headers(&self.key, PATH_CHECKIN, body.as_bytes(), now(), self.seq);
        client.post(PATH_CHECKIN, body.as_bytes(), &headers)
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
