//! The blocking API called from async code (a common first try with the
//! library): it blocks that thread, as blocking I/O does, and never panics.

use cairn_core::{Db, Value};

fn v(n: i64) -> Value {
    Value::Json(n.into())
}

#[tokio::test(flavor = "current_thread")]
async fn open_a_new_directory_and_write_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    // Opening a new directory writes (it creates the `default` store).
    let db = Db::open(dir.path()).unwrap();
    db.put("default", "k", v(1)).unwrap();
    db.incr("default", "n", 2.into()).unwrap();
    assert_eq!(db.get("default", "k").unwrap().unwrap().value, v(1));
    assert_eq!(db.get("default", "n").unwrap().unwrap().value, v(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_many_tasks_on_a_multi_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    db.put("default", format!("t{t}-{i}"), v(i)).unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(db.count("default", None).unwrap(), 400);
}
