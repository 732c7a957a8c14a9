//! Unit tests of `apply`: conditional groups, append, set-range, copy and
//! rename, each inside one write with other operations.

use crate::{Check, Cond, Db, Error, Filter, Op, OpOutcome, Ttl, Value, ValueType};

const S: &str = "default";

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    (dir, db)
}

fn s(v: &str) -> Value {
    Value::Json(serde_json::Value::String(v.into()))
}

fn put(k: &str, v: &str) -> Op {
    Op::Put {
        store: S.into(),
        key: k.into(),
        value: s(v),
        ttl: Ttl::Default,
    }
}

fn check(k: &str, cond: Cond) -> Check {
    Check {
        store: S.into(),
        key: k.into(),
        cond,
    }
}

fn raw(db: &Db, k: &str) -> Option<Vec<u8>> {
    db.get(S, k).unwrap().map(|e| e.value.to_raw())
}

/// The change-log operation names of everything after `from`.
fn op_names(db: &Db, from: u64) -> Vec<(String, &'static str)> {
    let mut sub = db.subscribe(Filter::default(), Some(from + 1)).unwrap();
    sub.poll(100)
        .unwrap()
        .iter()
        .map(|e| (e.key.clone().unwrap_or_default(), e.op))
        .collect()
}

#[test]
fn failed_if_skips_its_ops_and_the_rest_applies() {
    let (_d, db) = open();
    db.put(S, "a", s("old")).unwrap();
    let out = db
        .batch(
            vec![],
            vec![
                Op::If {
                    checks: vec![check("a", Cond::Absent)],
                    ops: vec![put("a", "new")],
                },
                put("b", "1"),
                Op::If {
                    checks: vec![check("c", Cond::Absent)],
                    ops: vec![put("c", "2")],
                },
            ],
        )
        .unwrap();
    assert!(out.success);
    assert_eq!(
        out.ops,
        [
            OpOutcome::If {
                held: false,
                ops: vec![]
            },
            OpOutcome::Put { created: true },
            OpOutcome::If {
                held: true,
                ops: vec![OpOutcome::Put { created: true }]
            },
        ]
    );
    assert_eq!(raw(&db, "a").unwrap(), b"old");
    assert_eq!(raw(&db, "b").unwrap(), b"1");
    assert_eq!(raw(&db, "c").unwrap(), b"2");
}

#[test]
fn if_sees_earlier_ops_of_the_same_write() {
    let (_d, db) = open();
    let nx = |v: &str| Op::If {
        checks: vec![check("k", Cond::Absent)],
        ops: vec![put("k", v)],
    };
    let out = db.batch(vec![], vec![nx("first"), nx("second")]).unwrap();
    assert!(matches!(out.ops[0], OpOutcome::If { held: true, .. }));
    assert!(matches!(out.ops[1], OpOutcome::If { held: false, .. }));
    assert_eq!(raw(&db, "k").unwrap(), b"first");
}

#[test]
fn expiry_conditions() {
    let (_d, db) = open();
    db.put(S, "p", s("x")).unwrap();
    let at = crate::db::now_ms() + 100_000;
    db.batch(
        vec![],
        vec![Op::Put {
            store: S.into(),
            key: b"e".to_vec(),
            value: s("y"),
            ttl: Ttl::At(at),
        }],
    )
    .unwrap();
    let held = |k: &str, c: Cond| {
        let out = db
            .batch(
                vec![],
                vec![Op::If {
                    checks: vec![check(k, c)],
                    ops: vec![],
                }],
            )
            .unwrap();
        matches!(out.ops[0], OpOutcome::If { held: true, .. })
    };
    assert!(held("p", Cond::Persistent) && !held("e", Cond::Persistent));
    assert!(held("e", Cond::Expiring) && !held("p", Cond::Expiring));
    assert!(held("e", Cond::ExpiresBefore(at + 1)) && !held("e", Cond::ExpiresBefore(at)));
    assert!(!held("p", Cond::ExpiresBefore(at)), "no expiry is infinite");
    assert!(held("e", Cond::ExpiresAfter(at - 1)) && !held("e", Cond::ExpiresAfter(at)));
    assert!(held("p", Cond::ExpiresAfter(at)), "no expiry is infinite");
    assert!(!held("missing", Cond::ExpiresAfter(at)) && !held("missing", Cond::Persistent));
}

