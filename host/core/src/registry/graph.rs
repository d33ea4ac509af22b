//! Init order: every plugin comes after the plugins of the types it
//! `requires` (`"*"`: after every plugin that does not itself require `"*"`).
//! `requires` only orders; a cycle is a startup error that names it.

use std::fmt;

/// What the ordering needs to know of a registration.
pub trait Node {
    fn plugin_type(&self) -> &str;
    fn requires(&self) -> &[String];
    fn uri(&self) -> String;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleError {
    pub cycle: Vec<String>,
}

impl fmt::Display for CycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin dependency cycle: {}", self.cycle.join(" -> "))
    }
}

impl std::error::Error for CycleError {}

/// Returns indices of `nodes` in init order, stable for independent nodes.
pub fn order<N: Node>(nodes: &[N]) -> Result<Vec<usize>, CycleError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let wants_all = |n: &N| n.requires().iter().any(|r| r == "*");
    let deps = |i: usize| -> Vec<usize> {
        let n = &nodes[i];
        (0..nodes.len())
            .filter(|&j| j != i)
            .filter(|&j| {
                n.requires()
                    .iter()
                    .any(|r| (r == "*" && !wants_all(&nodes[j])) || r == nodes[j].plugin_type())
            })
            .collect()
    };

    let mut marks = vec![Mark::New; nodes.len()];
    let mut out = Vec::with_capacity(nodes.len());
    let mut stack: Vec<usize> = Vec::new();

    fn visit(
        i: usize,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        out: &mut Vec<usize>,
        deps: &dyn Fn(usize) -> Vec<usize>,
        uri: &dyn Fn(usize) -> String,
    ) -> Result<(), CycleError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Visiting => {
                let start = stack.iter().position(|&s| s == i).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].iter().map(|&s| uri(s)).collect();
                cycle.push(uri(i));
                return Err(CycleError { cycle });
            }
            Mark::New => {}
        }
        marks[i] = Mark::Visiting;
        stack.push(i);
        for d in deps(i) {
            visit(d, marks, stack, out, deps, uri)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }

    let uri = |i: usize| nodes[i].uri();
    for i in 0..nodes.len() {
        visit(i, &mut marks, &mut stack, &mut out, &deps, &uri)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N(&'static str, &'static str, Vec<String>);
    impl Node for N {
        fn plugin_type(&self) -> &str {
            self.0
        }
        fn requires(&self) -> &[String] {
            &self.2
        }
        fn uri(&self) -> String {
            format!("{}.{}", self.0, self.1)
        }
    }
    fn n(t: &'static str, id: &'static str, req: &[&str]) -> N {
        N(t, id, req.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn dependencies_come_first() {
        let nodes = [
            n("grpc", "a", &["service"]),
            n("service", "b", &["metadata"]),
            n("metadata", "c", &["content", "snapshotter"]),
            n("snapshotter", "d", &[]),
            n("content", "e", &[]),
            n("last", "f", &["*"]),
        ];
        let order = order(&nodes).unwrap();
        let pos = |i| order.iter().position(|&x| x == i).unwrap();
        assert!(pos(3) < pos(2) && pos(4) < pos(2));
        assert!(pos(2) < pos(1) && pos(1) < pos(0));
        assert_eq!(*order.last().unwrap(), 5);
        assert_eq!(order.len(), nodes.len());
    }

    #[test]
    fn independent_plugins_keep_registration_order() {
        let nodes = [n("x", "1", &[]), n("x", "2", &[]), n("y", "3", &[])];
        assert_eq!(order(&nodes).unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn cycle_is_named() {
        let nodes = [
            n("t.a", "a", &["t.b"]),
            n("t.b", "b", &["t.c"]),
            n("t.c", "c", &["t.a"]),
        ];
        let err = order(&nodes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin dependency cycle: t.a.a -> t.b.b -> t.c.c -> t.a.a"
        );
    }

    #[test]
    fn missing_types_only_order() {
        let nodes = [n("x", "1", &["nobody"])];
        assert_eq!(order(&nodes).unwrap(), vec![0]);
    }
}
