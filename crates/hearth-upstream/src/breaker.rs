//! A circuit breaker per target: closed (requests flow; consecutive failures are counted),
//! open (the target is skipped until the open period ends), half-open (one probe request is
//! let through; its success closes the breaker, its failure opens it again).

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

/// What a breaker lets through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Skipped until `until`.
    Open {
        until: Instant,
    },
    /// One probe is out; others are skipped until it reports.
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
}

#[derive(Debug)]
pub struct Breaker {
    inner: Mutex<Inner>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
            }),
        }
    }
}

impl Breaker {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state as of `now`, an expired open period showing as half-open.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner().state {
            BreakerState::Open { until } if until <= now => BreakerState::HalfOpen,
            state => state,
        }
    }

    /// Whether a request may go to the target now. An open breaker whose period ended lets
    /// this one request through as the probe and turns half-open.
    pub fn try_acquire(&self, now: Instant) -> bool {
        let mut inner = self.inner();
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } if until <= now => {
                inner.state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => false,
        }
    }

    pub fn record_success(&self) {
        let mut inner = self.inner();
        inner.state = BreakerState::Closed;
        inner.consecutive_failures = 0;
    }

    /// Counts a failure; returns true when this one opened the breaker.
    pub fn record_failure(&self, settings: BreakerSettings, now: Instant) -> bool {
        let mut inner = self.inner();
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        let opens = match inner.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => inner.consecutive_failures >= settings.failures,
            BreakerState::Open { .. } => false,
        };
        if opens {
            inner.state = BreakerState::Open {
                until: now + settings.open_for,
            };
        }
        opens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: BreakerSettings = BreakerSettings {
        failures: 3,
        open_for: Duration::from_secs(10),
    };

    #[test]
    fn it_opens_after_consecutive_failures_probes_once_and_closes_on_success() {
        let breaker = Breaker::default();
        let start = Instant::now();
        assert!(!breaker.record_failure(SETTINGS, start));
        breaker.record_success();
        for _ in 0..2 {
            assert!(!breaker.record_failure(SETTINGS, start));
        }
        assert!(
            breaker.record_failure(SETTINGS, start),
            "the third in a row opens it"
        );
        assert_eq!(breaker.state(start).name(), "open");
        assert!(!breaker.try_acquire(start + Duration::from_secs(9)));
        let later = start + Duration::from_secs(10);
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        assert!(breaker.try_acquire(later), "one probe");
        assert!(!breaker.try_acquire(later), "only one");
        breaker.record_success();
        assert_eq!(breaker.state(later), BreakerState::Closed);
        assert!(breaker.try_acquire(later));
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let breaker = Breaker::default();
        let start = Instant::now();
        for _ in 0..3 {
            breaker.record_failure(SETTINGS, start);
        }
        let later = start + Duration::from_secs(11);
        assert!(breaker.try_acquire(later));
        assert!(breaker.record_failure(SETTINGS, later));
        assert!(!breaker.try_acquire(later + Duration::from_secs(9)));
        assert!(breaker.try_acquire(later + Duration::from_secs(10)));
    }
}