#[test]
fn append_and_setrange_work_on_raw_bytes_and_keep_the_expiry() {
    let (_d, db) = open();
    let at = crate::db::now_ms() + 100_000;
    db.batch(
        vec![],
        vec![Op::Put {
            store: S.into(),
            key: b"k".to_vec(),
            value: s("Hello"),
            ttl: Ttl::At(at),
        }],
    )
    .unwrap();
    let before = db.revision();
    let out = db
        .batch(
            vec![],
            vec![
                Op::Append {
                    store: S.into(),
                    key: b"k".to_vec(),
                    data: b" World".to_vec(),
                },
                Op::SetRange {
                    store: S.into(),
                    key: b"k".to_vec(),
                    offset: 6,
                    data: b"Redis".to_vec(),
                },
                Op::SetRange {
                    store: S.into(),
                    key: b"z".to_vec(),
                    offset: 3,
                    data: b"\xff".to_vec(),
                },
                Op::SetRange {
                    store: S.into(),
                    key: b"none".to_vec(),
                    offset: 3,
                    data: vec![],
                },
            ],
        )
        .unwrap();
    assert_eq!(
        out.ops,
        [
            OpOutcome::Length { len: 11 },
            OpOutcome::Length { len: 11 },
            OpOutcome::Length { len: 4 },
            OpOutcome::Length { len: 0 },
        ]
    );
    let e = db.get(S, "k").unwrap().unwrap();
    assert_eq!(e.value, s("Hello Redis"));
    assert_eq!(e.expires_at, Some(at));
    assert_eq!(
        db.get(S, "z").unwrap().unwrap().value,
        Value::Bytes(vec![0, 0, 0, 0xff])
    );
    assert!(db.get(S, "none").unwrap().is_none(), "an empty SETRANGE writes nothing");
    assert_eq!(
        op_names(&db, before),
        [
            ("k".into(), "append"),
            ("k".into(), "setrange"),
            ("z".into(), "setrange")
        ]
    );
}

#[test]
fn setrange_past_the_value_limit_is_refused() {
    let (_d, db) = open();
    let max = db.config().limits.max_value_bytes as u64;
    let r = db.batch(
        vec![],
        vec![Op::SetRange {
            store: S.into(),
            key: b"k".to_vec(),
            offset: max,
            data: b"x".to_vec(),
        }],
    );
    assert!(matches!(r, Err(Error::ValueTooLarge { .. })), "{r:?}");
}

#[test]
fn append_in_a_typed_store_parses_the_result() {
    let (_d, db) = open();
    let mut spec = crate::StoreSpec::new("ints");
    spec.value_type = ValueType::Int;
    db.create_store(spec).unwrap();
    db.put("ints", "n", Value::Json(5.into())).unwrap();
    let app = |d: &[u8]| {
        db.batch(
            vec![],
            vec![Op::Append {
                store: "ints".into(),
                key: b"n".to_vec(),
                data: d.to_vec(),
            }],
        )
    };
    app(b"1").unwrap();
    assert_eq!(db.get("ints", "n").unwrap().unwrap().value, Value::Json(51.into()));
    assert!(matches!(app(b"x"), Err(Error::InvalidValue { .. })));
}

#[test]
fn copy_and_rename_move_value_and_expiry() {
    let (_d, db) = open();
    let at = crate::db::now_ms() + 100_000;
    db.batch(
        vec![],
        vec![
            Op::Put {
                store: S.into(),
                key: b"src".to_vec(),
                value: s("v"),
                ttl: Ttl::At(at),
            },
            put("taken", "t"),
        ],
    )
    .unwrap();
    let before = db.revision();
    let copy = |to: &str, replace| Op::Copy {
        store: S.into(),
        key: b"src".to_vec(),
        to_store: S.into(),
        to: to.into(),
        replace,
    };
    let rename = |from: &str, to: &str, nx| Op::Rename {
        store: S.into(),
        key: from.into(),
        to: to.into(),
        nx,
    };
    let out = db
        .batch(
            vec![],
            vec![
                copy("c1", false),
                copy("taken", false),
                rename("c1", "taken", true),
                rename("c1", "r1", false),
                rename("gone", "r2", false),
                copy("taken", true),
            ],
        )
        .unwrap();
    let c = |found, done| OpOutcome::Copy { found, done };
    assert_eq!(
        out.ops,
        [
            c(true, true),
            c(true, false),
            c(true, false),
            c(true, true),
            c(false, false),
            c(true, true)
        ]
    );
    assert!(db.get(S, "c1").unwrap().is_none());
    let r1 = db.get(S, "r1").unwrap().unwrap();
    assert_eq!((r1.value, r1.expires_at), (s("v"), Some(at)));
    assert_eq!(db.get(S, "taken").unwrap().unwrap().expires_at, Some(at));
    assert_eq!(
        op_names(&db, before),
        [
            ("c1".into(), "copy_to"),
            ("c1".into(), "rename_from"),
            ("r1".into(), "rename_to"),
            ("taken".into(), "copy_to")
        ]
    );
}

