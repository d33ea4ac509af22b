//! The events the driver publishes itself, waiting for the host to take them
//! ([`Runtime::next_events`](rcontainerd_plugin_api::runtime::Runtime::next_events)).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use prost::Message;
use rcontainerd_api::events::{TaskDelete, TaskExit};
use rcontainerd_plugin_api::runtime::{AnyValue, Exit, RuntimeEvent};

use crate::time::timestamp;

/// Beyond this many untaken events the oldest are dropped (a host that stopped taking them).
const LIMIT: usize = 4096;

#[derive(Default)]
pub struct EventQueue {
    events: Mutex<VecDeque<RuntimeEvent>>,
    ready: Condvar,
}

impl EventQueue {
    pub fn push(&self, event: RuntimeEvent) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() >= LIMIT {
            events.pop_front();
        }
        events.push_back(event);
        self.ready.notify_all();
    }

    /// What containerd publishes for a task whose shim died: its exit, then its deletion.
    pub fn push_dead_task(&self, namespace: &str, id: &str, exit: Exit) {
        let exit_event = TaskExit {
            container_id: id.to_string(),
            id: id.to_string(),
            pid: exit.pid,
            exit_status: exit.exit_status,
            exited_at: Some(timestamp(exit.exited_at)),
        };
        let delete_event = TaskDelete {
            container_id: id.to_string(),
            pid: exit.pid,
            exit_status: exit.exit_status,
            exited_at: Some(timestamp(exit.exited_at)),
            ..Default::default()
        };
        for (topic, type_url, value) in [
            (
                "/tasks/exit",
                "containerd.events.TaskExit",
                exit_event.encode_to_vec(),
            ),
            (
                "/tasks/delete",
                "containerd.events.TaskDelete",
                delete_event.encode_to_vec(),
            ),
        ] {
            self.push(RuntimeEvent {
                namespace: namespace.to_string(),
                topic: topic.to_string(),
                event: AnyValue {
                    type_url: type_url.to_string(),
                    value,
                },
            });
        }
    }

    /// Everything queued, waiting up to `timeout` for the first.
    pub fn take(&self, timeout: Duration) -> Vec<RuntimeEvent> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut events, _) = self
            .ready
            .wait_timeout_while(events, timeout, |e| e.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        events.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_task_is_an_exit_then_a_delete_and_take_waits_no_longer_than_asked() {
        let q = EventQueue::default();
        let started = std::time::Instant::now();
        assert!(q.take(Duration::from_millis(20)).is_empty());
        assert!(started.elapsed() >= Duration::from_millis(20));
        q.push_dead_task(
            "ns",
            "c1",
            Exit {
                pid: 4,
                exit_status: 137,
                exited_at: 1_500_000_000,
            },
        );
        let events = q.take(Duration::from_secs(5));
        let topics: Vec<_> = events.iter().map(|e| e.topic.as_str()).collect();
        assert_eq!(topics, ["/tasks/exit", "/tasks/delete"]);
        let exit = TaskExit::decode(events[0].event.value.as_slice()).unwrap();
        assert_eq!((exit.pid, exit.exit_status), (4, 137));
        assert_eq!(exit.exited_at.unwrap().nanos, 500_000_000);
        assert_eq!(events[0].event.type_url, "containerd.events.TaskExit");
    }
}
