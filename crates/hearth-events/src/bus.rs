//! The in-process bus: live fan-out of published messages to the subscriptions whose patterns
//! match, each through a bounded queue. A subscriber that falls a whole queue behind is
//! disconnected with [`CloseReason::SlowConsumer`] rather than buffered without bound, so a
//! burst never grows memory past the queues' capacity; the subscriber resumes from the durable
//! log by sequence, where one exists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};

use tokio::sync::mpsc;

use crate::{Pattern, Sublist, Topic};

/// Why a subscription stopped receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its queue was full when a message came: it fell too far behind.
    SlowConsumer,
    /// The bus is gone.
    BusClosed,
    /// Replaying the durable log failed (a follow's read).
    ReplayFailed,
}

impl CloseReason {
    pub fn describe(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => {
                "slow consumer: the subscription fell a whole queue behind and was closed; \
                 resume from the last sequence you received"
            }
            CloseReason::BusClosed => "the server is shutting down",
            CloseReason::ReplayFailed => {
                "reading the event log failed; reconnect with the last sequence you received"
            }
        }
    }
}

/// What one publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Published {
    /// Subscriptions the message was queued for.
    pub delivered: usize,
    /// Subscriptions closed because their queue was full.
    pub closed_slow: usize,
}

struct Subscriber<M> {
    patterns: Vec<Pattern>,
    sender: mpsc::Sender<M>,
    closed: Arc<OnceLock<CloseReason>>,
}

struct State<M> {
    index: Sublist<u64>,
    subscribers: HashMap<u64, Subscriber<M>>,
}

struct Shared<M> {
    state: RwLock<State<M>>,
    next_id: AtomicU64,
}

/// Publishes messages (`M`: cheap to clone, e.g. an `Arc` of an event) to live subscriptions.
pub struct Bus<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Clone for Bus<M> {
    fn clone(&self) -> Bus<M> {
        Bus {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M> std::fmt::Debug for Bus<M> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Bus").finish_non_exhaustive()
    }
}

impl<M: Clone> Default for Bus<M> {
    fn default() -> Bus<M> {
        Bus::new()
    }
}

/// A live subscription: messages in publish order until it is dropped (which unsubscribes)
/// or closed by the bus.
pub struct Subscription<M> {
    id: u64,
    patterns: Vec<Pattern>,
    receiver: mpsc::Receiver<M>,
    closed: Arc<OnceLock<CloseReason>>,
    bus: Weak<Shared<M>>,
}

impl<M> std::fmt::Debug for Subscription<M> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Subscription")
            .field("id", &self.id)
            .field("patterns", &self.patterns)
            .finish_non_exhaustive()
    }
}

impl<M> Subscription<M> {
    /// What it subscribed to: a message matching any of them arrives once.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// The next message; `Err` with the reason once the subscription is closed and its queue
    /// drained.
    pub async fn next(&mut self) -> Result<M, CloseReason> {
        match self.receiver.recv().await {
            Some(message) => Ok(message),
            None => Err(self.closed.get().copied().unwrap_or(CloseReason::BusClosed)),
        }
    }

    /// A message already queued, without waiting.
    pub fn try_next(&mut self) -> Option<M> {
        self.receiver.try_recv().ok()
    }

    /// Why it was closed, if it was.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed.get().copied()
    }
}

impl<M> Drop for Subscription<M> {
    fn drop(&mut self) {
        if let Some(shared) = self.bus.upgrade() {
            let mut state = shared
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.subscribers.remove(&self.id).is_some() {
                for pattern in &self.patterns {
                    state.index.remove(pattern, &self.id);
                }
            }
        }
    }
}

