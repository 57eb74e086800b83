//! Handing freed heap memory back to the system once the models go quiet.
//!
//! glibc keeps what a thread frees in that thread's arena, for the thread to reuse. A burst of
//! work leaves tens of MiB there that no live allocation holds but the process's RSS still
//! counts: the activations of an embedding batch, the vocabulary trie llguidance builds and
//! throws away on the first constrained request, the weights of a model just unloaded. The
//! pool's reaper watches the engines' work counters and, once a tick passes with nothing run
//! and nothing running, asks glibc to return those pages, once per quiet spell. Under load it
//! does not run, so the pages a busy worker reuses stay put. (A chat model is busy while a
//! request runs or waits; an embedding model only shows work as its passes finish, so one pass
//! longer than a tick may see a release, which costs that pass a few page faults, nothing more.)

/// What the models have done so far. Two equal snapshots a tick apart mean nothing ran in
/// between; `busy` means something is running or waiting right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Activity {
    /// Work counters of every loaded model, summed: they only grow while work is done.
    pub work_done: u64,
    /// How many models are loaded: loading or unloading one frees memory too.
    pub loaded_models: usize,
    pub busy: bool,
}

/// Decides, tick by tick, when freed memory is returned: on the first quiet tick after work.
#[derive(Debug, Default)]
pub(crate) struct QuietRelease {
    previous_tick: Option<Activity>,
    released_at: Option<Activity>,
}

impl QuietRelease {
    /// Records this tick's activity; true when freed memory should be returned now.
    pub(crate) fn observe(&mut self, now: Activity) -> bool {
        let quiet = !now.busy && self.previous_tick == Some(now);
        self.previous_tick = Some(now);
        if quiet && self.released_at != Some(now) {
            self.released_at = Some(now);
            return true;
        }
        false
    }
}

/// Returns the freed pages of every heap arena to the system. Blocking: it walks the arenas
/// (about a millisecond for a few hundred MiB), so async callers use `spawn_blocking`.
/// False where the allocator offers no such call (anything but glibc).
pub(crate) fn release_freed_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // The effect is only read from /proc when someone is going to see it.
        let logged = tracing::enabled!(tracing::Level::DEBUG);
        let before = logged.then(resident_anonymous_kib).flatten();
        // SAFETY: malloc_trim has no preconditions: it takes each arena's lock itself and only
        // gives back whole pages that hold no live allocation.
        unsafe { libc::malloc_trim(0) };
        if logged {
            tracing::debug!(
                before_kib = before,
                after_kib = resident_anonymous_kib(),
                "freed heap memory returned to the system"
            );
        }
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The process's resident anonymous memory (heap, arenas, buffers), from `/proc/self/status`.
pub(crate) fn resident_anonymous_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(work_done: u64, busy: bool) -> Activity {
        Activity {
            work_done,
            loaded_models: 1,
            busy,
        }
    }

    #[test]
    fn memory_is_released_once_on_the_first_quiet_tick_after_work() {
        let mut release = QuietRelease::default();
        assert!(
            !release.observe(tick(10, false)),
            "no earlier tick to compare with"
        );
        assert!(
            release.observe(tick(10, false)),
            "a tick passed with nothing done"
        );
        assert!(
            !release.observe(tick(10, false)),
            "already released for this quiet spell"
        );
        assert!(!release.observe(tick(10, false)));
        assert!(
            !release.observe(tick(25, false)),
            "work was done during this tick"
        );
        assert!(
            release.observe(tick(25, false)),
            "quiet again after new work"
        );
    }

    #[test]
    fn nothing_is_released_while_a_request_runs_or_waits() {
        let mut release = QuietRelease::default();
        for _ in 0..5 {
            // A long prompt being read leaves the counters still between steps.
            assert!(!release.observe(tick(7, true)));
        }
        assert!(
            !release.observe(tick(7, false)),
            "it finished during this tick"
        );
        assert!(release.observe(tick(7, false)));
    }

    #[test]
    fn unloading_a_model_counts_as_work() {
        let mut release = QuietRelease::default();
        release.observe(tick(3, false));
        assert!(release.observe(tick(3, false)));
        let unloaded = Activity {
            loaded_models: 0,
            ..tick(3, false)
        };
        assert!(!release.observe(unloaded));
        assert!(release.observe(unloaded));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_heap_memory_goes_back_to_the_system() {
        // 4,096 blocks of 16 KiB, below glibc's mmap threshold, so they live in an arena, and
        // written to, so they are resident.
        let mut blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![0xA5_u8; 16 * 1024]).collect();
        // The newest block stays allocated, so the arena cannot shrink from its top on its own.
        let kept = blocks.pop();
        drop(blocks);
        let before = resident_anonymous_kib().expect("RssAnon in /proc/self/status");
        assert!(release_freed_heap());
        let after = resident_anonymous_kib().expect("RssAnon in /proc/self/status");
        assert!(
            before.saturating_sub(after) >= 32 * 1024,
            "64 MiB were freed but only {} KiB of {before} KiB went back",
            before.saturating_sub(after)
        );
        drop(kept);
    }
}
