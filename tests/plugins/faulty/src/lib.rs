//! A small working snapshotter (`io.containerd.snapshotter.v1.faulty`: directories under its root,
//! bind mounts, records in memory) that fails the hard way when a key asks for it: preparing a
//! key that starts with `segfault-` dereferences a null pointer, `abort-` aborts the process and
//! `hang-` never returns. In the daemon's process any of them takes the daemon down; isolated
//! (`isolation = "process"`) they must cost only the call in flight.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rcontainerd_plugin_api::{
    export_plugin,
    snapshot::{Info, Kind, Labels, Mount, Snapshotter, Usage},
    Driver, InitContext, Manifest, Plugin, PluginError, PluginInstance, Result,
};

pub struct Faulty;

impl Plugin for Faulty {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.snapshotter.v1", "faulty")
    }

    fn init(ctx: InitContext) -> Result<PluginInstance> {
        let dir = ctx.root.join("snapshots");
        std::fs::create_dir_all(&dir).map_err(|e| PluginError::io("create root", e))?;
        let driver = Store {
            dir,
            records: Mutex::default(),
        };
        Ok(PluginInstance::new(Driver::Snapshotter(Arc::new(driver)))
            .export("root", ctx.root.display().to_string()))
    }
}

struct Store {
    dir: PathBuf,
    records: Mutex<BTreeMap<String, (Info, u64)>>,
}

/// Does what the key asks for; the daemon's driver keys end with the client's key after a `/`.
fn fault(key: &str) {
    let key = key.rsplit('/').next().unwrap_or(key);
    if key.starts_with("segfault-") {
        let null: *mut u8 = std::ptr::null_mut();
        // SAFETY: not safe at all, on purpose: the write through a null pointer is the segfault
        // this plugin exists to cause. Volatile, so the compiler keeps it.
        unsafe { null.write_volatile(1) };
    }
    if key.starts_with("abort-") {
        std::process::abort();
    }
    if key.starts_with("hang-") {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Store {
    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Info, u64)>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn create(&self, key: &str, parent: &str, labels: Labels, kind: Kind) -> Result<Vec<Mount>> {
        fault(key);
        let mut records = self.records();
        if records.contains_key(key) {
            return Err(PluginError::already_exists(format!(
                "snapshot {key}: already exists"
            )));
        }
        if !parent.is_empty()
            && !matches!(records.get(parent), Some((info, _)) if info.kind == Kind::Committed)
        {
            return Err(PluginError::not_found(format!(
                "parent {parent}: not found"
            )));
        }
        let id = records.values().map(|(_, id)| *id).max().unwrap_or(0) + 1;
        let path = self.dir.join(id.to_string());
        std::fs::create_dir_all(&path).map_err(|e| PluginError::io("create snapshot", e))?;
        let info = Info {
            kind,
            name: key.to_string(),
            parent: parent.to_string(),
            labels,
            created: now(),
            updated: now(),
        };
        records.insert(key.to_string(), (info, id));
        Ok(vec![self.bind(id, kind == Kind::View)])
    }

    fn bind(&self, id: u64, readonly: bool) -> Mount {
        Mount {
            mount_type: "bind".into(),
            source: self.dir.join(id.to_string()).display().to_string(),
            target: String::new(),
            options: vec![if readonly { "ro" } else { "rw" }.into(), "rbind".into()],
        }
    }

    fn get(&self, key: &str) -> Result<(Info, u64)> {
        self.records()
            .get(key)
            .cloned()
            .ok_or_else(|| PluginError::not_found(format!("snapshot {key}: not found")))
    }
}

impl Snapshotter for Store {
    fn stat(&self, key: &str) -> Result<Info> {
        self.get(key).map(|(info, _)| info)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        self.get(key).map(|_| Usage::default())
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let (info, id) = self.get(key)?;
        Ok(vec![self.bind(id, info.kind == Kind::View)])
    }

    fn prepare(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(key, parent, labels, Kind::Active)
    }

    fn view(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(key, parent, labels, Kind::View)
    }

    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        let mut records = self.records();
        if records.contains_key(name) {
            return Err(PluginError::already_exists(format!(
                "snapshot {name}: already exists"
            )));
        }
        match records.get(key) {
            Some((info, _)) if info.kind == Kind::Active => {}
            Some(_) => {
                return Err(PluginError::failed_precondition(format!(
                    "snapshot {key} is not active"
                )))
            }
            None => return Err(PluginError::not_found(format!("snapshot {key}: not found"))),
        }
        let (mut info, id) = records.remove(key).expect("checked above");
        info.kind = Kind::Committed;
        info.name = name.to_string();
        info.labels = labels;
        records.insert(name.to_string(), (info, id));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<()> {
        let mut records = self.records();
        if records.values().any(|(info, _)| info.parent == key) {
            return Err(PluginError::failed_precondition(format!(
                "snapshot {key} has children"
            )));
        }
        let (_, id) = records
            .remove(key)
            .ok_or_else(|| PluginError::not_found(format!("snapshot {key}: not found")))?;
        let _ = std::fs::remove_dir_all(self.dir.join(id.to_string()));
        Ok(())
    }

    fn walk(&self) -> Result<Vec<Info>> {
        Ok(self
            .records()
            .values()
            .map(|(info, _)| info.clone())
            .collect())
    }
}

export_plugin!(Faulty);
