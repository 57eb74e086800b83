//! Rate limits, concurrency limits and token quotas, per key, tenant and client IP.
//!
//! - Requests per minute: GCRA (the generic cell rate algorithm). One number per holder, the
//!   theoretical arrival time; a full minute's worth may arrive at once, then they are spaced.
//! - Tokens per minute: a token bucket that refills continuously. A request is admitted while
//!   the bucket is not empty; its tokens are charged as they are produced, so a long answer
//!   can take the bucket below zero and the next request waits for the refill.
//! - Concurrent requests: a counter per holder, released by the [`Admission`] guard.
//! - Tokens per day and per month (UTC): counters that roll over with the calendar, seeded at
//!   start from the usage records.
//!
//! Every map is split into shards with a lock each, so requests of different holders never
//! wait for one another, and each decision is O(1). Idle entries are swept, so addresses that
//! come and go do not grow memory without bound.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::principal::{Limits, Principal};

const MINUTE_MS: f64 = 60_000.0;
const DAY_MS: i64 = 86_400_000;
const SHARDS: usize = 32;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    RequestsPerMinute,
    TokensPerMinute,
    ConcurrentRequests,
    TokensPerDay,
    TokensPerMonth,
    /// The monthly spending budget.
    Budget,
}

impl LimitKind {
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "requests per minute",
            LimitKind::TokensPerMinute => "tokens per minute",
            LimitKind::ConcurrentRequests => "concurrent requests",
            LimitKind::TokensPerDay => "tokens per day",
            LimitKind::TokensPerMonth => "tokens per month",
            LimitKind::Budget => "millionths of a US dollar per month (budget)",
        }
    }

    /// A stable code for clients to match on.
    pub fn code(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "rate_limit_requests",
            LimitKind::TokensPerMinute => "rate_limit_tokens",
            LimitKind::ConcurrentRequests => "rate_limit_concurrency",
            LimitKind::TokensPerDay | LimitKind::TokensPerMonth => "quota_exceeded",
            LimitKind::Budget => "budget_exceeded",
        }
    }
}

/// A refused request: which limit, whose, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    pub kind: LimitKind,
    /// `key`, `tenant` or `ip`.
    pub holder: &'static str,
    pub limit: u64,
    pub retry_after_ms: u64,
    /// The window state for the rate-limit headers.
    pub status: LimitStatus,
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "the {} limit of {} {} is reached; retry in {:.1} s",
            self.holder,
            self.limit,
            self.kind.describe(),
            self.retry_after_ms as f64 / 1000.0
        )
    }
}

/// One window as OpenAI's `x-ratelimit-*` headers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window is full again.
    pub reset_ms: u64,
}

/// The request and token windows of the most specific holder with such a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitStatus {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
}

/// Limits that apply when a key or tenant sets none, and those per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitDefaults {
    pub key: Limits,
    pub ip: Limits,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Key(String),
    Tenant(String),
    Ip(IpAddr),
}

impl Holder {
    fn name(&self) -> &'static str {
        match self {
            Holder::Key(_) => "key",
            Holder::Tenant(_) => "tenant",
            Holder::Ip(_) => "ip",
        }
    }
}

struct Sharded<T> {
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<Holder, T>>]>,
}

