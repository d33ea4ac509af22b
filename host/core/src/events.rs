//! The event exchange (`io.containerd.event.v1.exchange`): services publish
//! an envelope after each successful mutation, clients publish and forward
//! their own through the Events service, and every subscriber gets the
//! envelopes its filters select, all subscribers in the same order.
//!
//! **Publishing never waits for a subscriber.** Each subscriber has a
//! bounded buffer ([`SUBSCRIBER_BUFFER`] envelopes). A publish that finds a
//! subscriber's buffer full cuts that subscriber off: it receives nothing
//! more, its stream yields what is already buffered and then ends with
//! [`Lagged`], which counts the envelopes it missed. So a client sees either
//! every event or an explicit end, never a silent gap; publishers and the
//! other subscribers go on unaffected. (containerd queues without bound
//! instead, so one stuck subscriber grows the daemon's memory without end.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost_types::Any;
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_pkg::filters::{Fields, Filter};
use rcontainerd_pkg::identifiers;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::ids::EVENT_TYPE;
use crate::registry::{InitContext, InitError, Instance, Registration};

/// Envelopes buffered per subscriber before it counts as fallen behind.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// One event as the exchange carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub timestamp: SystemTime,
    pub namespace: String,
    pub topic: String,
    /// `None` only when a client published or forwarded no event at all.
    pub event: Option<Any>,
}

/// Resolves the field path after `event.` in a decoded event (the exchange
/// knows no message types; the gRPC edge does).
pub type EventFields = fn(&Any, &[String]) -> Option<String>;

/// What a subscriber's stream ends with when its buffer overflowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "events: subscriber fell behind, {dropped} events dropped \
     (more than {buffer} events were waiting for it)"
)]
pub struct Lagged {
    /// Envelopes the subscriber's filters selected but it never got, up to
    /// the moment its stream ended.
    pub dropped: u64,
    pub buffer: usize,
}

/// Go's zero `time.Time` (January 1, year 1, UTC): what containerd reads a
/// missing envelope timestamp as, and refuses on Forward.
pub fn go_zero_time() -> SystemTime {
    UNIX_EPOCH - Duration::from_secs(62_135_596_800)
}

/// Checks a topic as containerd's exchange does: `/` then one or more
/// `/`-separated components, each a valid identifier.
pub fn validate_topic(topic: &str) -> Result<()> {
    let problem = if topic.is_empty() {
        Some(Error::invalid_argument("must not be empty"))
    } else if !topic.starts_with('/') {
        Some(Error::invalid_argument("must start with '/'"))
    } else if topic.len() == 1 {
        Some(Error::invalid_argument("must have at least one component"))
    } else {
        topic[1..].split('/').find_map(|component| {
            identifiers::validate(component)
                .err()
                .map(|e| e.context(format!("failed validation on component {component:?}")))
        })
    };
    match problem {
        Some(e) => Err(e.context(format!("envelope topic {topic:?}"))),
        None => Ok(()),
    }
}

/// The fields a subscription filter sees: `namespace`, `topic` and, with an
/// [`EventFields`], `event.<path>` (containerd does not filter on the
/// timestamp either).
struct EnvelopeFields<'a> {
    envelope: &'a Envelope,
    event_fields: Option<EventFields>,
}

impl Fields for EnvelopeFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        match path.first().map(String::as_str)? {
            "namespace" => nonempty(&self.envelope.namespace),
            "topic" => nonempty(&self.envelope.topic),
            "event" => (self.event_fields?)(self.envelope.event.as_ref()?, &path[1..]),
            _ => None,
        }
    }
}

/// One subscriber as the exchange holds it.
struct Subscriber {
    id: u64,
    filter: Filter,
    event_fields: Option<EventFields>,
    /// `None` once the subscriber fell behind: nothing more is sent, and
    /// dropping the only sender ends its stream after the buffered events.
    sender: Option<mpsc::Sender<Arc<Envelope>>>,
    dropped: Arc<AtomicU64>,
}

