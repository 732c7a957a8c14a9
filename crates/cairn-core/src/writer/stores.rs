//! The writer's store-level commands: create, drop and clear a store.
//! Each runs alone in its group (a barrier), so the catalog and the cache
//! are settled before and after it.

use super::{CatalogOp, Group, PersistedStore, Writer};
use crate::db::now_ms;
use crate::spec::{DEFAULT_STORE, StoreHandle};
use crate::{Applied, Error, Event, EventKind, Result, StoreSpec};
use std::sync::Arc;

impl Writer<'_> {
    pub(super) fn create_store(&mut self, g: &mut Group, spec: StoreSpec) -> Result<Applied> {
        spec.check_new()?;
        let validator = spec.compile()?;
        if let Ok(existing) = self.store(&spec.name) {
            if existing.spec == spec {
                return Ok(Applied::Store {
                    created: false,
                    revision: self.revision(),
                });
            }
            return Err(Error::StoreExists {
                differs: existing.spec.differences(&spec),
                store: spec.name,
            });
        }
        let id = self.shared.catalog.read().next_id;
        let persisted = serde_json::to_vec(&PersistedStore { id, spec: spec.clone() })
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        g.stores.push((spec.name.clone(), Some(persisted)));
        g.next_store_id = Some(id + 1);
        g.catalog
            .push(CatalogOp::Add(Arc::new(StoreHandle { id, spec, validator })));
        self.bump(g);
        Ok(Applied::Store {
            created: true,
            revision: self.revision(),
        })
    }

    pub(super) fn drop_store(&mut self, g: &mut Group, name: &str) -> Result<Applied> {
        if name == DEFAULT_STORE {
            return Err(Error::InvalidArgument("the default store cannot be dropped".into()));
        }
        let Ok(h) = self.store(name) else {
            return Ok(Applied::Dropped {
                existed: false,
                revision: self.revision(),
            });
        };
        self.emptied(g, &h, "drop")?;
        if !g.changed {
            self.bump(g);
        }
        g.stores.push((name.to_owned(), None));
        g.catalog.push(CatalogOp::Remove(name.to_owned()));
        g.retired.push(h.id);
        Ok(Applied::Dropped {
            existed: true,
            revision: self.revision(),
        })
    }

    /// Empties a store whatever its size: it gets a new id and the old one
    /// is retired (`retire`); one `cleared` event. The number of live keys
    /// it held; with none, nothing changes (records whose TTL passed are
    /// left to the collector).
    pub(super) fn clear(&mut self, g: &mut Group, h: &StoreHandle) -> Result<u64> {
        let removed = self.emptied(g, h, "flushdb")?;
        if removed == 0 {
            return Ok(0);
        }
        let id = g.next_store_id.unwrap_or_else(|| self.shared.catalog.read().next_id);
        let spec = h.spec.clone();
        let persisted = serde_json::to_vec(&PersistedStore { id, spec: spec.clone() })
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        g.stores.push((spec.name.clone(), Some(persisted)));
        g.next_store_id = Some(id + 1);
        g.catalog.push(CatalogOp::Add(Arc::new(StoreHandle {
            id,
            spec,
            validator: h.validator.clone(),
        })));
        g.retired.push(h.id);
        Ok(removed)
    }

    /// The `cleared` event of a store about to lose its keys; how many
    /// live keys it had (0: no event).
    fn emptied(&mut self, g: &mut Group, h: &StoreHandle, op: &'static str) -> Result<u64> {
        let removed = crate::keystats::read(self.shared, h.id)?.keys;
        if removed == 0 {
            return Ok(0);
        }
        let revision = self.bump(g);
        g.clear_cache = true;
        g.push_event(
            Event {
                revision,
                store: h.spec.name.clone(),
                key: None,
                kind: EventKind::Cleared,
                old_value: None,
                new_value: None,
                timestamp: now_ms(),
                raw_key: Vec::new(),
                op,
            },
            None,
            None,
        );
        Ok(removed)
    }
}
