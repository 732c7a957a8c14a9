//! Content-addressed storage: known answers, dedup, verified reads.

use cairn_core::{Algorithm, Db, Error};

#[test]
fn store_dedup_verify_delete() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let a = db.put_content(b"abc".to_vec(), Algorithm::Sha256).unwrap();
    assert_eq!(
        a.hash,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(a.stored);
    assert_eq!(a.size, 3);
    let again = db.put_content(b"abc".to_vec(), Algorithm::Sha256).unwrap();
    assert!(!again.stored, "identical content is stored once");
    let s1 = db.put_content(b"abc".to_vec(), Algorithm::Sha1).unwrap();
    assert_eq!(s1.hash, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(db.get_content(&a.hash).unwrap().as_deref(), Some(&b"abc"[..]));
    assert_eq!(db.get_content(&s1.hash).unwrap().as_deref(), Some(&b"abc"[..]));
    assert!(db.has_content(&s1.hash).unwrap());
    let big = vec![7u8; 4 << 20];
    let b = db.put_content(big.clone(), Algorithm::Sha256).unwrap();
    assert_eq!(db.get_content(&b.hash).unwrap().unwrap(), big);
    assert!(db.delete_content(&s1.hash).unwrap());
    assert!(!db.delete_content(&s1.hash).unwrap());
    assert_eq!(db.get_content(&s1.hash).unwrap(), None);
    let unknown = "0".repeat(64);
    assert_eq!(db.get_content(&unknown).unwrap(), None);
    for bad in ["", "abc", &"g".repeat(64), &"0".repeat(63)] {
        assert!(matches!(db.get_content(bad), Err(Error::InvalidHash { .. })), "{bad:?}");
    }
}

#[test]
fn corrupted_content_is_an_error_never_wrong_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let info = db.put_content(b"precious bytes".to_vec(), Algorithm::Sha256).unwrap();
    db.corrupt_content_for_tests(&info.hash, b"precious bytez").unwrap();
    let err = db.get_content(&info.hash).unwrap_err();
    assert_eq!(err.code(), "corrupted");
    assert!(err.to_string().contains(&info.hash));
}

#[test]
fn content_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let hash = {
        let db = Db::open(dir.path()).unwrap();
        db.put_content(b"persist me".to_vec(), Algorithm::Sha1).unwrap().hash
    };
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get_content(&hash).unwrap().as_deref(), Some(&b"persist me"[..]));
}