impl Subscriber {
    /// Offers `envelope` without waiting; false when the subscriber is gone.
    fn offer(&mut self, envelope: &Arc<Envelope>, buffer: usize) -> bool {
        let fields = EnvelopeFields {
            envelope,
            event_fields: self.event_fields,
        };
        if !self.filter.matches(&fields) {
            return true;
        }
        let Some(sender) = &self.sender else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        match sender.try_send(envelope.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    subscriber = self.id,
                    buffer,
                    topic = %envelope.topic,
                    "event subscriber fell behind; ending its stream"
                );
                self.sender = None;
                self.dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

#[derive(Default)]
struct Subscribers {
    next_id: u64,
    list: Vec<Subscriber>,
}

/// Broadcasts envelopes to subscribers; see the module documentation.
pub struct Exchange {
    buffer: usize,
    /// Held for a whole fan-out, which only enqueues: so every subscriber
    /// sees concurrent publishes in one order, and a publish waits at most
    /// for other fan-outs, never for a subscriber.
    subscribers: Mutex<Subscribers>,
}

impl Default for Exchange {
    fn default() -> Self {
        Self::new()
    }
}

impl Exchange {
    pub fn new() -> Self {
        Self::with_buffer(SUBSCRIBER_BUFFER)
    }

    /// An exchange whose subscribers each buffer `buffer` envelopes.
    pub fn with_buffer(buffer: usize) -> Self {
        Exchange {
            buffer: buffer.max(1),
            subscribers: Mutex::new(Subscribers::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Subscribers> {
        // A panic elsewhere cannot leave the list half-changed.
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `event` on `topic` in `namespace`, stamped now (containerd's
    /// Publish: the namespace is the caller's).
    pub fn publish(&self, namespace: &str, topic: &str, event: Option<Any>) -> Result<()> {
        let checked = if namespace.is_empty() {
            Err(Error::failed_precondition("namespace is required"))
        } else {
            identifiers::validate(namespace).map_err(|e| e.context("namespace validation"))
        };
        checked.map_err(|e| e.context("failed publishing event"))?;
        validate_topic(topic)?;
        self.dispatch(|| Envelope {
            timestamp: SystemTime::now(),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event,
        });
        tracing::debug!(topic, ns = namespace, "event published");
        Ok(())
    }

    /// Distributes an envelope stamped elsewhere (containerd's Forward: on
    /// behalf of another publisher or namespace).
    pub fn forward(&self, envelope: Envelope) -> Result<()> {
        identifiers::validate(&envelope.namespace)
            .map_err(|e| e.context("event envelope has invalid namespace"))?;
        validate_topic(&envelope.topic)?;
        if envelope.timestamp == go_zero_time() {
            return Err(Error::invalid_argument(
                "timestamp must be set on forwarded event",
            ));
        }
        tracing::debug!(topic = %envelope.topic, ns = %envelope.namespace, "event forwarded");
        self.dispatch(|| envelope);
        Ok(())
    }

    fn dispatch(&self, build: impl FnOnce() -> Envelope) {
        let mut subscribers = self.lock();
        // Built under the lock, so timestamps follow delivery order.
        let envelope = Arc::new(build());
        let buffer = self.buffer;
        subscribers
            .list
            .retain_mut(|subscriber| subscriber.offer(&envelope, buffer));
    }

    /// Subscribes to the envelopes `filter` selects (an empty filter selects
    /// all), from now on. `event_fields` resolves `event.*` paths; without it
    /// they are absent. Dropping the subscription unsubscribes.
    pub fn subscribe(
        self: &Arc<Self>,
        filter: Filter,
        event_fields: Option<EventFields>,
    ) -> Subscription {
        let (sender, receiver) = mpsc::channel(self.buffer);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut subscribers = self.lock();
        let id = subscribers.next_id;
        subscribers.next_id += 1;
        subscribers.list.push(Subscriber {
            id,
            filter,
            event_fields,
            sender: Some(sender),
            dropped: dropped.clone(),
        });
        Subscription {
            exchange: self.clone(),
            id,
            receiver,
            dropped,
            ended: false,
        }
    }

    /// How many subscribers are registered.
    pub fn subscribers(&self) -> usize {
        self.lock().list.len()
    }

    fn unsubscribe(&self, id: u64) {
        self.lock().list.retain(|s| s.id != id);
    }
}

/// A subscriber's end: the envelopes in publish order, then — only if it
/// fell behind — one [`Lagged`].
pub struct Subscription {
    exchange: Arc<Exchange>,
    id: u64,
    receiver: mpsc::Receiver<Arc<Envelope>>,
    dropped: Arc<AtomicU64>,
    ended: bool,
}

impl Subscription {
    /// The next envelope; `Err` once, when the subscriber fell behind; then
    /// `None`.
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Arc<Envelope>, Lagged>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.receiver.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(envelope)) => Poll::Ready(Some(Ok(envelope))),
            // The only sender is gone: cut off for falling behind.
            Poll::Ready(None) => {
                self.ended = true;
                self.exchange.unsubscribe(self.id);
                let dropped = self.dropped.load(Ordering::Relaxed);
                Poll::Ready((dropped > 0).then_some(Err(Lagged {
                    dropped,
                    buffer: self.exchange.buffer,
                })))
            }
        }
    }

    /// [`Self::poll_next`] as a future.
    pub async fn next(&mut self) -> Option<Result<Arc<Envelope>, Lagged>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.ended {
            self.exchange.unsubscribe(self.id);
        }
    }
}

/// `io.containerd.event.v1.exchange`: provides the daemon's one
/// `Arc<Exchange>`.
pub fn registration() -> Registration {
    Registration::builtin(EVENT_TYPE, "exchange", &[], init)
}

fn init(_: &InitContext<'_>) -> Result<Instance, InitError> {
    Ok(Instance::of(Arc::new(Exchange::new())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn any(type_url: &str, value: &[u8]) -> Option<Any> {
        Some(Any {
            type_url: type_url.into(),
            value: value.to_vec(),
        })
    }

    fn filter(filters: &[&str]) -> Filter {
        Filter::parse_all(filters).unwrap()
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// Everything buffered for `subscription`, and how it ended if it did.
    fn drain(subscription: &mut Subscription) -> (Vec<String>, Option<Option<Lagged>>) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut topics = Vec::new();
        loop {
            match subscription.poll_next(&mut cx) {
                Poll::Pending => return (topics, None),
                Poll::Ready(Some(Ok(envelope))) => topics.push(envelope.topic.clone()),
                Poll::Ready(Some(Err(lagged))) => {
                    assert!(matches!(subscription.poll_next(&mut cx), Poll::Ready(None)));
                    return (topics, Some(Some(lagged)));
                }
                Poll::Ready(None) => return (topics, Some(None)),
            }
        }
    }

    fn topic_error(topic: &str) -> String {
        validate_topic(topic).unwrap_err().wire_message()
    }

    #[test]
    fn topics_are_validated_like_containerd() {
        for good in [
            "/a",
            "/namespaces/create",
            "/tasks/exec-added",
            "/a.b/c_d/e-f/1",
        ] {
            validate_topic(good).unwrap_or_else(|e| panic!("{good}: {e:?}"));
        }
        assert_eq!(
            topic_error(""),
            "envelope topic \"\": must not be empty: invalid argument"
        );
        assert_eq!(
            topic_error("a/b"),
            "envelope topic \"a/b\": must start with '/': invalid argument"
        );
        assert_eq!(
            topic_error("/"),
            "envelope topic \"/\": must have at least one component: invalid argument"
        );
        assert_eq!(
            topic_error("/a//b"),
            "envelope topic \"/a//b\": failed validation on component \"\": \
             identifier must not be empty: invalid argument"
        );
        assert_eq!(
            topic_error("/a/"),
            "envelope topic \"/a/\": failed validation on component \"\": \
             identifier must not be empty: invalid argument"
        );
        assert_eq!(
            topic_error("/a/b c"),
            "envelope topic \"/a/b c\": failed validation on component \"b c\": identifier \
             \"b c\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$: invalid argument"
        );
        assert!(validate_topic("x")
            .unwrap_err()
            .is(rcontainerd_pkg::errdefs::Kind::InvalidArgument));
    }

    #[test]
    fn publish_needs_a_namespace_and_a_valid_topic() {
        let exchange = Exchange::new();
        let e = exchange.publish("", "/a", None).unwrap_err();
        assert_eq!(
            e.wire_message(),
            "failed publishing event: namespace is required: failed precondition"
        );
        let e = exchange.publish("a b", "/a", None).unwrap_err();
        assert!(
            e.wire_message().starts_with(
                "failed publishing event: namespace validation: identifier \"a b\" must match"
            ),
            "{e:?}"
        );
        let e = exchange.publish("ns", "a", None).unwrap_err();
        assert_eq!(
            e.wire_message(),
            "envelope topic \"a\": must start with '/': invalid argument"
        );
        exchange.publish("ns", "/a", None).unwrap();
    }

    #[test]
    fn forward_checks_namespace_topic_and_timestamp() {
        let exchange = Arc::new(Exchange::new());
        let mut subscription = exchange.subscribe(Filter::default(), None);
        let envelope = |namespace: &str, topic: &str, timestamp| Envelope {
            timestamp,
            namespace: namespace.into(),
            topic: topic.into(),
            event: any("x.Y", b""),
        };
        let now = SystemTime::now();
        let e = exchange.forward(envelope("", "/a", now)).unwrap_err();
        assert_eq!(
            e.wire_message(),
            "event envelope has invalid namespace: identifier must not be empty: invalid argument"
        );
        let e = exchange.forward(envelope("ns", "/", now)).unwrap_err();
        assert_eq!(
            e.wire_message(),
            "envelope topic \"/\": must have at least one component: invalid argument"
        );
        let e = exchange
            .forward(envelope("ns", "/a", go_zero_time()))
            .unwrap_err();
        assert_eq!(
            e.wire_message(),
            "timestamp must be set on forwarded event: invalid argument"
        );
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        exchange.forward(envelope("other", "/a", at)).unwrap();
        let got = block_on(subscription.next()).unwrap().unwrap();
        // Forwarded as given: its own time and namespace.
        assert_eq!(*got, envelope("other", "/a", at));
    }

    #[test]
    fn published_envelopes_carry_time_namespace_topic_and_event() {
        let exchange = Arc::new(Exchange::new());
        let mut subscription = exchange.subscribe(Filter::default(), None);
        let before = SystemTime::now();
        exchange
            .publish(
                "ns",
                "/namespaces/create",
                any("containerd.events.NamespaceCreate", b"\n\x01a"),
            )
            .unwrap();
        let got = block_on(subscription.next()).unwrap().unwrap();
        assert!(got.timestamp >= before && got.timestamp <= SystemTime::now());
        assert_eq!(got.namespace, "ns");
        assert_eq!(got.topic, "/namespaces/create");
        assert_eq!(
            got.event,
            any("containerd.events.NamespaceCreate", b"\n\x01a")
        );
    }

    /// `event.name` for events whose payload is the name itself (a stand-in
    /// for the edge's decoder).
    fn name_field(event: &Any, path: &[String]) -> Option<String> {
        (path == ["name"]).then(|| String::from_utf8_lossy(&event.value).into_owned())
    }

    #[test]
    fn filters_select_on_topic_namespace_and_event_fields() {
        let exchange = Arc::new(Exchange::new());
        let mut by_topic = exchange.subscribe(filter(&[r#"topic=="/b""#]), None);
        let mut by_prefix = exchange.subscribe(filter(&["topic~=^/images/"]), None);
        let mut by_ns_or_topic =
            exchange.subscribe(filter(&["namespace==one", r#"topic=="/c""#]), None);
        let mut by_event = exchange.subscribe(filter(&["event.name==web"]), Some(name_field));
        let mut without_decoder = exchange.subscribe(filter(&["event.name==web"]), None);
        let mut both = exchange.subscribe(filter(&[r#"namespace==two,topic=="/a""#]), None);
        let mut all = exchange.subscribe(filter(&[]), None);

        exchange.publish("one", "/a", any("t", b"web")).unwrap();
        exchange.publish("two", "/b", any("t", b"db")).unwrap();
        exchange.publish("two", "/c", None).unwrap();
        exchange.publish("two", "/a", any("t", b"web")).unwrap();
        exchange.publish("two", "/images/create", None).unwrap();

        let topics = |s: &mut Subscription| drain(s).0;
        assert_eq!(topics(&mut by_topic), ["/b"]);
        assert_eq!(topics(&mut by_prefix), ["/images/create"]);
        assert_eq!(topics(&mut by_ns_or_topic), ["/a", "/c"]);
        assert_eq!(topics(&mut by_event), ["/a", "/a"]);
        assert!(topics(&mut without_decoder).is_empty());
        assert_eq!(topics(&mut both), ["/a"]);
        assert_eq!(topics(&mut all), ["/a", "/b", "/c", "/a", "/images/create"]);
    }

    #[test]
    fn a_slow_subscriber_is_cut_off_after_its_buffer_and_told_how_many_it_missed() {
        let exchange = Arc::new(Exchange::with_buffer(4));
        let mut slow = exchange.subscribe(Filter::default(), None);
        let mut fast = exchange.subscribe(Filter::default(), None);
        let mut unrelated = exchange.subscribe(filter(&[r#"topic=="/other""#]), None);
        let mut fast_got = Vec::new();
        for i in 0..10 {
            exchange.publish("ns", &format!("/e{i}"), None).unwrap();
            // The fast subscriber keeps up; the slow one never reads.
            fast_got.extend(drain(&mut fast).0);
        }
        exchange.publish("ns", "/other", None).unwrap();
        let expected: Vec<String> = (0..10).map(|i| format!("/e{i}")).collect();
        assert_eq!(fast_got, expected);

        // The slow one gets what fitted, in order, then the count of the rest.
        let (topics, end) = drain(&mut slow);
        assert_eq!(topics, ["/e0", "/e1", "/e2", "/e3"]);
        let lagged = end.unwrap().unwrap();
        assert_eq!(
            lagged,
            Lagged {
                dropped: 7,
                buffer: 4
            }
        );
        assert_eq!(
            lagged.to_string(),
            "events: subscriber fell behind, 7 events dropped \
             (more than 4 events were waiting for it)"
        );
        // Ended for good, and unsubscribed; the others are still served.
        assert_eq!(exchange.subscribers(), 2);
        exchange.publish("ns", "/other", None).unwrap();
        assert_eq!(drain(&mut fast).0, ["/other", "/other"]);
        assert_eq!(drain(&mut unrelated).0, ["/other", "/other"]);
        assert_eq!(drain(&mut slow), (vec![], Some(None)));
    }

    #[test]
    fn only_selected_events_count_against_a_buffer() {
        let exchange = Arc::new(Exchange::with_buffer(2));
        let mut rare = exchange.subscribe(filter(&[r#"topic=="/rare""#]), None);
        for _ in 0..100 {
            exchange.publish("ns", "/common", None).unwrap();
        }
        exchange.publish("ns", "/rare", None).unwrap();
        assert_eq!(drain(&mut rare), (vec!["/rare".to_string()], None));
    }

    #[test]
    fn publishers_never_wait_for_subscribers() {
        let exchange = Arc::new(Exchange::new());
        // Subscribers that never read, from several threads' publishes.
        let _stalled: Vec<Subscription> = (0..8)
            .map(|_| exchange.subscribe(Filter::default(), None))
            .collect();
        let (done, finished) = std::sync::mpsc::channel();
        let publishers: Vec<_> = (0..4)
            .map(|t| {
                let exchange = exchange.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    for i in 0..20 * SUBSCRIBER_BUFFER {
                        exchange
                            .publish("ns", "/tick", any("t", format!("{t}/{i}").as_bytes()))
                            .unwrap();
                    }
                    done.send(()).unwrap();
                })
            })
            .collect();
        let start = Instant::now();
        for _ in 0..4 {
            finished
                .recv_timeout(Duration::from_secs(60))
                .expect("a publisher blocked on a full subscriber");
        }
        for p in publishers {
            p.join().unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn every_subscriber_sees_concurrent_publishes_in_one_order() {
        let exchange = Arc::new(Exchange::with_buffer(10_000));
        let mut first = exchange.subscribe(Filter::default(), None);
        let mut second = exchange.subscribe(Filter::default(), None);
        let publishers: Vec<_> = (0..4)
            .map(|t| {
                let exchange = exchange.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        exchange
                            .publish("ns", &format!("/p{t}/e{i}"), None)
                            .unwrap();
                    }
                })
            })
            .collect();
        for p in publishers {
            p.join().unwrap();
        }
        let (a, _) = drain(&mut first);
        let (b, _) = drain(&mut second);
        assert_eq!(a.len(), 4000);
        assert_eq!(a, b);
    }

    #[test]
    fn dropping_a_subscription_unsubscribes() {
        let exchange = Arc::new(Exchange::new());
        let subscription = exchange.subscribe(Filter::default(), None);
        let _kept = exchange.subscribe(Filter::default(), None);
        assert_eq!(exchange.subscribers(), 2);
        drop(subscription);
        assert_eq!(exchange.subscribers(), 1);
    }

    #[test]
    fn a_waiting_subscriber_wakes_on_publish() {
        let exchange = Arc::new(Exchange::new());
        let mut subscription = exchange.subscribe(Filter::default(), None);
        let publisher = exchange.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            publisher.publish("ns", "/late", None).unwrap();
        });
        let got = block_on(subscription.next()).unwrap().unwrap();
        assert_eq!(got.topic, "/late");
        thread.join().unwrap();
    }
}