#[test]
fn move_goes_to_another_store_only_when_the_key_is_absent_there() {
    let (_d, db) = open();
    db.create_store(crate::StoreSpec::new("other")).unwrap();
    db.create_store(crate::StoreSpec::new("ints").value_type(crate::ValueType::Int))
        .unwrap();
    let at = crate::db::now_ms() + 100_000;
    let ttl = Ttl::At(at);
    let put_in = |store: &str, k: &str, v: &str, ttl| Op::Put {
        store: store.into(),
        key: k.into(),
        value: s(v),
        ttl,
    };
    db.batch(
        vec![],
        vec![
            put_in(S, "a", "1", ttl),
            put_in(S, "b", "2", Ttl::Default),
            put_in("other", "b", "there", Ttl::Default),
        ],
    )
    .unwrap();
    let before = db.revision();
    let mv = |k: &str, to: &str| Op::Move {
        store: S.into(),
        key: k.into(),
        to_store: to.into(),
    };
    let out = db
        .batch(vec![], vec![mv("a", "other"), mv("b", "other"), mv("none", "other")])
        .unwrap();
    let c = |found, done| OpOutcome::Copy { found, done };
    assert_eq!(out.ops, [c(true, true), c(true, false), c(false, false)]);
    assert!(db.get(S, "a").unwrap().is_none());
    let moved = db.get("other", "a").unwrap().unwrap();
    assert_eq!((moved.value, moved.expires_at), (s("1"), Some(at)));
    assert_eq!(db.get(S, "b").unwrap().unwrap().value, s("2"), "left in place");
    assert_eq!(db.get("other", "b").unwrap().unwrap().value, s("there"));
    assert_eq!(
        op_names(&db, before),
        [("a".into(), "move_from"), ("a".into(), "move_to")]
    );
    // A value the destination's type refuses: an error, nothing moved.
    let r = db.batch(vec![], vec![mv("b", "ints")]);
    assert!(matches!(r, Err(Error::InvalidValue { .. })), "{r:?}");
    assert!(db.get(S, "b").unwrap().is_some());
}

