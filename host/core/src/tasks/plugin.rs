//! `io.containerd.service.v1.tasks-service`: the [`Tasks`] over every runtime driver.

use std::collections::BTreeMap;
use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;
use rcontainerd_plugin_api::runtime::Runtime;

use super::Tasks;
use crate::events::Exchange;
use crate::ids::{EVENT_TYPE, EXCHANGE, METADATA, METADATA_TYPE, RUNTIME_TYPE, SERVICE_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration};

pub fn registration() -> Registration {
    // Without a runtime driver the service still serves: its calls say which driver is missing.
    Registration::builtin(
        SERVICE_TYPE,
        "tasks-service",
        &[METADATA_TYPE, EVENT_TYPE],
        init,
    )
    .with_optional(&[RUNTIME_TYPE])
}

fn init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    let meta = ctx.get::<Arc<MetadataStore>>(METADATA)?;
    let exchange = ctx.get::<Arc<Exchange>>(EXCHANGE)?;
    let runtimes: BTreeMap<String, Arc<dyn Runtime>> = ctx
        .all::<Arc<dyn Runtime>>(RUNTIME_TYPE)
        .into_iter()
        .map(|(id, driver)| (format!("{RUNTIME_TYPE}.{id}"), driver))
        .collect();
    Ok(Instance::of(Arc::new(Tasks::new(meta, runtimes, exchange))))
}
