//! An in-memory task runtime exported through the current ABI generation (3), to carry every
//! runtime call across the boundary; see `driver.rs`. `runtime-placeholder` compiles the same
//! driver into a library of its own (a dependency on this crate's rlib would bring along this
//! library's exported symbols).

mod driver;

rcontainerd_plugin_api::export_plugin!(driver::FakeRuntimePlugin);
