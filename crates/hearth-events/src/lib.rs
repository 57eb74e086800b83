//! Hearth's events (product.md C5): topics, and the index that finds who listens to one.
//!
//! This first slice is the topic language and its matcher, NATS's rules exactly so that a
//! topic maps one to one onto a JetStream subject when the bus scales out:
//!
//! - [`Topic`]: what is published to, `.`-separated tokens (`agent.task.done`), none empty,
//!   no wildcards, no whitespace.
//! - [`Pattern`]: what is subscribed to; a token may be `*` (exactly one token) and the last
//!   may be `>` (one or more tokens).
//! - [`Sublist`]: patterns and their subscribers in a trie of tokens, so finding the
//!   subscribers of a topic walks the topic's tokens (with the `*` and `>` branches), never a
//!   scan of every subscription.
//! - [`TopicRules`]: per-pattern settings (a JSON Schema checked on publish, retention,
//!   durability); a topic takes those of its most specific matching pattern.
//! - [`EventLog`]: the durable log in its own SQLite file, one gapless sequence per tenant,
//!   appends acknowledged after a group commit's fsync, idempotency keys within a window.
//! - [`Events`]: the service: publish (checked against the topic's rules, durable, then live
//!   in sequence order), subscribe, and follow from a sequence (replay, then live, no gap).
//! - Durable consumers ([`ConsumerConfig`]): stored positions with a filter, fetched in
//!   batches, acknowledged, redelivered after a backoff (timeouts and `nak` alike) and
//!   dead-lettered after `max_deliver` deliveries.
//! - [`Bus`]: live fan-out over a sublist, each subscription a bounded queue; a subscriber a
//!   whole queue behind is closed as a slow consumer, never buffered without bound.
//!
//! Knows nothing of HTTP or the main store; the log keeps tenants' streams apart, and the bus
//! and sublist leave that to the caller (one per tenant, or a tenant prefix token).
//!
//! ```
//! use hearth_events::{Pattern, Sublist, Topic};
//!
//! let mut subscriptions = Sublist::new();
//! subscriptions.insert(&Pattern::parse("agent.*.done")?, "done-watcher");
//! subscriptions.insert(&Pattern::parse("agent.>")?, "auditor");
//! let topic = Topic::parse("agent.task.done")?;
//! let mut found = subscriptions.matches(&topic);
//! found.sort();
//! assert_eq!(found, ["auditor", "done-watcher"]);
//! # Ok::<(), hearth_events::TopicError>(())
//! ```

mod bus;
mod consumers;
mod log;
mod rules;
mod service;
mod sublist;
mod topic;
mod topics;

pub use bus::{Bus, CloseReason, Published, Subscription};
pub use consumers::{
    ConsumerConfig, ConsumerInfo, DEAD_LETTER_TICK, DeliverPolicy, Delivery, MAX_FETCH_BATCH,
    MAX_FETCH_WAIT, is_system_consumer,
};
pub use log::{
    Appended, CommitHook, CommitStats, EVENTS_FILE, EventLog, GROUP_MAX, IDEMPOTENCY_WINDOW,
    LogError, NewEvent, StoredEvent,
};
pub use rules::{EventSchema, Retention, SchemaError, TopicRules, TopicSettings, Violation};
pub use service::{Events, EventsError, EventsOptions, Follow, Publish};
pub use sublist::Sublist;
pub use topic::{MAX_TOPIC_BYTES, Pattern, Topic, TopicError};
pub use topics::TopicConfig;
