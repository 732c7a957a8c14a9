//! `TypedStore<K, V>`: a typed view of a store, a thin layer over [`Db`].

use crate::{Db, Error, KeyType, PutOptions, Result, StoreSpec, Value, ValueType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

mod sealed {
    pub trait Sealed {}
    impl Sealed for String {}
    impl Sealed for uuid::Uuid {}
    impl Sealed for i64 {}
    impl Sealed for Vec<u8> {}
}

/// Key types a [`TypedStore`] accepts. Sealed.
pub trait TypedKey: sealed::Sealed {
    /// The store key type this maps to.
    const KEY_TYPE: KeyType;
    /// The raw key form the engine parses.
    fn to_raw(&self) -> Vec<u8>;
}

impl TypedKey for String {
    const KEY_TYPE: KeyType = KeyType::String;
    fn to_raw(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl TypedKey for uuid::Uuid {
    const KEY_TYPE: KeyType = KeyType::Uuid;
    fn to_raw(&self) -> Vec<u8> {
        self.hyphenated().to_string().into_bytes()
    }
}
impl TypedKey for i64 {
    const KEY_TYPE: KeyType = KeyType::Int;
    fn to_raw(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}
impl TypedKey for Vec<u8> {
    const KEY_TYPE: KeyType = KeyType::Bytes;
    fn to_raw(&self) -> Vec<u8> {
        self.clone()
    }
}

/// A store whose keys are `K` and values any serde type `V` (stored as JSON).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = cairn_core::Db::open(dir.path())?;
/// let counters = cairn_core::TypedStore::<String, i64>::open(&db, "counters")?;
/// counters.put(&"page-views".to_string(), &1)?;
/// counters.update(&"page-views".to_string(), |old| old.unwrap_or(0) + 1)?;
/// assert_eq!(counters.get_or(&"page-views".to_string(), 0)?, 2);
/// # Ok::<(), cairn_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TypedStore<K, V> {
    db: Db,
    name: String,
    _t: PhantomData<fn(K) -> V>,
}

impl<K: TypedKey, V: Serialize + DeserializeOwned> TypedStore<K, V> {
    /// Opens the store `name`, creating it with key type `K` (value type `json`) if missing.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] when it exists with another key type.
    pub fn open(db: &Db, name: &str) -> Result<Self> {
        match db.store_spec(name) {
            Ok(spec) if spec.key_type != K::KEY_TYPE => {
                return Err(Error::InvalidSpec {
                    store: name.to_owned(),
                    reason: format!(
                        "store has {} keys, not {}",
                        spec.key_type.as_str(),
                        K::KEY_TYPE.as_str()
                    ),
                });
            }
            Ok(_) => {}
            Err(Error::UnknownStore { .. }) => {
                db.create_store(StoreSpec::new(name).key_type(K::KEY_TYPE).value_type(ValueType::Json))?;
            }
            Err(e) => return Err(e),
        }
        Ok(TypedStore {
            db: db.clone(),
            name: name.to_owned(),
            _t: PhantomData,
        })
    }

    fn encode(&self, key: &K, v: &V) -> Result<Value> {
        serde_json::to_value(v)
            .map(Value::Json)
            .map_err(|e| Error::InvalidValue {
                store: self.name.clone(),
                key: String::from_utf8_lossy(&key.to_raw()).into_owned(),
                reason: format!("does not serialize: {e}"),
            })
    }

    /// A stored value as `V`. One that does not fit `V` (written through
    /// another API, or before `V` changed) is an [`Error::InvalidValue`]
    /// naming the key: a type mismatch, not damage on disk.
    fn decode(&self, key: &K, v: Value) -> Result<V> {
        let bad = |reason: String| Error::InvalidValue {
            store: self.name.clone(),
            key: String::from_utf8_lossy(&key.to_raw()).into_owned(),
            reason,
        };
        let j = match v {
            Value::Json(j) => j,
            Value::Bytes(_) => return Err(bad("the stored value is raw bytes, not JSON".into())),
        };
        serde_json::from_value(j).map_err(|e| {
            bad(format!(
                "the stored value does not deserialize as {}: {e}",
                std::any::type_name::<V>()
            ))
        })
    }

    /// The value for `key`.
    ///
    /// # Errors
    /// Storage errors; a stored value that does not deserialize as `V`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.db
            .get(&self.name, key.to_raw())?
            .map(|e| self.decode(key, e.value))
            .transpose()
    }

    /// The value for `key`, or `default`.
    ///
    /// # Errors
    /// As [`TypedStore::get`].
    pub fn get_or(&self, key: &K, default: V) -> Result<V> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// True when `key` exists.
    ///
    /// # Errors
    /// Storage errors.
    pub fn contains(&self, key: &K) -> Result<bool> {
        self.db.contains(&self.name, key.to_raw())
    }

    /// Sets `key`; returns the commit's revision.
    ///
    /// # Errors
    /// Value too large or failing the store's schema.
    pub fn put(&self, key: &K, value: &V) -> Result<u64> {
        let r = self.db.put(&self.name, key.to_raw(), self.encode(key, value)?)?;
        Ok(r.revision.unwrap_or_default())
    }

    /// Deletes `key`; true when it existed.
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete(&self, key: &K) -> Result<bool> {
        Ok(self.db.delete(&self.name, key.to_raw())?.success)
    }

    /// Removes every key.
    ///
    /// # Errors
    /// Storage errors.
    pub fn clear(&self) -> Result<u64> {
        self.db.clear(&self.name)
    }

    /// Replaces the value with `f(old)`, retrying compare-and-set until no
    /// concurrent write intervenes; returns the new value.
    ///
    /// # Errors
    /// As [`TypedStore::put`].
    pub fn update(&self, key: &K, mut f: impl FnMut(Option<V>) -> V) -> Result<V> {
        loop {
            let cur = self.db.get(&self.name, key.to_raw())?;
            let (old, opts) = match cur {
                // The new value keeps the key's expiry.
                Some(e) => (
                    Some(self.decode(key, e.value)?),
                    PutOptions {
                        if_revision: Some(e.revision),
                        keep_ttl: true,
                        ..Default::default()
                    },
                ),
                None => (
                    None,
                    PutOptions {
                        if_absent: true,
                        ..Default::default()
                    },
                ),
            };
            let new = f(old);
            let r = self
                .db
                .put_with(&self.name, key.to_raw(), self.encode(key, &new)?, opts)?;
            if r.success {
                return Ok(new);
            }
        }
    }
}
