//! Metadata: the daemon's records in one RocksDB.
//!
//! # Layout
//! One database at `<root>/io.containerd.metadata.v1.bolt/meta.rocksdb` (the
//! directory keeps containerd's plugin layout). One column family per record
//! type:
//!
//! | family       | key                                      | value                     |
//! |--------------|------------------------------------------|---------------------------|
//! | `namespaces` | `name`                                   | labels, created, updated  |
//! | `images`     | `namespace \0 name`                      | image record (`images.rs`) |
//! | `containers` | `namespace \0 id`                        | container record (`containers.rs`) |
//! | `leases`     | `namespace \0 id`                        | lease record (`leases.rs`) |
//! | `lease_resources` | `namespace \0 id \0 type \0 ref`     | empty (`leases.rs`)       |
//! | `snapshots`  | `namespace \0 snapshotter \0 name`       | snapshot record           |
//! | `content`    | `namespace \0 digest`                    | blob record (`content.rs`)|
//! | `ingests`    | `namespace \0 ref`                       | ingest ref (`content.rs`) |
//! | `meta`       | `schema_version`                         | u32, big-endian           |
//! | `meta`       | `content.ingest_sequence`                | u64, big-endian (`content.rs`) |
//! | `meta`       | `snapshot-counter \0 …`, `snapshot-intent \0 …` | see `snapshots.rs` |
//!
//! Identifiers never contain NUL, so every record of a namespace shares the
//! prefix `namespace \0` and a prefix scan lists exactly one namespace (one
//! snapshotter's snapshots under `namespace \0 snapshotter \0`). Later
//! record types keep that first key part; what follows is theirs to define.
//!
//! # Values
//! Every value is a versioned record: one version byte, then the
//! serde + postcard encoding of that version's struct (`record.rs`). Fields
//! are never added in place: a changed record gets a new version byte and the
//! reader keeps decoding the old ones. [`SCHEMA_VERSION`] in `meta` changes
//! only when older builds could no longer read the database; `open` records
//! it on first use and refuses a newer one.
//!
//! # Writes
//! Every acknowledged mutation is one `WriteBatch` written with `sync`, so it
//! survives `kill -9` and power loss once the call returns (snapshot commits
//! and removals are durable through their synced intent instead; see
//! `snapshots.rs`). A mutation whose checks span records (a namespace must be
//! empty to go; a record may only be written into an existing namespace)
//! holds [`MetadataStore::lock_namespace`] (or, when its records have a lock
//! of their own, [`MetadataStore::share_namespace`]) from its reads to its
//! write. Record writers call
//! [`Namespaces::ensure_in`] under that guard so that a record
//! and its implicitly created namespace land in the same batch.
//!
//! One module per record kind, each a view borrowed from the store
//! (`meta.namespaces()`, `meta.images()`, `meta.containers()`,
//! `meta.leases()`, `meta.blobs()`, `meta.ingests()`,
//! `meta.snapshots(snapshotter)`).

mod containers;
mod content;
mod gate;
pub mod gc;
mod images;
mod keys;
mod leases;
mod namespaces;
mod record;
pub mod snapshots;
mod store;

pub use containers::{AnyValue, Container, Containers, Runtime};
pub use content::{
    blob_exists, blob_not_found, validate_blob_labels, BlobRecord, Blobs, DigestState,
    IngestRecord, Ingests,
};
pub use gate::WriterHold;
pub use gc::Collection;
pub use images::{image_not_found, Descriptor, Image, Images};
pub use leases::{lease_does_not_exist, Lease, Leases, Resource};
pub use namespaces::{Namespace, Namespaces};
pub use snapshots::{Intent, SnapshotKind, SnapshotRecord, Snapshots};
pub use store::{MetadataStore, NamespaceGuard, SCHEMA_VERSION};
