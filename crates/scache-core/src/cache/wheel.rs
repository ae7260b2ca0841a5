//! A hashed timing wheel (Varghese & Lauck) holding the cache's expiry timers.
//!
//! A timer is named by a caller-chosen `u32` key and has an exact deadline in milliseconds.
//! It lives in slot `(deadline / TICK_MS) % SLOTS` (a deadline already behind the last
//! `expire` is filed under that expire's tick instead); a deadline more than one revolution
//! away simply stays in its slot until it is due. Arming and cancelling are O(1): a slot is a
//! `Vec`, removal is `swap_remove`, and a per-key back-pointer finds the entry. Nothing is
//! left behind by a cancel, so [`Wheel::next_deadline`] never reports a dead timer.
//! [`Wheel::expire`] visits only the slots whose ticks have come round and sorts just the
//! timers it fires: by deadline, equal deadlines in the order they were armed (as Postfix's
//! events.c does).
//!
//! Trusts: `now` never decreases from one [`Wheel::expire`] call to the next, and keys are
//! small and dense (the cache uses slab keys), because the back-pointers are a `Vec`
//! indexed by key.

use std::cell::Cell;
use std::iter;

use super::Millis;

/// Width of one slot in milliseconds. Only bucketing uses it; deadlines stay exact.
const TICK_MS: Millis = 10;
/// Slots per revolution: a power of two, so one revolution is 5.12 s.
const SLOTS: usize = 512;
const WORDS: usize = SLOTS / 64;

#[derive(Clone, Copy, Debug)]
struct Entry {
    deadline: Millis,
    key: u32,
}

/// Where a key's timer is, and when it was armed relative to the others.
#[derive(Clone, Copy, Debug)]
struct Loc {
    seq: u64,
    slot: u32,
    pos: u32,
}

impl Loc {
    const UNARMED: Loc = Loc { seq: 0, slot: u32::MAX, pos: 0 };

    fn is_armed(&self) -> bool {
        self.slot != u32::MAX
    }
}

#[derive(Default)]
struct Slot {
    entries: Vec<Entry>,
    /// A lower bound of the entries' deadlines, exact unless `stale`. Cancelling the minimum
    /// only marks it stale, so cancel stays O(1); the first reader needing the exact value
    /// rescans once and keeps the result, which is why these are cells: `next_deadline` is a
    /// read-only query.
    min: Cell<Millis>,
    stale: Cell<bool>,
}

impl Slot {
    fn lower_bound(&self) -> Millis {
        self.min.get()
    }

    fn exact_min(&self) -> Millis {
        if self.stale.get() {
            self.set_min(self.entries.iter().map(|e| e.deadline).min().unwrap_or(Millis::MAX));
        }
        self.min.get()
    }

    fn set_min(&self, min: Millis) {
        self.min.set(min);
        self.stale.set(false);
    }

    fn push(&mut self, entry: Entry) {
        if self.entries.is_empty() || entry.deadline <= self.lower_bound() {
            self.set_min(entry.deadline);
        }
        self.entries.push(entry);
    }

    /// Removes the entry at `pos`; returns it and the entry that moved into `pos`, if any.
    fn swap_remove(&mut self, pos: usize) -> (Entry, Option<Entry>) {
        let entry = self.entries.swap_remove(pos);
        if self.entries.is_empty() {
            self.set_min(Millis::MAX);
        } else if entry.deadline == self.lower_bound() {
            self.stale.set(true);
        }
        (entry, self.entries.get(pos).copied())
    }
}

pub(super) struct Wheel {
    slots: Box<[Slot]>,
    /// One bit per non-empty slot, so scans skip empty slots a word at a time.
    occupied: [u64; WORDS],
    locs: Vec<Loc>,
    /// The tick of the last `expire`. Every armed timer sits in a slot whose tick (counted from
    /// here) is not in the past: late deadlines are filed under the cursor tick itself.
    cursor: u64,
    next_seq: u64,
    /// The last answer of `next_deadline`, kept until a change could alter it; None when
    /// unknown. Without it, a wheel whose timers are all a revolution or more away would
    /// visit every slot on each call.
    known_next: Cell<Option<Millis>>,
    /// Reused buffer for the timers one `expire` fires: (deadline, seq, key).
    fired: Vec<(Millis, u64, u32)>,
}

fn slot_of(tick: u64) -> usize {
    // The mask keeps the value below SLOTS, so the cast cannot truncate.
    (tick & (SLOTS as u64 - 1)) as usize
}

