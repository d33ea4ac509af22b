//! Go's `path.Clean` (and `filepath.Clean` on Linux): where containerd names things by a cleaned
//! path — a shim's socket hashes `filepath.Join(address, namespace, id)`, `ctr` cleans a spec's
//! paths and an archive's member names — the same string must come out here.

/// The shortest path naming the same place: empty and `.` components dropped, `..` applied
/// (kept at the front of a relative path), no trailing slash; `.` for an empty result.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn cleans_as_go_does() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/./b/"), "a/b");
        assert_eq!(clean("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("./index.json"), "index.json");
    }
}
