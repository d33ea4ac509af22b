//! Builds the small C face over ISA-L's inflate (csrc/gunzip.c) and links Debian's libisal
//! (`libisal-dev`), which gzip layers are decompressed with.

fn main() {
    println!("cargo:rerun-if-changed=csrc/gunzip.c");
    cc::Build::new()
        .file("csrc/gunzip.c")
        .warnings(true)
        .compile("rcontainerd_gunzip");
    // After the static face, which calls into it.
    println!("cargo:rustc-link-lib=isal");
}