fn ix(key: u32) -> usize {
    key as usize
}

impl Wheel {
    pub(super) fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            occupied: [0; WORDS],
            locs: Vec::new(),
            cursor: 0,
            next_seq: 0,
            known_next: Cell::new(None),
            fired: Vec::new(),
        }
    }

    /// Sets `key`'s timer to `deadline`, replacing any timer it had (which then counts as
    /// armed now for the tie order).
    pub(super) fn arm(&mut self, key: u32, deadline: Millis) {
        self.cancel(key);
        let tick = (deadline / TICK_MS).max(self.cursor);
        let slot = slot_of(tick);
        let s = &mut self.slots[slot];
        let pos = u32::try_from(s.entries.len()).expect("fewer than 2^32 timers");
        s.push(Entry { deadline, key });
        self.occupied[slot / 64] |= 1 << (slot % 64);
        if self.locs.len() <= ix(key) {
            self.locs.resize(ix(key) + 1, Loc::UNARMED);
        }
        let slot = u32::try_from(slot).expect("SLOTS fits in u32");
        self.locs[ix(key)] = Loc { seq: self.next_seq, slot, pos };
        self.next_seq += 1;
        if let Some(next) = self.known_next.get() {
            self.known_next.set(Some(next.min(deadline)));
        }
    }

    /// Disarms `key`'s timer; returns its deadline, or None if it was not armed.
    pub(super) fn cancel(&mut self, key: u32) -> Option<Millis> {
        let loc = *self.locs.get(ix(key)).filter(|loc| loc.is_armed())?;
        self.locs[ix(key)] = Loc::UNARMED;
        let (slot, pos) = (loc.slot as usize, loc.pos as usize);
        let s = &mut self.slots[slot];
        let (entry, moved) = s.swap_remove(pos);
        if let Some(moved) = moved {
            self.locs[ix(moved.key)].pos = loc.pos;
        }
        if s.entries.is_empty() {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
        if self.known_next.get() == Some(entry.deadline) {
            self.known_next.set(None);
        }
        Some(entry.deadline)
    }

    pub(super) fn deadline(&self, key: u32) -> Option<Millis> {
        let loc = self.locs.get(ix(key)).filter(|loc| loc.is_armed())?;
        Some(self.slots[loc.slot as usize].entries[loc.pos as usize].deadline)
    }

    /// Disarms every timer with deadline <= `now` and appends their keys to `out`, ordered by
    /// deadline and then by the order they were armed.
    pub(super) fn expire(&mut self, now: Millis, out: &mut Vec<u32>) {
        let last = (now / TICK_MS).max(self.cursor);
        // A jump of a revolution or more has to look at every slot, but only once.
        let visits = (last - self.cursor + 1).min(SLOTS as u64);
        for tick in self.cursor..self.cursor + visits {
            let slot = slot_of(tick);
            if self.is_occupied(slot) && self.slots[slot].lower_bound() <= now {
                self.fire_due(slot, now);
            }
        }
        self.cursor = last;
        if !self.fired.is_empty() {
            self.known_next.set(None);
        }
        self.fired.sort_unstable_by_key(|&(deadline, seq, _)| (deadline, seq));
        out.extend(self.fired.drain(..).map(|(_, _, key)| key));
    }

    /// Moves the due entries of one slot to `fired`, leaving the slot minimum exact.
    fn fire_due(&mut self, slot: usize, now: Millis) {
        let s = &mut self.slots[slot];
        let mut min = Millis::MAX;
        let mut i = 0;
        while let Some(&entry) = s.entries.get(i) {
            if entry.deadline > now {
                min = min.min(entry.deadline);
                i += 1;
                continue;
            }
            if let (_, Some(moved)) = s.swap_remove(i) {
                self.locs[ix(moved.key)].pos = u32::try_from(i).expect("fewer than 2^32 timers");
            }
            let loc = std::mem::replace(&mut self.locs[ix(entry.key)], Loc::UNARMED);
            self.fired.push((entry.deadline, loc.seq, entry.key));
        }
        s.set_min(min);
        if s.entries.is_empty() {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
    }

    /// The earliest deadline of any armed timer, exactly.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        let next = self.known_next.get().or_else(|| self.find_next_deadline());
        self.known_next.set(next);
        next
    }

    /// Walking the slots from the cursor, the first slot holding a timer of the tick it stands
    /// for in this revolution holds the earliest timer: every slot passed before it holds only
    /// timers at least a revolution later, every slot after it only later ticks. When no slot
    /// qualifies, every timer is a revolution or more away and the least slot minimum wins.
    fn find_next_deadline(&self) -> Option<Millis> {
        let start = slot_of(self.cursor);
        let mut best: Option<Millis> = None;
        for slot in self.occupied_from(start) {
            let s = &self.slots[slot];
            // A slot that cannot beat `best`, a timer at least a revolution away from its own
            // slot, cannot hold a timer of its tick in this revolution either.
            if best.is_some_and(|best| s.lower_bound() >= best) {
                continue;
            }
            let min = s.exact_min();
            let tick = self.cursor + ((slot + SLOTS - start) % SLOTS) as u64;
            if min / TICK_MS <= tick {
                return Some(min);
            }
            best = Some(best.map_or(min, |best| best.min(min)));
        }
        best
    }

    fn is_occupied(&self, slot: usize) -> bool {
        self.occupied[slot / 64] & (1 << (slot % 64)) != 0
    }

    /// Non-empty slots in wheel order, starting at `start` and wrapping round once.
    fn occupied_from(&self, start: usize) -> impl Iterator<Item = usize> + '_ {
        let from = |first| iter::successors(self.first_occupied(first), |&slot| self.first_occupied(slot + 1));
        from(start).chain(from(0).take_while(move |&slot| slot < start))
    }

    /// The first non-empty slot at or after `from`, without wrapping.
    fn first_occupied(&self, from: usize) -> Option<usize> {
        let mut word = from / 64;
        let mut bits = self.occupied.get(word)? & (u64::MAX << (from % 64));
        while bits == 0 {
            word += 1;
            bits = *self.occupied.get(word)?;
        }
        Some(word * 64 + bits.trailing_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REVOLUTION: Millis = TICK_MS * SLOTS as Millis;

    fn expire(wheel: &mut Wheel, now: Millis) -> Vec<u32> {
        let mut out = Vec::new();
        wheel.expire(now, &mut out);
        out
    }

    #[test]
    fn fires_by_deadline_then_by_arming_order() {
        let mut wheel = Wheel::new();
        wheel.arm(0, 2_000);
        wheel.arm(1, 1_000);
        wheel.arm(2, 2_000);
        wheel.arm(3, 1_005); // same slot as 1_000, later deadline
        wheel.arm(4, 1_000);
        assert_eq!(expire(&mut wheel, 5_000), [1, 4, 3, 0, 2]);
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn fires_only_when_now_reaches_the_deadline() {
        let mut wheel = Wheel::new();
        wheel.arm(7, 1_005);
        assert!(expire(&mut wheel, 1_000).is_empty());
        assert!(expire(&mut wheel, 1_004).is_empty());
        assert_eq!(expire(&mut wheel, 1_005), [7]);
    }

    #[test]
    fn cancel_removes_the_timer_and_keeps_the_others_findable() {
        let mut wheel = Wheel::new();
        for key in 0..10 {
            wheel.arm(key, 1_000 + Millis::from(key % 3));
        }
        assert_eq!(wheel.cancel(4), Some(1_001));
        assert_eq!(wheel.cancel(4), None);
        assert_eq!(wheel.cancel(0), Some(1_000));
        assert_eq!(wheel.cancel(99), None);
        assert_eq!(wheel.deadline(9), Some(1_000));
        assert_eq!(wheel.cancel(9), Some(1_000));
        assert_eq!(wheel.next_deadline(), Some(1_000));
        assert_eq!(wheel.cancel(3), Some(1_000));
        assert_eq!(wheel.cancel(6), Some(1_000));
        // Every timer at 1_000 is gone: the stale slot minimum must not be reported.
        assert_eq!(wheel.next_deadline(), Some(1_001));
        assert_eq!(expire(&mut wheel, 2_000), [1, 7, 2, 5, 8]);
    }

    #[test]
    fn rearming_moves_the_deadline_either_way_and_counts_as_new() {
        let mut wheel = Wheel::new();
        wheel.arm(1, 3_000);
        wheel.arm(2, 1_000);
        wheel.arm(1, 1_000); // shortened, and now armed after key 2
        assert_eq!(wheel.next_deadline(), Some(1_000));
        wheel.arm(2, 9_000); // lengthened
        assert_eq!(expire(&mut wheel, 1_000), [1]);
        assert_eq!(wheel.next_deadline(), Some(9_000));
        assert_eq!(wheel.deadline(2), Some(9_000));
    }

    #[test]
    fn far_deadlines_wait_for_their_revolution() {
        let mut wheel = Wheel::new();
        let far = 20 * REVOLUTION + 7;
        wheel.arm(1, far);
        wheel.arm(2, 7); // same slot, first revolution
        assert_eq!(wheel.next_deadline(), Some(7));
        assert_eq!(expire(&mut wheel, 7), [2]);
        assert_eq!(wheel.next_deadline(), Some(far));
        for now in (0..far).step_by(997) {
            assert!(expire(&mut wheel, now).is_empty(), "fired early at {now}");
        }
        assert_eq!(wheel.next_deadline(), Some(far));
        assert_eq!(expire(&mut wheel, far), [1]);
    }

    #[test]
    fn next_deadline_is_exact_within_a_slot_and_across_revolutions() {
        let mut wheel = Wheel::new();
        wheel.arm(1, REVOLUTION + 13);
        wheel.arm(2, 2 * REVOLUTION + 11);
        wheel.arm(3, 3 * REVOLUTION + 2);
        assert_eq!(wheel.next_deadline(), Some(REVOLUTION + 13));
        wheel.cancel(1);
        assert_eq!(wheel.next_deadline(), Some(2 * REVOLUTION + 11));
        expire(&mut wheel, 2 * REVOLUTION);
        wheel.arm(4, 2 * REVOLUTION + 19); // slot of key 2, same revolution
        assert_eq!(wheel.next_deadline(), Some(2 * REVOLUTION + 11));
        wheel.cancel(2);
        assert_eq!(wheel.next_deadline(), Some(2 * REVOLUTION + 19));
    }

    #[test]
    fn a_jump_of_many_revolutions_fires_everything_due_in_order() {
        let mut wheel = Wheel::new();
        wheel.arm(1, 5 * REVOLUTION);
        wheel.arm(2, 17);
        wheel.arm(3, 40 * REVOLUTION);
        assert_eq!(expire(&mut wheel, 10 * REVOLUTION), [2, 1]);
        assert_eq!(wheel.next_deadline(), Some(40 * REVOLUTION));
    }

    #[test]
    fn a_deadline_already_past_fires_at_the_next_expire() {
        let mut wheel = Wheel::new();
        expire(&mut wheel, 10_000);
        wheel.arm(1, 3_000);
        wheel.arm(2, 10_003);
        assert_eq!(wheel.next_deadline(), Some(3_000));
        assert_eq!(expire(&mut wheel, 10_001), [1]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Arm(u32, Millis),
        Cancel(u32),
        Advance(Millis),
    }

    fn op() -> impl Strategy<Value = Op> {
        let delay = prop_oneof![0..30u64, Just(REVOLUTION), 0..4 * REVOLUTION];
        prop_oneof![
            4 => (0..40u32, delay.clone()).prop_map(|(key, delay)| Op::Arm(key, delay)),
            2 => (0..40u32).prop_map(Op::Cancel),
            2 => delay.prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// The wheel against a list of (key, deadline, seq): same firing order, same next deadline.
        #[test]
        fn behaves_like_a_sorted_list(ops in prop::collection::vec(op(), 1..200)) {
            let mut wheel = Wheel::new();
            let mut model: Vec<(u32, Millis, u64)> = Vec::new();
            let (mut now, mut seq) = (0, 0);
            for op in ops {
                match op {
                    Op::Arm(key, delay) => {
                        model.retain(|t| t.0 != key);
                        model.push((key, now + delay, seq));
                        seq += 1;
                        wheel.arm(key, now + delay);
                    }
                    Op::Cancel(key) => {
                        let expected = model.iter().find(|t| t.0 == key).map(|t| t.1);
                        model.retain(|t| t.0 != key);
                        prop_assert_eq!(wheel.cancel(key), expected);
                    }
                    Op::Advance(by) => {
                        now += by;
                        let mut due: Vec<_> = model.iter().copied().filter(|t| t.1 <= now).collect();
                        due.sort_by_key(|t| (t.1, t.2));
                        model.retain(|t| t.1 > now);
                        let expected: Vec<u32> = due.iter().map(|t| t.0).collect();
                        prop_assert_eq!(expire(&mut wheel, now), expected);
                    }
                }
                prop_assert_eq!(wheel.next_deadline(), model.iter().map(|t| t.1).min());
                for t in &model {
                    prop_assert_eq!(wheel.deadline(t.0), Some(t.1));
                }
            }
        }
    }
}
