//! runtime-fake's driver offered through ABI generation 2, whose runtime object is a
//! placeholder that cannot carry the runtime interface: its init must be refused ("runtime
//! drivers need ABI generation 3") while the library itself loads.

#[path = "../../runtime-fake/src/driver.rs"]
mod driver;

rcontainerd_plugin_api::export_plugin_v2!(driver::FakeRuntimePlugin);
