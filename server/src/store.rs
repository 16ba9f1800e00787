//! The server's SQLite database (WAL mode): enrolled nodes, enrollment tokens, run results
//! and facts. Every statement goes through [`Db::conn`], which counts it, so tests can
//! prove that a check-in makes no database query.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension, params};

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("database: {what}: {source}")]
pub struct StoreError {
    what: &'static str,
    source: rusqlite::Error,
}

fn ctx(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError { what, source }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    -- Unix microseconds; also tells one enrollment of a name from a later one.
    enrolled_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    results_stored INTEGER NOT NULL DEFAULT 0,
    last_checkin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    glob TEXT NOT NULL,
    expires INTEGER NOT NULL,
    created INTEGER NOT NULL,
    used_by TEXT
);
CREATE TABLE IF NOT EXISTS facts (
    node TEXT PRIMARY KEY,
    json TEXT NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    node TEXT NOT NULL,
    enrollment INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    report TEXT NOT NULL,
    received INTEGER NOT NULL,
    PRIMARY KEY (node, enrollment, seq)
);
CREATE TABLE IF NOT EXISTS publishes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    policy TEXT NOT NULL,
    at INTEGER NOT NULL,
    who TEXT NOT NULL,
    -- accepted, refused or unchanged
    result TEXT NOT NULL,
    diagnostics INTEGER NOT NULL
);
";

/// The open database and its query counter.
pub struct Db {
    conn: Connection,
    queries: Arc<AtomicU64>,
}

/// A stored enrollment token.
pub struct TokenRow {
    /// bcrypt hash of the whole token text.
    pub hash: String,
    /// Host-name glob.
    pub glob: String,
    /// Unix seconds after which it is refused.
    pub expires: u64,
    /// The node that used it, if any.
    pub used_by: Option<String>,
}

/// A stored node, as loaded into the FleetIndex at start.
pub struct NodeRow {
    /// Node name (certificate common name).
    pub name: String,
    /// `ed25519:<hex>`.
    pub public_key: String,
    /// When it enrolled (Unix microseconds): identifies this enrollment of the name.
    pub enrolled: u64,
    /// Whether access was revoked.
    pub revoked: bool,
    /// Last accepted request sequence number.
    pub last_seq: u64,
    /// Highest result sequence number stored.
    pub results_stored: u64,
    /// Last known facts, JSON.
    pub facts: Option<String>,
}

/// One publish attempt, as `vigocli config history` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishRow {
    /// The config hash that was loaded.
    pub policy: String,
    /// Unix seconds.
    pub at: u64,
    /// The admin certificate's common name (or `vigo-server` for the config loaded at start).
    pub who: String,
    /// `accepted`, `refused` or `unchanged`.
    pub result: String,
    /// How many diagnostics the load produced (a refused publish has at least one).
    pub diagnostics: u64,
}

