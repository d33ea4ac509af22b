//! Applying an OCI layer (a tar stream) to a directory.
