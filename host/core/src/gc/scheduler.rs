//! When collections run: containerd's scheduler, on a thread of its own.
//!
//! - The first collection runs `startup_delay` after start and is full
//!   (it also removes what a crash left on disk).
//! - Then, at each tick, a collection runs if anything was deleted since
//!   the last one, or if `mutation_threshold` writes were made; otherwise
//!   the tick is skipped.
//! - The interval between ticks keeps collections to `pause_threshold` of
//!   the time: the average collection time ÷ `pause_threshold`, less that
//!   average, and at least a second (see [`MIN_INTERVAL`]).
//! - `deletion_threshold` deletions (if not 0) trigger a collection
//!   `schedule_delay` later, without waiting for the tick; so does a caller
//!   that asks for one and waits for it (`Delete{sync}`).

use std::sync::{mpsc, Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use rcontainerd_pkg::errdefs::{Error, Result};

use super::collector::{Collector, Stats};

/// The scheduler's settings, with containerd's meaning and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub pause_threshold: f64,
    pub deletion_threshold: u64,
    pub mutation_threshold: u64,
    pub schedule_delay: Duration,
    pub startup_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pause_threshold: 0.02,
            deletion_threshold: 0,
            mutation_threshold: 100,
            schedule_delay: Duration::ZERO,
            startup_delay: Duration::from_millis(100),
        }
    }
}

/// How often the thread looks at the deletion count when a deletion
/// threshold is set (it is not told of each deletion).
const THRESHOLD_POLL: Duration = Duration::from_millis(20);

/// Interval before the first collection has been timed.
const FIRST_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest interval between scheduled collections. Ours take well
/// under a millisecond on a small store, and the pause-threshold formula
/// would then collect a few milliseconds after every deletion; containerd's
/// take long enough that its ticks come about a second apart, and clients
/// written against it (an ingest whose blob is labelled just after its
/// lease went) rely on that grace. Thresholds and `sync` are not delayed.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

type Waiter = mpsc::Sender<Result<Stats>>;

#[derive(Default)]
struct State {
    /// Callers waiting for the next collection to finish.
    waiters: Vec<Waiter>,
    /// Asked for by a caller: run after `schedule_delay`.
    requested: bool,
    /// The scheduler was dropped: the thread ends.
    stopping: bool,
}

struct Inner {
    collector: Arc<Collector>,
    state: Mutex<State>,
    wake: Condvar,
}

/// Runs collections on its thread; dropping the scheduler ends the thread and waits for it
/// (a collection under way finishes first). The thread holds the metadata store while it runs:
/// left behind at the daemon's exit, it kept RocksDB open, whose background threads then met
/// the process's exit half-way (aborts: "pthread lock: Invalid argument").
pub struct Scheduler {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scheduler {
    pub fn start(collector: Arc<Collector>, settings: Settings) -> Scheduler {
        let inner = Arc::new(Inner {
            collector,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new()
            .name("gc-scheduler".into())
            .spawn(move || run(weak, settings));
        let thread = spawned
            .inspect_err(|e| {
                tracing::error!(error = %e, "gc: cannot start the scheduler thread; no collections will run")
            })
            .ok();
        Scheduler { inner, thread }
    }

    pub fn collector(&self) -> &Arc<Collector> {
        &self.inner.collector
    }

    /// Asks for a collection and waits until one that started after this
    /// call has finished (blocking: call it off the async executor).
    pub fn collect_and_wait(&self) -> Result<Stats> {
        let (tx, rx) = mpsc::channel();
        {
            let mut state = self.inner.lock();
            state.waiters.push(tx);
            state.requested = true;
        }
        self.inner.wake.notify_all();
        rx.recv()
            .map_err(|_| Error::unavailable("gc: the scheduler stopped"))?
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.inner.lock().stopping = true;
        self.inner.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn run(weak: Weak<Inner>, settings: Settings) {
    let mut next = Instant::now() + settings.startup_delay;
    let mut interval = FIRST_INTERVAL;
    let mut first = true;
    let mut total_time = Duration::ZERO;
    let mut collections: u32 = 0;
    let mut seen = match weak.upgrade() {
        Some(inner) => inner.collector.metadata().activity(),
        None => return,
    };
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        // Wait for the tick, a request, or (with a deletion threshold) enough deletions.
        let waiters = {
            let mut state = inner.lock();
            loop {
                if state.stopping {
                    return;
                }
                let now = Instant::now();
                let (mutations, deletions) = inner.collector.metadata().activity();
                let (new_mutations, new_deletions) = (mutations - seen.0, deletions - seen.1);
                let threshold_met =
                    settings.deletion_threshold > 0 && new_deletions >= settings.deletion_threshold;
                if state.requested || threshold_met {
                    state.requested = false;
                    drop(state);
                    std::thread::sleep(settings.schedule_delay);
                    break inner.lock().waiters.drain(..).collect::<Vec<_>>();
                }
                if now >= next {
                    let needed = first
                        || new_deletions > 0
                        || (settings.mutation_threshold > 0
                            && new_mutations >= settings.mutation_threshold);
                    if needed {
                        break state.waiters.drain(..).collect::<Vec<_>>();
                    }
                    next = now + interval;
                }
                let mut wait = next.saturating_duration_since(now);
                if settings.deletion_threshold > 0 {
                    wait = wait.min(THRESHOLD_POLL);
                }
                // Holding `inner` here keeps the scheduler alive; wake at
                // least once a second to notice it was dropped.
                wait = wait.min(Duration::from_secs(1));
                state = inner
                    .wake
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                if Arc::strong_count(&inner) == 1 {
                    return; // only this thread still holds it
                }
            }
        };
        seen = inner.collector.metadata().activity();
        let result = inner.collector.collect(first);
        first = false;
        match &result {
            Ok(stats) => {
                tracing::debug!(?stats, "garbage collected");
                total_time += stats.elapsed;
                collections += 1;
                if settings.pause_threshold > 0.0 {
                    let average = total_time.as_secs_f64() / f64::from(collections);
                    interval = Duration::from_secs_f64(
                        (average / settings.pause_threshold - average).max(0.0),
                    )
                    .max(MIN_INTERVAL);
                }
            }
            Err(e) => tracing::error!(error = %e, "garbage collection failed"),
        }
        next = Instant::now() + interval;
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}