/// What one flush writes, in one transaction.
#[derive(Default)]
pub struct Batch {
    /// (node, facts JSON).
    pub facts: Vec<(String, String)>,
    /// (node, enrollment, result seq, report JSON).
    pub results: Vec<(String, u64, u64, String)>,
    /// (node, enrollment, last seq, results stored, last check-in time).
    pub nodes: Vec<(String, u64, u64, u64, u64)>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty() && self.results.is_empty() && self.nodes.is_empty()
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path` in WAL mode.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let conn = Connection::open(path).map_err(ctx("opening the database"))?;
        let db = Db {
            conn,
            queries: Arc::new(AtomicU64::new(0)),
        };
        db.conn()
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(ctx("enabling WAL mode"))?;
        db.conn()
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(ctx("setting synchronous mode"))?;
        db.conn()
            .execute_batch(SCHEMA)
            .map_err(ctx("creating the schema"))?;
        Ok(db)
    }

    /// The one way to the connection: counts every use.
    fn conn(&self) -> &Connection {
        self.queries.fetch_add(1, Ordering::Relaxed);
        &self.conn
    }

    /// The query counter, shared with the stats endpoint.
    pub fn query_counter(&self) -> Arc<AtomicU64> {
        self.queries.clone()
    }

    /// Stores a new token.
    pub fn insert_token(
        &self,
        id: &str,
        hash: &str,
        glob: &str,
        expires: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO tokens (id, hash, glob, expires, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, hash, glob, expires as i64, now as i64],
            )
            .map_err(ctx("storing a token"))?;
        Ok(())
    }

    /// Looks a token up by id.
    pub fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        self.conn()
            .query_row(
                "SELECT hash, glob, expires, used_by FROM tokens WHERE id = ?1",
                params![id],
                |r| {
                    Ok(TokenRow {
                        hash: r.get(0)?,
                        glob: r.get(1)?,
                        expires: r.get::<_, i64>(2)? as u64,
                        used_by: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(ctx("reading a token"))
    }

    /// Marks the token used and stores the node (enrolled at `enrolled`, Unix
    /// microseconds), in one transaction. Returns false (and
    /// changes nothing) when the token was used meanwhile.
    pub fn enroll(
        &mut self,
        token_id: &str,
        node: &str,
        public_key: &str,
        enrolled: u64,
    ) -> Result<bool, StoreError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let tx = self
            .conn
            .transaction()
            .map_err(ctx("starting enrollment"))?;
        let n = tx
            .execute(
                "UPDATE tokens SET used_by = ?2 WHERE id = ?1 AND used_by IS NULL",
                params![token_id, node],
            )
            .map_err(ctx("marking the token used"))?;
        if n != 1 {
            return Ok(false);
        }
        tx.execute("DELETE FROM facts WHERE node = ?1", params![node])
            .map_err(ctx("clearing old facts"))?;
        tx.execute(
            "INSERT OR REPLACE INTO nodes (name, public_key, enrolled_at) VALUES (?1, ?2, ?3)",
            params![node, public_key, enrolled as i64],
        )
        .map_err(ctx("storing the node"))?;
        tx.commit().map_err(ctx("committing enrollment"))?;
        Ok(true)
    }

    /// Marks a node revoked. Returns whether it exists.
    pub fn revoke(&self, node: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE nodes SET revoked = 1 WHERE name = ?1",
                params![node],
            )
            .map_err(ctx("revoking a node"))?;
        Ok(n == 1)
    }

    /// Every node with its last known facts.
    pub fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT n.name, n.public_key, n.revoked, n.last_seq, n.results_stored, f.json, n.enrolled_at
                 FROM nodes n LEFT JOIN facts f ON f.node = n.name ORDER BY n.name",
            )
            .map_err(ctx("listing nodes"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(NodeRow {
                    name: r.get(0)?,
                    public_key: r.get(1)?,
                    revoked: r.get::<_, i64>(2)? != 0,
                    last_seq: r.get::<_, i64>(3)? as u64,
                    results_stored: r.get::<_, i64>(4)? as u64,
                    facts: r.get(5)?,
                    enrolled: r.get::<_, i64>(6)? as u64,
                })
            })
            .map_err(ctx("listing nodes"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(ctx("listing nodes"))
    }

    /// Appends one publish attempt to the version history.
    pub fn record_publish(&self, row: &PublishRow) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO publishes (policy, at, who, result, diagnostics) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    row.policy,
                    row.at as i64,
                    row.who,
                    row.result,
                    row.diagnostics as i64
                ],
            )
            .map_err(ctx("recording a publish"))?;
        Ok(())
    }

    /// The version history, oldest first.
    pub fn publishes(&self) -> Result<Vec<PublishRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT policy, at, who, result, diagnostics FROM publishes ORDER BY id")
            .map_err(ctx("reading the publish history"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PublishRow {
                    policy: r.get(0)?,
                    at: r.get::<_, i64>(1)? as u64,
                    who: r.get(2)?,
                    result: r.get(3)?,
                    diagnostics: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(ctx("reading the publish history"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(ctx("reading the publish history"))
    }

    /// The policy hash last accepted (by a publish or at start), if any.
    pub fn last_accepted_policy(&self) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT policy FROM publishes WHERE result = 'accepted' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(ctx("reading the publish history"))
    }

    /// Writes one batch of facts, results and node progress in one transaction.
    pub fn flush(&mut self, batch: &Batch, now: u64) -> Result<(), StoreError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let tx = self.conn.transaction().map_err(ctx("starting a flush"))?;
        {
            let mut facts = tx
                .prepare_cached(
                    "INSERT INTO facts (node, json, updated) VALUES (?1, ?2, ?3)
                     ON CONFLICT(node) DO UPDATE SET json = excluded.json, updated = excluded.updated",
                )
                .map_err(ctx("writing facts"))?;
            for (node, json) in &batch.facts {
                facts
                    .execute(params![node, json, now as i64])
                    .map_err(ctx("writing facts"))?;
            }
            let mut results = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO results (node, enrollment, seq, report, received)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(ctx("writing results"))?;
            for (node, enrollment, seq, report) in &batch.results {
                results
                    .execute(params![
                        node,
                        *enrollment as i64,
                        *seq as i64,
                        report,
                        now as i64
                    ])
                    .map_err(ctx("writing results"))?;
            }
            let mut nodes = tx
                .prepare_cached(
                    "UPDATE nodes SET last_seq = MAX(last_seq, ?2),
                     results_stored = MAX(results_stored, ?3), last_checkin = ?4
                     WHERE name = ?1 AND enrolled_at = ?5",
                )
                .map_err(ctx("writing node progress"))?;
            // In key order, the name index and the table are walked forward rather than at
            // random: 10% less time for 1,000 nodes among 100,000 (benches/store.rs).
            let mut progress: Vec<_> = batch.nodes.iter().collect();
            progress.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (node, enrollment, seq, stored, at) in progress {
                nodes
                    .execute(params![
                        node,
                        *seq as i64,
                        *stored as i64,
                        *at as i64,
                        *enrollment as i64
                    ])
                    .map_err(ctx("writing node progress"))?;
            }
        }
        tx.commit().map_err(ctx("committing a flush"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_written_twice_is_stored_once() {
        let dir = std::env::temp_dir().join(format!("vigo-store-dup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut db = Db::open(&dir.join("vigo.db")).unwrap();
        let result = |seq: u64, report: &str| ("n1".to_string(), 7, seq, report.to_string());
        // The first write, then the same results again (an agent resending after a crash
        // lost the acknowledgement) with a new one; the original report is kept.
        let first = Batch {
            results: vec![result(1, "{\"run\":1}"), result(2, "{\"run\":2}")],
            ..Batch::default()
        };
        db.flush(&first, 1).unwrap();
        let again = Batch {
            results: vec![
                result(1, "{\"resent\":1}"),
                result(2, "{\"resent\":2}"),
                result(3, "{\"run\":3}"),
            ],
            ..Batch::default()
        };
        db.flush(&again, 2).unwrap();
        db.flush(&again, 3).unwrap();
        let rows: Vec<(i64, String)> = {
            let mut stmt = db
                .conn
                .prepare("SELECT seq, report FROM results ORDER BY seq")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(
            rows,
            vec![
                (1, "{\"run\":1}".to_string()),
                (2, "{\"run\":2}".to_string()),
                (3, "{\"run\":3}".to_string()),
            ]
        );
        // Another enrollment of the same name keeps its own sequence space.
        let other = Batch {
            results: vec![("n1".to_string(), 8, 1, "{}".to_string())],
            ..Batch::default()
        };
        db.flush(&other, 4).unwrap();
        let n: i64 = db
            .conn
            .query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 4);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
