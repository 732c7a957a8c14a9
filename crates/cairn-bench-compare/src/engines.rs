//! One adapter per system behind [`Engine`]. Each is opened either durable
//! (every acknowledged write is fsynced before the call returns) or buffered
//! (written to the OS, fsynced later by the system's own policy), so a
//! workload compares like with like.

use cairn_core::{Config, Db, Durability, ListOptions, Op, Ttl, Value};
use redb::ReadableDatabase as _;
use std::path::Path;

/// The systems compared, in the order rounds visit them (cairn first).
pub const SYSTEMS: [&str; 4] = ["cairn", "fjall", "redb", "sled"];

/// The operations every workload needs. Errors panic: a benchmark that hits
/// a storage error has no number to report.
pub trait Engine: Send + Sync {
    /// Writes one key.
    fn put(&self, key: &[u8], value: &[u8]);
    /// Writes many keys in one atomic batch / transaction.
    fn batch_put(&self, items: &[(Vec<u8>, Vec<u8>)]);
    /// Reads one key; the value's length, or `None` when absent.
    fn get(&self, key: &[u8]) -> Option<usize>;
    /// Reads every key with `prefix` and its value; how many there were.
    fn scan_prefix(&self, prefix: &[u8]) -> usize;
}

/// Opens `system` at `dir` (created if missing).
///
/// # Panics
/// On an unknown system name or an open error.
pub fn open(system: &str, dir: &Path, durable: bool) -> Box<dyn Engine> {
    match system {
        "cairn" => Box::new(Cairn::open(dir, durable)),
        "fjall" => Box::new(Fjall::open(dir, durable)),
        "redb" => Box::new(Redb::open(dir, durable)),
        "sled" => Box::new(Sled::open(dir, durable)),
        other => panic!("unknown system {other:?}; expected one of {SYSTEMS:?}"),
    }
}

const STORE: &str = "default";

struct Cairn(Db);

impl Cairn {
    fn open(dir: &Path, durable: bool) -> Self {
        let durability = if durable { Durability::Sync } else { Durability::Relaxed };
        let db = Db::builder(dir)
            .config(Config {
                durability,
                ..Config::default()
            })
            .open()
            .expect("open cairn");
        Cairn(db)
    }
}

impl Engine for Cairn {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.put(STORE, key, Value::Bytes(value.to_vec())).expect("cairn put");
    }
    fn batch_put(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let ops = items
            .iter()
            .map(|(k, v)| Op::Put {
                store: STORE.into(),
                key: k.clone(),
                value: Value::Bytes(v.clone()),
                ttl: Ttl::Default,
            })
            .collect();
        self.0.batch(vec![], ops).expect("cairn batch");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.0.get(STORE, key).expect("cairn get").map(|e| e.value.size_hint())
    }
    fn scan_prefix(&self, prefix: &[u8]) -> usize {
        let o = ListOptions {
            prefix: Some(prefix.to_vec()),
            limit: Some(10_000),
            ..Default::default()
        };
        self.0.list(STORE, &o).expect("cairn list").items.len()
    }
}

struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
    mode: fjall::PersistMode,
}

impl Fjall {
    fn open(dir: &Path, durable: bool) -> Self {
        // The same storage settings cairn gives fjall: manual journal persist, 64 MiB block cache.
        let db = fjall::Database::builder(dir)
            .manual_journal_persist(true)
            .cache_size(64 << 20)
            .open()
            .expect("open fjall");
        let ks = db
            .keyspace("data", fjall::KeyspaceCreateOptions::default)
            .expect("fjall keyspace");
        let mode = if durable {
            fjall::PersistMode::SyncAll
        } else {
            fjall::PersistMode::Buffer
        };
        Fjall { db, ks, mode }
    }
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8]) {
        let mut b = self.db.batch().durability(Some(self.mode));
        b.insert(&self.ks, key, value);
        b.commit().expect("fjall put");
    }
    fn batch_put(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = self.db.batch().durability(Some(self.mode));
        for (k, v) in items {
            b.insert(&self.ks, k.as_slice(), v.as_slice());
        }
        b.commit().expect("fjall batch");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.ks.get(key).expect("fjall get").map(|v| v.len())
    }
    fn scan_prefix(&self, prefix: &[u8]) -> usize {
        self.ks
            .prefix(prefix)
            .map(|g| g.into_inner().expect("fjall scan").1.len())
            .filter(|&l| l > 0)
            .count()
    }
}

const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("data");

struct Redb {
    db: redb::Database,
    durability: redb::Durability,
}

impl Redb {
    fn open(dir: &Path, durable: bool) -> Self {
        std::fs::create_dir_all(dir).expect("create redb dir");
        let db = redb::Database::create(dir.join("data.redb")).expect("open redb");
        let durability = if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        Redb { db, durability }
    }

    fn write(&self, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>)) {
        let mut tx = self.db.begin_write().expect("redb begin");
        tx.set_durability(self.durability).expect("redb durability");
        {
            let mut t = tx.open_table(TABLE).expect("redb table");
            f(&mut t);
        }
        tx.commit().expect("redb commit");
    }
}

impl Engine for Redb {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.write(|t| {
            t.insert(key, value).expect("redb insert");
        });
    }
    fn batch_put(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        self.write(|t| {
            for (k, v) in items {
                t.insert(k.as_slice(), v.as_slice()).expect("redb insert");
            }
        });
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        let tx = self.db.begin_read().expect("redb read");
        let t = tx.open_table(TABLE).expect("redb table");
        t.get(key).expect("redb get").map(|v| v.value().len())
    }
    fn scan_prefix(&self, prefix: &[u8]) -> usize {
        let tx = self.db.begin_read().expect("redb read");
        let t = tx.open_table(TABLE).expect("redb table");
        let mut n = 0;
        for item in t.range(prefix..).expect("redb range") {
            let (k, v) = item.expect("redb scan");
            if !k.value().starts_with(prefix) {
                break;
            }
            n += usize::from(!v.value().is_empty());
        }
        n
    }
}

struct Sled {
    db: sled::Db,
    durable: bool,
}

impl Sled {
    fn open(dir: &Path, durable: bool) -> Self {
        // Default config: buffered writes are flushed every 500 ms.
        // sled lets go of its directory lock only when its background flusher
        // thread has dropped the previous handle, a moment after `drop`: a
        // reopen right after closing retries briefly instead of failing.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("open sled: {e:?}"),
            }
        };
        Sled { db, durable }
    }
    fn sync(&self) {
        if self.durable {
            self.db.flush().expect("sled flush");
        }
    }
}

impl Engine for Sled {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.db.insert(key, value).expect("sled insert");
        self.sync();
    }
    fn batch_put(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = sled::Batch::default();
        for (k, v) in items {
            b.insert(k.as_slice(), v.as_slice());
        }
        self.db.apply_batch(b).expect("sled batch");
        self.sync();
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.db.get(key).expect("sled get").map(|v| v.len())
    }
    fn scan_prefix(&self, prefix: &[u8]) -> usize {
        self.db
            .scan_prefix(prefix)
            .map(|r| r.expect("sled scan").1.len())
            .filter(|&l| l > 0)
            .count()
    }
}
