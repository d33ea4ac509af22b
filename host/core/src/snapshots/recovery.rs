//! Startup recovery and orphan removal for one snapshot store.
//!
//! An intent left in the metadata store means the daemon stopped between a
//! driver call and the record change it belonged to. Each is resolved by
//! asking the driver what happened:
//!
//! | intent         | driver state                         | action                           |
//! |----------------|---------------------------------------|----------------------------------|
//! | prepare / view | key present                           | remove it (the client got no ack)|
//! | commit         | committed key present, active gone    | write the committed record       |
//! | commit         | anything else                         | drop the intent                  |
//! | remove         | key gone                              | delete the record                |
//! | remove         | key present                           | drop the intent                  |
//!
//! Then every driver snapshot that neither a record nor a pending intent
//! refers to is removed, children before parents, each one logged.
//!
//! Only the intents and the counter are settled before serving: the intents
//! (a prefix of `meta`, empty after a clean stop) and one driver walk, whose
//! keys give the counter its floor (after a machine crash the driver may hold
//! keys whose unsynced intent, and counter, was lost; a new key must not
//! collide with them). The orphan pass needs this snapshotter's records as
//! well (a scan of every record), so it runs after the store opened, on a
//! thread of its own ([`remove_orphans_walked`] with that walk), while the
//! server already answers: see [`remove_orphans_walked`] for why that is
//! safe.

use std::collections::{BTreeMap, HashSet};

use rcontainerd_plugin_api::snapshot::Info;

use super::SnapshotStore;
use rcontainerd_metadata::snapshots::{driver_key_counter, Intent};
use rcontainerd_pkg::errdefs::{Error, Kind, Result};

/// Resolves pending intents and moves the counter past every number in use.
/// Returns the driver's walk, for the orphan pass to run later
/// ([`remove_orphans_walked`]); `None` if the driver cannot walk or the walk
/// failed (the orphan check is then skipped, as it would have been).
pub fn recover(store: &SnapshotStore) -> Result<Option<Vec<Info>>> {
    let snapshotter = store.snapshotter.as_str();
    let mut highest = 0;
    for (id, intent) in store.meta.snapshots(snapshotter).intents()? {
        highest = highest.max(id);
        if let Err(e) = replay(store, id, &intent) {
            tracing::warn!(snapshotter, intent = id, error = %e,
                "could not resolve snapshot intent; kept for the next start");
        }
    }
    let walked = match store.call("walk", |b| b.walk()) {
        Ok(walked) => {
            highest = walked
                .iter()
                .filter_map(|info| driver_key_counter(&info.name))
                .fold(highest, u64::max);
            Some(walked)
        }
        Err(e) => {
            if e.is(Kind::NotImplemented) {
                tracing::info!(
                    snapshotter,
                    "snapshotter cannot walk its snapshots; orphan check skipped"
                );
            } else {
                tracing::warn!(snapshotter, error = %e, "orphan check failed");
            }
            // Without a walk, the records' keys are the best floor there is.
            for key in store.meta.snapshots(snapshotter).driver_keys()? {
                highest = highest.max(driver_key_counter(&key).unwrap_or(0));
            }
            None
        }
    };
    // Every key the driver holds is in the walk; a record whose driver
    // snapshot is gone cannot collide (its name is taken in its namespace,
    // and a key carries the name), so the records need not be read here.
    store
        .counter
        .fetch_max(highest, std::sync::atomic::Ordering::SeqCst);
    Ok(walked)
}