impl<T> Sharded<T> {
    fn new() -> Self {
        Sharded {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn with<R>(&self, holder: &Holder, action: impl FnOnce(&mut HashMap<Holder, T>) -> R) -> R {
        let shard = self.hasher.hash_one(holder) as usize % SHARDS;
        let mut map = self.shards[shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        action(&mut map)
    }

    fn retain(&self, mut keep: impl FnMut(&Holder, &mut T) -> bool) {
        for shard in self.shards.iter() {
            shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|holder, value| keep(holder, value));
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }
}

/// A token bucket's level at a time; refills at `capacity` per minute.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at_ms: i64,
    /// When it is full again, so a sweep can forget it.
    full_at_ms: i64,
}

impl Bucket {
    fn level_at(&self, capacity: u64, now_ms: i64) -> f64 {
        let refill = (now_ms - self.at_ms).max(0) as f64 * capacity as f64 / MINUTE_MS;
        (self.level + refill).min(capacity as f64)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Quota {
    day: i64,
    day_used: u64,
    month: i64,
    month_used: u64,
    /// Millionths of a US dollar spent this month.
    month_spent: u64,
}

impl Quota {
    fn roll(&mut self, now_ms: i64) {
        let (day, month) = (now_ms.div_euclid(DAY_MS), month_index(now_ms));
        if day != self.day {
            self.day = day;
            self.day_used = 0;
        }
        if month != self.month {
            self.month = month;
            self.month_used = 0;
            self.month_spent = 0;
        }
    }
}

/// Months since January 1970 (UTC), from the civil date of `ms`.
fn month_index(ms: i64) -> i64 {
    let (year, month) = civil_year_month(ms.div_euclid(DAY_MS));
    year * 12 + month - 1 - 1970 * 12
}

/// The Unix milliseconds at which the month after `ms`'s (UTC) begins.
fn next_month_start_ms(ms: i64) -> i64 {
    let (year, month) = civil_year_month(ms.div_euclid(DAY_MS));
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(year, month) * DAY_MS
}

/// The Unix milliseconds at which `ms`'s month (UTC) began.
fn month_start_ms(ms: i64) -> i64 {
    let (year, month) = civil_year_month(ms.div_euclid(DAY_MS));
    days_from_civil(year, month) * DAY_MS
}

/// (year, month 1..=12) of a day since the epoch, by `hearth-time`'s calendar.
fn civil_year_month(days: i64) -> (i64, i64) {
    let date = hearth_time::Utc::from_unix_millis(days * DAY_MS);
    (date.year, date.month)
}

/// Days since the epoch of the first day of `year`-`month`.
fn days_from_civil(year: i64, month: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The limits of every holder. Share it as `Arc<Limiter>`.
pub struct Limiter {
    defaults: RwLock<LimitDefaults>,
    /// GCRA theoretical arrival time per holder, in milliseconds.
    arrivals: Sharded<f64>,
    buckets: Sharded<Bucket>,
    concurrent: Sharded<Arc<AtomicU64>>,
    quotas: Sharded<Quota>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Limiter")
            .field("defaults", &self.defaults())
            .field("tracked", &self.tracked())
            .finish()
    }
}

/// An admitted request. Dropping it releases its concurrency slots; charge its tokens with
/// [`Limiter::charge`] as they are produced.
#[derive(Debug)]
pub struct Admission {
    pub status: LimitStatus,
    holders: Vec<(Holder, Limits)>,
    concurrency: Vec<Arc<AtomicU64>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        for counter in &self.concurrency {
            counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Limiter {
    pub fn new(defaults: LimitDefaults) -> Arc<Limiter> {
        Arc::new(Limiter {
            defaults: RwLock::new(defaults),
            arrivals: Sharded::new(),
            buckets: Sharded::new(),
            concurrent: Sharded::new(),
            quotas: Sharded::new(),
        })
    }

    pub fn defaults(&self) -> LimitDefaults {
        *self
            .defaults
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// New defaults (a config reload); they apply from the next request on.
    pub fn set_defaults(&self, defaults: LimitDefaults) {
        *self
            .defaults
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = defaults;
    }

    fn holders(&self, principal: Option<&Principal>, ip: Option<IpAddr>) -> Vec<(Holder, Limits)> {
        let defaults = self.defaults();
        let mut holders = Vec::with_capacity(3);
        if let Some(principal) = principal {
            holders.push((
                Holder::Key(principal.key_id.clone()),
                principal.key_limits.or(defaults.key),
            ));
            if let Some(tenant) = &principal.tenant_id {
                holders.push((Holder::Tenant(tenant.clone()), principal.tenant_limits));
            }
        }
        if let Some(ip) = ip {
            holders.push((Holder::Ip(ip), defaults.ip));
        }
        holders
    }

    /// Admits a request of `principal` (when authenticated) from `ip`, or says which limit
    /// refuses it. Nothing is consumed by a refused request.
    pub fn admit(
        &self,
        principal: Option<&Principal>,
        ip: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<Admission, LimitExceeded> {
        let holders = self.holders(principal, ip);
        let mut status = LimitStatus::default();
        // Read-only checks first: quotas and token buckets.
        for (holder, limits) in &holders {
            if let Some(refusal) = self.check_quota(holder, limits, now_ms) {
                return Err(LimitExceeded { status, ..refusal });
            }
            if let Some(capacity) = limits.tokens_per_minute {
                let level = self.buckets.with(holder, |buckets| {
                    buckets
                        .get(holder)
                        .map_or(capacity as f64, |bucket| bucket.level_at(capacity, now_ms))
                });
                let window = Window {
                    limit: capacity,
                    remaining: level.max(0.0) as u64,
                    reset_ms: ((capacity as f64 - level).max(0.0) * MINUTE_MS / capacity as f64)
                        as u64,
                };
                status.tokens.get_or_insert(window);
                if level < 1.0 {
                    return Err(LimitExceeded {
                        kind: LimitKind::TokensPerMinute,
                        holder: holder.name(),
                        limit: capacity,
                        retry_after_ms: ((1.0 - level) * MINUTE_MS / capacity as f64).ceil() as u64,
                        status,
                    });
                }
            }
        }
        // Then the consuming ones, undone if a later holder refuses.
        let mut consumed: Vec<(&Holder, f64)> = Vec::new();
        let mut concurrency = Vec::new();
        let undo = |consumed: &[(&Holder, f64)], concurrency: &[Arc<AtomicU64>]| {
            for (holder, interval) in consumed {
                self.arrivals.with(holder, |arrivals| {
                    if let Some(arrival) = arrivals.get_mut(*holder) {
                        *arrival -= interval;
                    }
                });
            }
            for counter in concurrency {
                counter.fetch_sub(1, Ordering::AcqRel);
            }
        };
        for (holder, limits) in &holders {
            if let Some(rate) = limits.requests_per_minute {
                match self.take_request(holder, rate, now_ms) {
                    Ok((interval, window)) => {
                        consumed.push((holder, interval));
                        status.requests.get_or_insert(window);
                    }
                    Err(retry_after_ms) => {
                        undo(&consumed, &concurrency);
                        status.requests.get_or_insert(Window {
                            limit: rate,
                            remaining: 0,
                            reset_ms: retry_after_ms,
                        });
                        return Err(LimitExceeded {
                            kind: LimitKind::RequestsPerMinute,
                            holder: holder.name(),
                            limit: rate,
                            retry_after_ms,
                            status,
                        });
                    }
                }
            }
            if let Some(max) = limits.max_concurrent {
                let counter = self.concurrent.with(holder, |counters| {
                    counters.entry(holder.clone()).or_default().clone()
                });
                let taken = counter
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                        (current < max).then_some(current + 1)
                    })
                    .is_ok();
                if !taken {
                    undo(&consumed, &concurrency);
                    return Err(LimitExceeded {
                        kind: LimitKind::ConcurrentRequests,
                        holder: holder.name(),
                        limit: max,
                        retry_after_ms: 1000,
                        status,
                    });
                }
                concurrency.push(counter);
            }
        }
        Ok(Admission {
            status,
            holders,
            concurrency,
        })
    }

    fn check_quota(&self, holder: &Holder, limits: &Limits, now_ms: i64) -> Option<LimitExceeded> {
        if limits.tokens_per_day.is_none()
            && limits.tokens_per_month.is_none()
            && limits.budget_micro_usd_per_month.is_none()
        {
            return None;
        }
        let quota = self.quotas.with(holder, |quotas| {
            let quota = quotas.entry(holder.clone()).or_default();
            quota.roll(now_ms);
            *quota
        });
        let refusal = |kind, limit, retry_after_ms| LimitExceeded {
            kind,
            holder: holder.name(),
            limit,
            retry_after_ms,
            status: LimitStatus::default(),
        };
        if let Some(limit) = limits.tokens_per_day
            && quota.day_used >= limit
        {
            let next_day = (quota.day + 1) * DAY_MS;
            return Some(refusal(
                LimitKind::TokensPerDay,
                limit,
                (next_day - now_ms).max(0) as u64,
            ));
        }
        if let Some(limit) = limits.tokens_per_month
            && quota.month_used >= limit
        {
            return Some(refusal(
                LimitKind::TokensPerMonth,
                limit,
                (next_month_start_ms(now_ms) - now_ms).max(0) as u64,
            ));
        }
        if let Some(budget) = limits.budget_micro_usd_per_month
            && quota.month_spent >= budget
        {
            return Some(refusal(
                LimitKind::Budget,
                budget,
                (next_month_start_ms(now_ms) - now_ms).max(0) as u64,
            ));
        }
        None
    }

    /// Charges what an admitted request cost, in millionths of a US dollar, to the monthly
    /// budgets of its holders.
    pub fn charge_cost(&self, admission: &Admission, micro_usd: u64, now_ms: i64) {
        if micro_usd == 0 {
            return;
        }
        for (holder, limits) in &admission.holders {
            if limits.budget_micro_usd_per_month.is_some() {
                self.quotas.with(holder, |quotas| {
                    let quota = quotas.entry(holder.clone()).or_default();
                    quota.roll(now_ms);
                    quota.month_spent += micro_usd;
                });
            }
        }
    }

    /// GCRA: takes one request of `rate` per minute, or returns the wait until one conforms.
    fn take_request(&self, holder: &Holder, rate: u64, now_ms: i64) -> Result<(f64, Window), u64> {
        let interval = MINUTE_MS / rate.max(1) as f64;
        let tolerance = MINUTE_MS - interval;
        let now = now_ms as f64;
        self.arrivals.with(holder, |arrivals| {
            let arrival = arrivals.entry(holder.clone()).or_insert(now);
            let theoretical = arrival.max(now);
            if theoretical - now > tolerance {
                return Err((theoretical - now - tolerance).ceil() as u64);
            }
            *arrival = theoretical + interval;
            let remaining = ((now + tolerance + interval - *arrival) / interval).floor();
            Ok((
                interval,
                Window {
                    limit: rate,
                    remaining: remaining.max(0.0) as u64,
                    reset_ms: (*arrival - now).max(0.0).ceil() as u64,
                },
            ))
        })
    }

    /// Takes `count` more requests from an admitted request's per-minute request windows: a
    /// request that is many (a batch of events) counts as many. All or none: when a holder's
    /// window has no room for them, nothing is taken and the refusal says which limit.
    pub fn take_more(
        &self,
        admission: &Admission,
        count: u64,
        now_ms: i64,
    ) -> Result<(), LimitExceeded> {
        if count == 0 {
            return Ok(());
        }
        let mut taken: Vec<(&Holder, f64)> = Vec::new();
        for (holder, limits) in &admission.holders {
            let Some(rate) = limits.requests_per_minute else {
                continue;
            };
            let interval = MINUTE_MS / rate.max(1) as f64;
            let tolerance = MINUTE_MS - interval;
            let now = now_ms as f64;
            let took = self.arrivals.with(holder, |arrivals| {
                let arrival = arrivals.entry(holder.clone()).or_insert(now);
                let theoretical = arrival.max(now);
                let last = theoretical + (count - 1) as f64 * interval;
                if last - now > tolerance {
                    return Err((last - now - tolerance).ceil() as u64);
                }
                let added = theoretical + count as f64 * interval - *arrival;
                *arrival += added;
                Ok(added)
            });
            match took {
                Ok(added) => taken.push((holder, added)),
                Err(retry_after_ms) => {
                    for (holder, added) in taken {
                        self.arrivals.with(holder, |arrivals| {
                            if let Some(arrival) = arrivals.get_mut(holder) {
                                *arrival -= added;
                            }
                        });
                    }
                    return Err(LimitExceeded {
                        kind: LimitKind::RequestsPerMinute,
                        holder: holder.name(),
                        limit: rate,
                        retry_after_ms,
                        status: admission.status,
                    });
                }
            }
        }
        Ok(())
    }

    /// Charges `tokens` produced for an admitted request to its buckets and quotas.
    pub fn charge(&self, admission: &Admission, tokens: u64, now_ms: i64) {
        if tokens == 0 {
            return;
        }
        for (holder, limits) in &admission.holders {
            if let Some(capacity) = limits.tokens_per_minute {
                self.buckets.with(holder, |buckets| {
                    let level = buckets
                        .get(holder)
                        .map_or(capacity as f64, |bucket| bucket.level_at(capacity, now_ms));
                    let level = level - tokens as f64;
                    let refill_ms = (capacity as f64 - level) * MINUTE_MS / capacity as f64;
                    buckets.insert(
                        holder.clone(),
                        Bucket {
                            level,
                            at_ms: now_ms,
                            full_at_ms: now_ms + refill_ms.ceil() as i64,
                        },
                    );
                });
            }
            if limits.tokens_per_day.is_some() || limits.tokens_per_month.is_some() {
                self.add_quota_use(holder, tokens, now_ms);
            }
        }
    }

    fn add_quota_use(&self, holder: &Holder, tokens: u64, now_ms: i64) {
        self.quotas.with(holder, |quotas| {
            let quota = quotas.entry(holder.clone()).or_default();
            quota.roll(now_ms);
            quota.day_used += tokens;
            quota.month_used += tokens;
        });
    }

    /// Seeds the quota counters from stored usage: tokens per (tenant, key) since the start of
    /// the day and of the month.
    pub fn seed_quotas(
        &self,
        today: &[hearth_store::TokenTotal],
        this_month: &[hearth_store::TokenTotal],
        now_ms: i64,
    ) {
        // Per holder: tokens today, tokens this month, spending this month.
        let mut totals: HashMap<Holder, (u64, u64, u64)> = HashMap::new();
        for (rows, is_day) in [(today, true), (this_month, false)] {
            for row in rows {
                let tokens = u64::try_from(row.tokens).unwrap_or(0);
                let cost = u64::try_from(row.cost_micro_usd).unwrap_or(0);
                let holders = [
                    row.key_id.clone().map(Holder::Key),
                    row.tenant_id.clone().map(Holder::Tenant),
                ];
                for holder in holders.into_iter().flatten() {
                    let entry = totals.entry(holder).or_default();
                    if is_day {
                        entry.0 += tokens;
                    } else {
                        entry.1 += tokens;
                        entry.2 += cost;
                    }
                }
            }
        }
        for (holder, (day_used, month_used, month_spent)) in totals {
            self.quotas.with(&holder, |quotas| {
                let quota = quotas.entry(holder.clone()).or_default();
                quota.roll(now_ms);
                quota.day_used = day_used;
                quota.month_used = month_used;
                quota.month_spent = month_spent;
            });
        }
    }

    /// Seeds the quota counters from the usage stored so far this day and month, so that a
    /// restart does not hand out a fresh quota.
    pub async fn seed_quotas_from(
        &self,
        store: &hearth_store::Store,
        now_ms: i64,
    ) -> Result<(), hearth_store::StoreError> {
        let today = store
            .tokens_since(now_ms.div_euclid(DAY_MS) * DAY_MS)
            .await?;
        let this_month = store.tokens_since(month_start_ms(now_ms)).await?;
        self.seed_quotas(&today, &this_month, now_ms);
        Ok(())
    }

    /// Forgets holders with nothing to remember: request windows and buckets that refilled,
    /// no request in flight. Quotas of keys and tenants stay (they are few and must persist).
    pub fn sweep(&self, now_ms: i64) {
        let now = now_ms as f64;
        self.arrivals.retain(|_, arrival| *arrival > now);
        // A bucket that is full again is the same as no bucket.
        self.buckets.retain(|_, bucket| bucket.full_at_ms > now_ms);
        self.concurrent.retain(|_, counter| {
            Arc::strong_count(counter) > 1 || counter.load(Ordering::Acquire) > 0
        });
    }

    /// How many holders are tracked, for tests and metrics.
    pub fn tracked(&self) -> usize {
        self.arrivals.len() + self.buckets.len() + self.concurrent.len() + self.quotas.len()
    }

    /// Sweeps idle holders every `interval` until the limiter is dropped.
    pub fn spawn_sweeper(
        self: &Arc<Self>,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let limiter = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                let Some(limiter) = limiter.upgrade() else {
                    return;
                };
                limiter.sweep(crate::now_ms());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Role;

    fn key(limits: Limits) -> Principal {
        Principal {
            key_id: "key-1".to_owned(),
            key_prefix: "hk_00000000".to_owned(),
            tenant_id: Some("tenant-1".to_owned()),
            tenant_name: Some("acme".to_owned()),
            user_id: None,
            role: Role::Member,
            scopes: Vec::new(),
            key_limits: limits,
            tenant_limits: Limits::default(),
        }
    }

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn requests_per_minute_allow_a_burst_then_space_requests() {
        let limiter = Limiter::new(LimitDefaults::default());
        let principal = key(Limits {
            requests_per_minute: Some(6),
            ..Limits::default()
        });
        for expected_remaining in (0..6).rev() {
            let admission = limiter
                .admit(Some(&principal), None, T0)
                .expect("within the burst");
            assert_eq!(
                admission.status.requests.map(|w| w.remaining),
                Some(expected_remaining)
            );
        }
        let refused = limiter
            .admit(Some(&principal), None, T0)
            .expect_err("burst spent");
        assert_eq!(refused.kind, LimitKind::RequestsPerMinute);
        assert_eq!(refused.holder, "key");
        assert_eq!(
            refused.retry_after_ms, 10_000,
            "one request per 10 s refills"
        );
        assert!(limiter.admit(Some(&principal), None, T0 + 9_999).is_err());
        assert!(limiter.admit(Some(&principal), None, T0 + 10_000).is_ok());
    }

    #[test]
    fn tokens_per_minute_refuse_once_the_bucket_is_spent_and_refill() {
        let limiter = Limiter::new(LimitDefaults::default());
        let principal = key(Limits {
            tokens_per_minute: Some(600),
            ..Limits::default()
        });
        let admission = limiter
            .admit(Some(&principal), None, T0)
            .expect("full bucket");
        limiter.charge(&admission, 900, T0);
        let refused = limiter
            .admit(Some(&principal), None, T0)
            .expect_err("overdrawn");
        assert_eq!(refused.kind, LimitKind::TokensPerMinute);
        // 301 tokens short at 10 tokens per second.
        assert_eq!(refused.retry_after_ms, 30_100);
        assert!(limiter.admit(Some(&principal), None, T0 + 30_100).is_ok());
    }

    #[test]
    fn concurrency_is_released_when_the_admission_drops() {
        let limiter = Limiter::new(LimitDefaults::default());
        let principal = key(Limits {
            max_concurrent: Some(2),
            ..Limits::default()
        });
        let first = limiter.admit(Some(&principal), None, T0).expect("1");
        let _second = limiter.admit(Some(&principal), None, T0).expect("2");
        let refused = limiter.admit(Some(&principal), None, T0).expect_err("3");
        assert_eq!(refused.kind, LimitKind::ConcurrentRequests);
        drop(first);
        assert!(limiter.admit(Some(&principal), None, T0).is_ok());
    }

    #[test]
    fn a_refusal_by_a_later_holder_consumes_nothing_of_the_earlier_ones() {
        let limiter = Limiter::new(LimitDefaults {
            key: Limits::default(),
            ip: Limits {
                max_concurrent: Some(1),
                ..Limits::default()
            },
        });
        let principal = key(Limits {
            requests_per_minute: Some(2),
            ..Limits::default()
        });
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let held = limiter
            .admit(Some(&principal), Some(ip), T0)
            .expect("first");
        for _ in 0..5 {
            let refused = limiter
                .admit(Some(&principal), Some(ip), T0)
                .expect_err("the address is busy");
            assert_eq!(refused.holder, "ip");
        }
        drop(held);
        // The key's second request per minute is still there.
        assert!(limiter.admit(Some(&principal), Some(ip), T0).is_ok());
    }

    #[test]
    fn quotas_roll_over_with_the_day_and_the_month() {
        let limiter = Limiter::new(LimitDefaults::default());
        let principal = key(Limits {
            tokens_per_day: Some(100),
            tokens_per_month: Some(250),
            ..Limits::default()
        });
        // 2027-01-20 23:00 UTC.
        let evening = days_from_civil(2027, 1) * DAY_MS + 19 * DAY_MS + 23 * 3_600_000;
        let admission = limiter
            .admit(Some(&principal), None, evening)
            .expect("fresh");
        limiter.charge(&admission, 100, evening);
        let refused = limiter
            .admit(Some(&principal), None, evening)
            .expect_err("day spent");
        assert_eq!(refused.kind, LimitKind::TokensPerDay);
        assert_eq!(refused.retry_after_ms, 3_600_000, "until midnight UTC");
        // The next days: the daily quota is new each day, the monthly one adds up.
        for (day, tokens) in [(1, 100), (2, 60)] {
            let at = evening + day * DAY_MS;
            let admission = limiter.admit(Some(&principal), None, at).expect("new day");
            limiter.charge(&admission, tokens, at);
        }
        let late_january = evening + 3 * DAY_MS;
        let refused = limiter
            .admit(Some(&principal), None, late_january)
            .expect_err("month spent");
        assert_eq!(refused.kind, LimitKind::TokensPerMonth);
        let february = days_from_civil(2027, 2) * DAY_MS;
        assert_eq!(refused.retry_after_ms, (february - late_january) as u64);
        // February starts: both quotas are fresh.
        assert!(limiter.admit(Some(&principal), None, february).is_ok());
    }

    #[test]
    fn a_spent_budget_refuses_until_the_month_turns() {
        let limiter = Limiter::new(LimitDefaults::default());
        let principal = key(Limits {
            budget_micro_usd_per_month: Some(1_000),
            ..Limits::default()
        });
        let admission = limiter.admit(Some(&principal), None, T0).expect("unspent");
        limiter.charge_cost(&admission, 600, T0);
        drop(
            limiter
                .admit(Some(&principal), None, T0)
                .expect("600 of 1000 spent"),
        );
        limiter.charge_cost(&admission, 400, T0);
        let refused = limiter
            .admit(Some(&principal), None, T0)
            .expect_err("spent");
        assert_eq!(refused.kind, LimitKind::Budget);
        assert_eq!(refused.kind.code(), "budget_exceeded");
        assert!(
            limiter
                .admit(Some(&principal), None, next_month_start_ms(T0))
                .is_ok()
        );
    }

    #[test]
    fn seeded_usage_counts_against_the_quota() {
        let limiter = Limiter::new(LimitDefaults::default());
        let principal = key(Limits {
            tokens_per_day: Some(100),
            ..Limits::default()
        });
        let used = [hearth_store::TokenTotal {
            tenant_id: Some("tenant-1".to_owned()),
            key_id: Some("key-1".to_owned()),
            tokens: 100,
            cost_micro_usd: 0,
        }];
        limiter.seed_quotas(&used, &used, T0);
        assert_eq!(
            limiter
                .admit(Some(&principal), None, T0)
                .map(|_| ())
                .expect_err("spent")
                .kind,
            LimitKind::TokensPerDay
        );
    }

    #[test]
    fn idle_addresses_are_forgotten() {
        let limiter = Limiter::new(LimitDefaults {
            key: Limits::default(),
            ip: Limits {
                requests_per_minute: Some(60),
                max_concurrent: Some(4),
                ..Limits::default()
            },
        });
        for last_octet in 0..50u8 {
            let ip = IpAddr::from([10, 0, 0, last_octet]);
            drop(limiter.admit(None, Some(ip), T0).expect("admitted"));
        }
        assert!(limiter.tracked() >= 50);
        limiter.sweep(T0 + 61_000);
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn calendar_arithmetic_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1), 0);
        assert_eq!(days_from_civil(2000, 3), 11_017);
        assert_eq!(civil_year_month(11_017), (2000, 3));
        assert_eq!(month_index(0), 0);
        assert_eq!(
            month_start_ms(days_from_civil(2026, 12) * DAY_MS + 5),
            days_from_civil(2026, 12) * DAY_MS
        );
        assert_eq!(
            next_month_start_ms(days_from_civil(2026, 12) * DAY_MS),
            days_from_civil(2027, 1) * DAY_MS
        );
    }
}
