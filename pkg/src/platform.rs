//! The host platform in OCI terms (`linux`/`amd64`), as containerd reports it.

/// The OS and architecture of this build, in OCI's names (`GOOS`/`GOARCH`).
pub fn host() -> (String, String) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    (std::env::consts::OS.to_string(), arch.to_string())
}
