//! What the benchmark reads from `/proc`: a process's memory and threads, and its descendants. Mount
//! points come from `rcontainerd_tests::mounts`, which the integration tests clean up with.

use std::io;

/// Memory and thread figures from `/proc/<pid>/status`, in KiB where sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    pub vm_rss_kib: u64,
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub threads: u64,
}

pub fn status(pid: u32) -> io::Result<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS or Threads line"),
        )
    })
}

fn parse_status(text: &str) -> Option<Status> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Status {
        vm_rss_kib: field("VmRSS:")?,
        rss_anon_kib: field("RssAnon:").unwrap_or(0),
        rss_file_kib: field("RssFile:").unwrap_or(0),
        threads: field("Threads:")?,
    })
}

/// Every live process whose parent chain leads to `root` (not `root` itself).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parent_of(&s))
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        next += 1;
    }
    found.remove(0);
    found
}

/// The parent pid in a `/proc/<pid>/stat` line; the command name may hold spaces and parentheses.
fn parent_of(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let text =
            "Name:\tx\nVmRSS:\t   12345 kB\nRssAnon:\t 100 kB\nRssFile:\t 200 kB\nThreads:\t7\n";
        assert_eq!(
            parse_status(text),
            Some(Status {
                vm_rss_kib: 12345,
                rss_anon_kib: 100,
                rss_file_kib: 200,
                threads: 7
            })
        );
        assert_eq!(parse_status("Name:\tx\nThreads:\t7\n"), None);
    }

    #[test]
    fn parent_is_read_past_a_name_with_spaces_and_parentheses() {
        assert_eq!(parent_of("42 (a (b) c) S 17 42 42 0"), Some(17));
    }

    #[test]
    fn this_process_is_its_own_parents_descendant() {
        let me = std::process::id();
        let parent = parent_of(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        assert!(descendants(parent).contains(&me));
        assert!(!descendants(me).contains(&me));
    }
}
