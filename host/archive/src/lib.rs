//! Layer tarballs, both ways: [`apply`] writes an OCI layer into a directory, [`diff`] writes the
//! changes between two directory trees as a layer.

pub mod apply;
pub mod diff;
