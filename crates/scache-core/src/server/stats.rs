//! The statistics scache logs (spec §6): lookup hits and misses per interval, and the largest cache
//! size seen right after a save. Counters keep C `int` meaning; the embedder takes and resets them.

use crate::cache::Size;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub dest_hits: u32,
    pub dest_miss: u32,
    pub endp_hits: u32,
    pub endp_miss: u32,
    /// "max simultaneous" values, sampled only after successful saves (Postfix quirk Q6).
    pub max_dests: usize,
    pub max_endps: usize,
    pub max_sessions: usize,
    /// Cached connections closed because their peer hung up (not in Postfix).
    pub evicted_dead: u32,
    /// Cached connections closed to stay within the connection limits (not in Postfix).
    pub evicted_limit: u32,
}

impl Counters {
    pub fn after_save_endp(&mut self, size: Size) {
        self.max_endps = self.max_endps.max(size.endp_count);
        self.max_sessions = self.max_sessions.max(size.sess_count);
    }

    pub fn after_save_dest(&mut self, size: Size) {
        self.max_dests = self.max_dests.max(size.dest_count);
        self.max_endps = self.max_endps.max(size.endp_count);
    }

    /// Returns the interval's counters and starts a new interval.
    pub fn take(&mut self) -> Counters {
        std::mem::take(self)
    }
}