/// Whether the driver has `driver_key`.
fn driver_has(store: &SnapshotStore, driver_key: &str) -> Result<bool> {
    match store.call("stat", |b| b.stat(driver_key)) {
        Ok(_) => Ok(true),
        Err(e) if e.is(Kind::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

fn replay(store: &SnapshotStore, id: u64, intent: &Intent) -> Result<()> {
    let snapshotter = store.snapshotter.as_str();
    let meta = &store.meta;
    match intent {
        Intent::Create { driver_key } => {
            if driver_has(store, driver_key)? {
                store.call("remove", |b| b.remove(driver_key))?;
                tracing::info!(snapshotter, driver_key = %driver_key,
                    "removed snapshot whose creation was interrupted");
            }
            meta.snapshots(snapshotter).drop_intent(id)
        }
        Intent::Commit {
            namespace,
            active_name,
            active_key,
            record,
        } => {
            let record = record.to_record();
            let committed = driver_has(store, &record.driver_key)?;
            let active_left = driver_has(store, active_key)?;
            let active_record = meta.snapshots(snapshotter).get(namespace, active_name)?;
            if committed && !active_left && active_record.is_some() {
                meta.snapshots(snapshotter)
                    .finish_commit(namespace, id, &record, active_name)?;
                tracing::info!(snapshotter, namespace = %namespace, key = %active_name,
                    name = %record.name, "completed interrupted commit");
                Ok(())
            } else {
                meta.snapshots(snapshotter).drop_intent(id)
            }
        }
        Intent::Remove {
            namespace,
            name,
            driver_key,
        } => {
            if driver_has(store, driver_key)? {
                meta.snapshots(snapshotter).drop_intent(id)
            } else {
                meta.snapshots(snapshotter)
                    .finish_remove(namespace, id, name)?;
                tracing::info!(snapshotter, namespace = %namespace, key = %name,
                    "completed interrupted remove");
                Ok(())
            }
        }
    }
}

/// Removes driver snapshots that no record or pending intent refers to,
/// children first.
pub fn remove_orphans(store: &SnapshotStore) -> Result<()> {
    let walked = store.call("walk", |b| b.walk())?;
    remove_orphans_walked(store, walked)
}

/// [`remove_orphans`] with a walk taken earlier (at start, before serving).
///
/// Safe while clients use the store, however long ago `walked` was taken:
/// - Anything created after the walk is not looked at, and anything the walk
///   saw had its intent written before it existed, so the scans below see its
///   intent or, once finished, its record.
/// - A walked snapshot that a commit or removal takes away meanwhile is
///   referenced by its intent (written and synced before the driver call)
///   until the finishing batch deletes intent and record together, after the
///   driver call. The intents are scanned before the records, so if neither
///   scan sees it, that batch was written before the records scan, the driver
///   no longer has it, and its removal here finds nothing (`NotFound`). A
///   driver call that fails leaves the record, so the snapshot stays
///   referenced.
/// - Driver keys are never reused (the counter is past every walked key), so
///   a removal here cannot hit a newer snapshot of the same name.
pub fn remove_orphans_walked(store: &SnapshotStore, walked: Vec<Info>) -> Result<()> {
    let snapshotter = store.snapshotter.as_str();
    let mut referenced: HashSet<String> = HashSet::new();
    for (_, intent) in store.meta.snapshots(snapshotter).intents()? {
        match intent {
            Intent::Create { driver_key } | Intent::Remove { driver_key, .. } => {
                referenced.insert(driver_key);
            }
            Intent::Commit {
                active_key, record, ..
            } => {
                referenced.insert(active_key);
                referenced.insert(record.to_record().driver_key);
            }
        }
    }
    referenced.extend(store.meta.snapshots(snapshotter).driver_keys()?);

    let mut orphans: BTreeMap<String, Info> = walked
        .into_iter()
        .filter(|info| !referenced.contains(&info.name))
        .map(|info| (info.name.clone(), info))
        .collect();
    while !orphans.is_empty() {
        let parents: HashSet<&str> = orphans.values().map(|i| i.parent.as_str()).collect();
        let leaves: Vec<String> = orphans
            .keys()
            .filter(|k| !parents.contains(k.as_str()))
            .cloned()
            .collect();
        if leaves.is_empty() {
            return Err(Error::internal(format!(
                "snapshotter {snapshotter}: orphaned snapshots form a parent cycle: {:?}",
                orphans.keys().collect::<Vec<_>>()
            )));
        }
        for leaf in leaves {
            orphans.remove(&leaf);
            match store.call("remove", |b| b.remove(&leaf)) {
                Ok(()) => {
                    tracing::info!(snapshotter, driver_key = %leaf, "removed orphaned snapshot")
                }
                Err(e) if e.is(Kind::NotFound) => {}
                Err(e) => tracing::warn!(snapshotter, driver_key = %leaf, error = %e,
                    "could not remove orphaned snapshot"),
            }
        }
    }
    Ok(())
}
