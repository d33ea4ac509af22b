//! Writing the changes between two directory trees as an OCI layer (a tar stream).