impl<M: Clone> Bus<M> {
    pub fn new() -> Bus<M> {
        Bus {
            shared: Arc::new(Shared {
                state: RwLock::new(State {
                    index: Sublist::new(),
                    subscribers: HashMap::new(),
                }),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Subscribes to `pattern` with a queue of `capacity` messages (at least 1).
    pub fn subscribe(&self, pattern: Pattern, capacity: usize) -> Subscription<M> {
        self.subscribe_any(vec![pattern], capacity)
    }

    /// Subscribes to every one of `patterns` through one queue: a message matching several
    /// arrives once, and messages keep their publish order.
    pub fn subscribe_any(&self, patterns: Vec<Pattern>, capacity: usize) -> Subscription<M> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let closed = Arc::new(OnceLock::new());
        let mut state = self.write();
        for pattern in &patterns {
            state.index.insert(pattern, id);
        }
        state.subscribers.insert(
            id,
            Subscriber {
                patterns: patterns.clone(),
                sender,
                closed: Arc::clone(&closed),
            },
        );
        Subscription {
            id,
            patterns,
            receiver,
            closed,
            bus: Arc::downgrade(&self.shared),
        }
    }

    /// How many subscriptions are live.
    pub fn subscriptions(&self) -> usize {
        self.read().subscribers.len()
    }

    /// Queues `message` for every subscription whose pattern matches `topic`. Never waits: a
    /// full queue closes that subscription (slow consumer).
    pub fn publish(&self, topic: &Topic, message: M) -> Published {
        let mut published = Published::default();
        let mut slow = Vec::new();
        {
            let state = self.read();
            let mut ids = state.index.matches(topic);
            // A subscription under several matching patterns gets the message once.
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                let Some(subscriber) = state.subscribers.get(&id) else {
                    continue;
                };
                match subscriber.sender.try_send(message.clone()) {
                    Ok(()) => published.delivered += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => slow.push(id),
                    // Its receiver is gone; its drop removes it.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        if !slow.is_empty() {
            let mut state = self.write();
            for id in slow {
                if let Some(subscriber) = state.subscribers.remove(&id) {
                    let _ = subscriber.closed.set(CloseReason::SlowConsumer);
                    for pattern in &subscriber.patterns {
                        state.index.remove(pattern, &id);
                    }
                    published.closed_slow += 1;
                }
            }
        }
        published
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State<M>> {
        self.shared
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State<M>> {
        self.shared
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    #[tokio::test]
    async fn messages_reach_the_matching_subscriptions_in_order() {
        let bus = Bus::new();
        let mut done = bus.subscribe(pattern("agent.*.done"), 8);
        let mut everything = bus.subscribe(pattern(">"), 8);
        assert_eq!(
            bus.publish(&topic("agent.task.done"), 1),
            Published {
                delivered: 2,
                closed_slow: 0
            }
        );
        assert_eq!(bus.publish(&topic("emotion.joy"), 2).delivered, 1);
        assert_eq!(bus.publish(&topic("agent.job.done"), 3).delivered, 2);
        assert_eq!(done.next().await, Ok(1));
        assert_eq!(done.next().await, Ok(3));
        assert_eq!(done.try_next(), None);
        for expected in [1, 2, 3] {
            assert_eq!(everything.next().await, Ok(expected));
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_closed_with_a_reason_and_the_others_go_on() {
        let bus = Bus::new();
        let mut slow = bus.subscribe(pattern("a.>"), 2);
        let mut fast = bus.subscribe(pattern("a.>"), 100);
        for message in 0..5 {
            let published = bus.publish(&topic("a.b"), message);
            assert_eq!(published.closed_slow, usize::from(message == 2));
            assert_eq!(fast.next().await, Ok(message));
        }
        assert_eq!(bus.subscriptions(), 1);
        // What was queued before the close still arrives, then the reason.
        assert_eq!(slow.next().await, Ok(0));
        assert_eq!(slow.next().await, Ok(1));
        assert_eq!(slow.next().await, Err(CloseReason::SlowConsumer));
        assert!(CloseReason::SlowConsumer.describe().contains("resume"));
    }

    #[tokio::test]
    async fn a_subscription_to_several_patterns_gets_each_message_once() {
        let bus = Bus::new();
        let mut both = bus.subscribe_any(vec![pattern("a.*"), pattern("a.>"), pattern("b")], 8);
        assert_eq!(bus.publish(&topic("a.x"), 1).delivered, 1);
        assert_eq!(bus.publish(&topic("b"), 2).delivered, 1);
        assert_eq!(bus.publish(&topic("a.x.y"), 3).delivered, 1);
        assert_eq!(bus.publish(&topic("c"), 4).delivered, 0);
        for expected in [1, 2, 3] {
            assert_eq!(both.next().await, Ok(expected));
        }
        assert_eq!(both.try_next(), None);
        drop(both);
        assert_eq!(bus.subscriptions(), 0);
        assert_eq!(bus.publish(&topic("a.x"), 5), Published::default());
    }

    #[tokio::test]
    async fn dropping_a_subscription_unsubscribes_it() {
        let bus: Bus<u32> = Bus::new();
        let kept = bus.subscribe(pattern("x"), 4);
        drop(bus.subscribe(pattern("x"), 4));
        assert_eq!(bus.subscriptions(), 1);
        assert_eq!(bus.publish(&topic("x"), 7).delivered, 1);
        drop(kept);
        assert_eq!(bus.subscriptions(), 0);
        assert_eq!(bus.publish(&topic("x"), 8), Published::default());
    }

    #[tokio::test]
    async fn a_subscription_outliving_its_bus_ends_with_bus_closed() {
        let bus: Bus<u32> = Bus::new();
        let mut subscription = bus.subscribe(pattern("x"), 4);
        bus.publish(&topic("x"), 1);
        drop(bus);
        assert_eq!(subscription.next().await, Ok(1));
        assert_eq!(subscription.next().await, Err(CloseReason::BusClosed));
    }
}