#[test]
fn new_ops_keep_their_serde_shape() {
    let op: Op = serde_json::from_str(r#"{"op":"rename","store":"default","key":[97],"to":[98]}"#).unwrap();
    assert_eq!(
        op,
        Op::Rename {
            store: S.into(),
            key: b"a".to_vec(),
            to: b"b".to_vec(),
            nx: false
        }
    );
    let op: Op = serde_json::from_str(r#"{"op":"put","store":"default","key":[97],"value":1}"#).unwrap();
    assert!(matches!(op, Op::Put { ttl: Ttl::Default, .. }));
    let w = serde_json::to_value(Op::If {
        checks: vec![check("a", Cond::ExpiresBefore(5))],
        ops: vec![],
    })
    .unwrap();
    assert_eq!(
        w,
        serde_json::json!({"op": "if", "checks": [{"store": "default", "key": [97], "cond": {"expires_before": 5}}], "ops": []})
    );
}

#[test]
fn failed_try_is_undone_and_the_rest_applies() {
    let (_d, db) = open();
    db.put(S, "word", s("abc")).unwrap();
    let before = db.revision();
    let incr_word = Op::Incr {
        store: S.into(),
        key: b"word".to_vec(),
        by: 1.into(),
        integer: true,
        text: true,
    };
    let get = |k: &str| Op::Get {
        store: S.into(),
        key: k.into(),
    };
    let out = db
        .batch(
            vec![],
            vec![
                put("k", "1"),
                // Fails on its last op: its earlier writes (a fresh key and
                // a second write of `k`) are undone with it.
                Op::Try {
                    ops: vec![put("a", "x"), put("k", "2"), incr_word],
                },
                get("k"),
                get("a"),
                // Fails while resolving: an unknown store.
                Op::Try {
                    ops: vec![Op::Put {
                        store: "nope".into(),
                        key: b"z".to_vec(),
                        value: s("z"),
                        ttl: Ttl::Default,
                    }],
                },
                Op::Try {
                    ops: vec![put("b", "y")],
                },
            ],
        )
        .unwrap();
    assert!(out.success);
    let code = |o: &OpOutcome| match o {
        OpOutcome::Failed { error } => error.0.code(),
        other => panic!("expected a failed group, got {other:?}"),
    };
    assert_eq!(code(&out.ops[1]), "not_a_number");
    let seen = |o: &OpOutcome| match o {
        OpOutcome::Get { entry } => entry.as_ref().map(|e| e.value.to_raw()),
        other => panic!("expected a read, got {other:?}"),
    };
    assert_eq!(seen(&out.ops[2]), Some(b"1".to_vec()));
    assert_eq!(seen(&out.ops[3]), None);
    assert_eq!(code(&out.ops[4]), "unknown_store");
    assert_eq!(
        out.ops[5],
        OpOutcome::Tried {
            ops: vec![OpOutcome::Put { created: true }]
        }
    );
    assert_eq!(raw(&db, "k").unwrap(), b"1");
    assert_eq!(raw(&db, "a"), None);
    assert_eq!(raw(&db, "b").unwrap(), b"y");
    assert_eq!(raw(&db, "word").unwrap(), b"abc");
    // One revision, and events only for what stayed written.
    assert_eq!(db.revision(), before + 1);
    let mut names = op_names(&db, before);
    names.sort();
    assert_eq!(names, [("b".to_string(), "set"), ("k".to_string(), "set")]);
}

#[test]
fn a_write_of_only_failed_tries_changes_nothing() {
    let (_d, db) = open();
    db.put(S, "word", s("abc")).unwrap();
    let before = db.revision();
    let out = db
        .batch(
            vec![],
            vec![Op::Try {
                ops: vec![
                    put("a", "x"),
                    Op::Incr {
                        store: S.into(),
                        key: b"word".to_vec(),
                        by: 1.into(),
                        integer: false,
                        text: false,
                    },
                ],
            }],
        )
        .unwrap();
    assert!(matches!(&out.ops[0], OpOutcome::Failed { error } if error.0.code() == "not_a_number"));
    assert_eq!(out.revision, before);
    assert_eq!(db.revision(), before);
    assert_eq!(raw(&db, "a"), None);
}

#[test]
fn an_integer_increment_keeps_to_i64_and_writes_nothing_past_it() {
    let (_d, db) = open();
    db.put(S, "n", Value::Json(i64::MAX.into())).unwrap();
    let before = db.revision();
    let incr = |integer: bool| Op::Incr {
        store: S.into(),
        key: b"n".to_vec(),
        by: 1.into(),
        integer,
        text: true,
    };
    // Redis's INCR: an overflow, nothing written.
    let err = db.batch(vec![], vec![incr(true)]).unwrap_err();
    assert!(matches!(err, Error::Overflow { .. }), "{err}");
    assert_eq!(db.revision(), before);
    // JSON arithmetic goes on into u64.
    db.batch(vec![], vec![incr(false)]).unwrap();
    let v = db.get(S, "n").unwrap().unwrap().value;
    assert_eq!(v, Value::Json((i64::MAX as u64 + 1).into()));
}

#[test]
fn a_fraction_added_to_an_integer_past_2_pow_53_is_refused_not_rounded() {
    let (_d, db) = open();
    let big: u64 = (1 << 53) + 1;
    db.put(S, "m", Value::Json(big.into())).unwrap();
    let before = db.revision();
    let incr = |by: serde_json::Number| Op::Incr {
        store: S.into(),
        key: b"m".to_vec(),
        by,
        integer: false,
        text: false,
    };
    let err = db
        .batch(vec![], vec![incr(serde_json::Number::from_f64(0.5).unwrap())])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("exactly"), "{err}");
    assert_eq!(db.revision(), before);
    // An integer increment stays exact.
    db.batch(vec![], vec![incr(1.into())]).unwrap();
    assert_eq!(db.get(S, "m").unwrap().unwrap().value, Value::Json((big + 1).into()));
}

#[test]
fn an_int_store_increment_past_i64_is_an_overflow() {
    let (_d, db) = open();
    db.create_store(crate::StoreSpec::new("ints").value_type(ValueType::Int))
        .unwrap();
    db.put("ints", "n", Value::Json(i64::MAX.into())).unwrap();
    let err = db.incr("ints", "n", 1.into()).unwrap_err();
    assert!(matches!(err, Error::Overflow { .. }), "{err}");
}

#[test]
fn size_errors_name_the_store_and_key() {
    let (_d, db) = open();
    let max = db.config().limits.max_value_bytes;
    let big = Value::Bytes(vec![0; max + 1]);
    let e = db.batch(
        vec![],
        vec![
            put("ok", "1"),
            Op::Put {
                store: S.into(),
                key: b"big".to_vec(),
                value: big,
                ttl: Ttl::Default,
            },
        ],
    );
    let msg = e.unwrap_err().to_string();
    assert!(
        msg.starts_with("value for key \"big\" in store \"default\" is"),
        "{msg}"
    );
    let long = vec![b'k'; db.config().limits.max_key_bytes + 1];
    let msg = db.put(S, long, s("v")).unwrap_err().to_string();
    assert!(msg.starts_with("key for store \"default\" is"), "{msg}");
    assert!(db.get(S, "ok").unwrap().is_none(), "nothing written");
}
