//! The lease a call works under: what a call creates while it names a lease
//! in its `containerd-lease` header (a blob, an ingest, a snapshot) is held
//! by that lease, so garbage collection leaves it alone until the lease
//! goes. A call without the header holds nothing.
//!
//! The record and the lease's reference are written one after the other:
//! a crash between the two loses only the reference of a call that was
//! never acknowledged.

use rcontainerd_metadata::{MetadataStore, Resource};
use rcontainerd_pkg::errdefs::Result;

/// One call's lease, or none.
#[derive(Clone, Copy)]
pub struct CallLease<'a> {
    meta: &'a MetadataStore,
    namespace: &'a str,
    id: Option<&'a str>,
}

impl<'a> CallLease<'a> {
    pub fn new(meta: &'a MetadataStore, namespace: &'a str, id: Option<&'a str>) -> Self {
        CallLease {
            meta,
            namespace,
            id,
        }
    }

    /// Fails with containerd's NotFound "lease does not exist" when the
    /// header names a lease the namespace does not have; checked before the
    /// call changes anything.
    pub fn check(&self) -> Result<()> {
        match self.id {
            Some(id) => self.meta.leases().check(self.namespace, id),
            None => Ok(()),
        }
    }

    /// The lease now holds `resource`.
    pub fn hold(&self, resource: &Resource) -> Result<()> {
        match self.id {
            Some(id) => self.meta.leases().attach(self.namespace, id, resource),
            None => Ok(()),
        }
    }

    /// The lease now holds `to` instead of `from` (an ingest became a blob,
    /// an active snapshot was committed under a name).
    pub fn swap(&self, from: &Resource, to: &Resource) -> Result<()> {
        match self.id {
            Some(id) => self.meta.leases().replace(self.namespace, id, from, to),
            None => Ok(()),
        }
    }

    /// The lease no longer holds `resource` (it was removed).
    pub fn release(&self, resource: &Resource) -> Result<()> {
        match self.id {
            Some(id) => self.meta.leases().detach(self.namespace, id, resource),
            None => Ok(()),
        }
    }
}
