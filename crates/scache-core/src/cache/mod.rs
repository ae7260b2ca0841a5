//! The connection cache of Postfix's scache_multi (spec §4), with its expiry timers.
//!
//! Two independent tables keyed by exact byte strings: endpoint label → cached sessions
//! (connections) and destination label → bindings (destination property + endpoint label),
//! each list in insertion order, each entry with its own deadline. A label is present only
//! while its list is non-empty. Lookups hand the session over (it leaves the cache); expiry
//! hands expired sessions to the caller, who closes them by dropping `C`.
//!
//! Trusts: the caller passes `now` from one monotonic clock and never goes backwards, and
//! passes a ttl that is positive and already clamped to `connection_cache_ttl_limit`.
//! `C` is opaque: the cache never looks inside it.
//!
//! Memory per session: one slab node holding the connection, the property and list links,
//! plus 32 bytes of timer. A label is stored once, in its list head, and indexed by its hash,
//! so sessions of one endpoint share it. Everything is O(1) amortised except the binding walks
//! of `save_dest`/`find_dest`, which are linear in the destination's bindings, as in Postfix.
//! A `Cache<C>` is `Send` when `C` is, but not `Sync`: `next_deadline` caches through cells.

mod clock;
mod wheel;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::iter;

use slab::Slab;

pub use clock::{Clock, ManualClock, Millis, MonotonicClock};
use wheel::Wheel;

/// Names one cached session. Ids are generation-checked: an id of a removed session never
/// matches a later one (until 2^29 further saves wrap the generation counter). The generation
/// has 29 bits so that an id, with room for a few tag bits, fits in an epoll token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SessionId {
    node: u32,
    generation: u32,
}

impl SessionId {
    pub fn to_u64(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.node)
    }

    pub fn from_u64(v: u64) -> Self {
        // Splitting the two halves back out is the intended truncation.
        Self { node: v as u32, generation: (v >> 32) as u32 }
    }
}

/// Label counts as Postfix's scache_size() reports them (spec §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Size {
    pub dest_count: usize,
    pub endp_count: usize,
    pub sess_count: usize,
}

/// A find_endp hit.
#[derive(Debug)]
pub struct Found<C> {
    pub id: SessionId,
    pub conn: C,
    pub property: Box<[u8]>,
}

/// A find_dest hit: the property of the binding used and that of the session.
#[derive(Debug)]
pub struct FoundDest<C> {
    pub id: SessionId,
    pub conn: C,
    pub dest_property: Box<[u8]>,
    pub endp_property: Box<[u8]>,
}

/// A session taken out of the cache other than by a lookup: expired, evicted or drained.
#[derive(Debug)]
pub struct Expired<C> {
    pub id: SessionId,
    pub endpoint: Box<[u8]>,
    pub conn: C,
}

/// What save_dest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Added,
    Refreshed,
}

/// One session, as [`Cache::endpoints`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView<'a> {
    pub id: SessionId,
    pub property: &'a [u8],
    pub saved_at: Millis,
    pub deadline: Millis,
}

/// One binding, as [`Cache::destinations`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingView<'a> {
    pub endpoint: &'a [u8],
    pub property: &'a [u8],
    pub deadline: Millis,
}

pub struct Cache<C> {
    endpoints: Table<Session<C>>,
    destinations: Table<Bound>,
    /// Keyed by the session's node in `endpoints`.
    session_timers: Wheel,
    /// Keyed by the binding's node in `destinations`.
    binding_timers: Wheel,
    /// Head of the list of all sessions in the order they were saved.
    oldest: Option<u32>,
    next_generation: u32,
}

struct Session<C> {
    conn: C,
    property: Box<[u8]>,
    saved_at: Millis,
    generation: u32,
    by_age: Links,
}

impl<C> Session<C> {
    fn id(&self, node: u32) -> SessionId {
        SessionId { node, generation: self.generation }
    }
}

/// A destination → endpoint binding.
struct Bound {
    endpoint: Box<[u8]>,
    property: Box<[u8]>,
}

const ARMED: &str = "every cached entry has a timer";

/// Session generations wrap at 2^29 (see `SessionId`).
const GENERATION_MASK: u32 = (1 << 29) - 1;

impl<C> Default for Cache<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> Cache<C> {
    pub fn new() -> Self {
        Self {
            endpoints: Table::new(),
            destinations: Table::new(),
            session_timers: Wheel::new(),
            binding_timers: Wheel::new(),
            oldest: None,
            next_generation: 0,
        }
    }

    /// Appends a session to `endpoint`'s list; never de-duplicates. `ttl_ms` > 0, already
    /// clamped by the caller.
    pub fn save_endp(&mut self, now: Millis, ttl_ms: Millis, endpoint: &[u8], property: &[u8], conn: C) -> SessionId {
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1) & GENERATION_MASK;
        // The age links are only known once the node is; `link_newest` sets them.
        let session = Session { conn, property: property.into(), saved_at: now, generation, by_age: Links::alone(0) };
        let node = self.endpoints.push(endpoint, session);
        self.link_newest(node);
        self.session_timers.arm(node, now.saturating_add(ttl_ms));
        SessionId { node, generation }
    }

    /// Takes the oldest session of `endpoint` (FIFO) out of the cache.
    pub fn find_endp(&mut self, endpoint: &[u8]) -> Option<Found<C>> {
        let node = self.endpoints.first(endpoint)?;
        let session = self.take(node);
        Some(Found { id: session.id(node), conn: session.conn, property: session.property })
    }

    /// Refreshes the binding with the same endpoint and property (new deadline now+ttl, same
    /// position), or appends a new one. The endpoint need not have sessions.
    pub fn save_dest(
        &mut self,
        now: Millis,
        ttl_ms: Millis,
        dest: &[u8],
        dest_property: &[u8],
        endpoint: &[u8],
    ) -> Binding {
        let same = |bound: &Bound| *bound.endpoint == *endpoint && *bound.property == *dest_property;
        let existing = self.destinations.list(dest).find(|(_, bound)| same(bound)).map(|(node, _)| node);
        let (node, outcome) = match existing {
            Some(node) => (node, Binding::Refreshed),
            None => {
                let bound = Bound { endpoint: endpoint.into(), property: dest_property.into() };
                (self.destinations.push(dest, bound), Binding::Added)
            }
        };
        self.binding_timers.arm(node, now.saturating_add(ttl_ms));
        outcome
    }

    /// Walks `dest`'s bindings oldest first; the first whose endpoint has a session wins and
    /// that session leaves the cache. Bindings are left as they are.
    pub fn find_dest(&mut self, dest: &[u8]) -> Option<FoundDest<C>> {
        let (bound, node) = self
            .destinations
            .list(dest)
            .find_map(|(bound, binding)| Some((bound, self.endpoints.first(&binding.endpoint)?)))?;
        let dest_property = self.destinations.value(bound).property.clone();
        let session = self.take(node);
        Some(FoundDest { id: session.id(node), conn: session.conn, dest_property, endp_property: session.property })
    }

    /// Removes one session by id (dead peer, cap eviction); None if it is already gone.
    pub fn remove(&mut self, id: SessionId) -> Option<Expired<C>> {
        let live = self.endpoints.get(id.node).is_some_and(|session| session.generation == id.generation);
        live.then(|| self.evict(id.node))
    }

    /// Removes the session saved longest ago; None when the cache holds none.
    pub fn remove_oldest(&mut self) -> Option<Expired<C>> {
        self.oldest.map(|node| self.evict(node))
    }

    /// How many sessions `endpoint` has.
    pub fn sessions_at(&self, endpoint: &[u8]) -> usize {
        self.endpoints.count(endpoint)
    }

    /// Removes the oldest session of `endpoint`, to make room for a newer one.
    pub fn remove_oldest_at(&mut self, endpoint: &[u8]) -> Option<Expired<C>> {
        let node = self.endpoints.first(endpoint)?;
        Some(self.evict(node))
    }

    pub fn size(&self) -> Size {
        Size {
            dest_count: self.destinations.labels(),
            endp_count: self.endpoints.labels(),
            sess_count: self.endpoints.len(),
        }
    }

    /// Removes everything whose deadline is <= `now`. Expired sessions go to `out` by
    /// deadline, equal deadlines in the order they were saved; the caller closes them by
    /// dropping `conn`. Expired bindings just go; their number is returned.
    pub fn expire(&mut self, now: Millis, out: &mut Vec<Expired<C>>) -> usize {
        let mut due = Vec::new();
        self.session_timers.expire(now, &mut due);
        out.extend(due.drain(..).map(|node| self.evict(node)));
        self.binding_timers.expire(now, &mut due);
        for &node in &due {
            self.destinations.remove(node);
        }
        due.len()
    }

    /// The earliest deadline of any session or binding, exactly, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Millis> {
        [self.session_timers.next_deadline(), self.binding_timers.next_deadline()].into_iter().flatten().min()
    }

    /// Removes and returns every session, oldest first (shutdown); bindings are dropped.
    pub fn drain(&mut self) -> Vec<Expired<C>> {
        let sessions = iter::from_fn(|| self.remove_oldest()).collect();
        self.destinations = Table::new();
        self.binding_timers = Wheel::new();
        sessions
    }

    /// Every endpoint label (in no particular order) with its sessions, oldest first.
    pub fn endpoints<'a>(&'a self) -> impl Iterator<Item = (&'a [u8], impl Iterator<Item = SessionView<'a>>)> {
        self.endpoints.iter().map(|(label, list)| {
            let view = |(node, session): (u32, &'a Session<C>)| SessionView {
                id: session.id(node),
                property: &session.property,
                saved_at: session.saved_at,
                deadline: self.session_timers.deadline(node).expect(ARMED),
            };
            (label, list.map(view))
        })
    }

    /// Every destination label (in no particular order) with its bindings, oldest first.
    pub fn destinations<'a>(&'a self) -> impl Iterator<Item = (&'a [u8], impl Iterator<Item = BindingView<'a>>)> {
        self.destinations.iter().map(|(label, list)| {
            let view = |(node, bound): (u32, &'a Bound)| BindingView {
                endpoint: &bound.endpoint,
                property: &bound.property,
                deadline: self.binding_timers.deadline(node).expect(ARMED),
            };
            (label, list.map(view))
        })
    }

    fn evict(&mut self, node: u32) -> Expired<C> {
        let endpoint = self.endpoints.label(node).into();
        let session = self.take(node);
        Expired { id: session.id(node), endpoint, conn: session.conn }
    }

    /// Takes a session out of its endpoint list, the age list and the wheel.
    fn take(&mut self, node: u32) -> Session<C> {
        self.session_timers.cancel(node);
        let next = unlink(&mut self.endpoints.nodes, node, age_links);
        if self.oldest == Some(node) {
            self.oldest = next;
        }
        self.endpoints.remove(node)
    }

    fn link_newest(&mut self, node: u32) {
        match self.oldest {
            Some(oldest) => link_before(&mut self.endpoints.nodes, oldest, node, age_links),
            None => {
                self.endpoints.nodes[ix(node)].value.by_age = Links::alone(node);
                self.oldest = Some(node);
            }
        }
    }
}

/// Labels mapped to circular lists of values in insertion order; a label is present only
/// while its list is non-empty. Nodes are slab keys, valid until removed.
struct Table<T, S = RandomState> {
    /// Keyed SipHash of a label → a head with that hash; the rare heads sharing a hash are
    /// chained through `Head::same_hash`. Keying by hash stores each label once, in its head.
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    hasher: S,
    heads: Slab<Head>,
    nodes: Slab<Node<T>>,
}

struct Head {
    label: Box<[u8]>,
    first: u32,
    same_hash: u32,
    /// Nodes in this label's list.
    count: u32,
}

struct Node<T> {
    value: T,
    head: u32,
    links: Links,
}

/// Ends a `same_hash` chain.
const NONE: u32 = u32::MAX;

impl<T> Table<T> {
    fn new() -> Self {
        Self::with_hasher(RandomState::new())
    }
}

impl<T, S: BuildHasher> Table<T, S> {
    fn with_hasher(hasher: S) -> Self {
        Self { index: HashMap::default(), hasher, heads: Slab::new(), nodes: Slab::new() }
    }

    fn labels(&self) -> usize {
        self.heads.len()
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn head(&self, label: &[u8]) -> Option<u32> {
        let entry = self.index.get(&self.hasher.hash_one(label)).copied();
        let same_hash = |&head: &u32| Some(self.heads[ix(head)].same_hash).filter(|&next| next != NONE);
        iter::successors(entry, same_hash).find(|&head| *self.heads[ix(head)].label == *label)
    }

    fn first(&self, label: &[u8]) -> Option<u32> {
        self.head(label).map(|head| self.heads[ix(head)].first)
    }

    fn count(&self, label: &[u8]) -> usize {
        self.head(label).map_or(0, |head| self.heads[ix(head)].count as usize)
    }

    fn get(&self, node: u32) -> Option<&T> {
        self.nodes.get(ix(node)).map(|n| &n.value)
    }

    fn value(&self, node: u32) -> &T {
        &self.nodes[ix(node)].value
    }

    fn label(&self, node: u32) -> &[u8] {
        &self.heads[ix(self.nodes[ix(node)].head)].label
    }

    /// `label`'s list, oldest first; empty if the label is absent.
    fn list(&self, label: &[u8]) -> impl Iterator<Item = (u32, &T)> {
        let first = self.first(label);
        first.into_iter().flat_map(|first| self.walk(first))
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], impl Iterator<Item = (u32, &T)>)> {
        self.heads.iter().map(|(_, head)| (&*head.label, self.walk(head.first)))
    }

    fn walk(&self, first: u32) -> impl Iterator<Item = (u32, &T)> {
        let next = move |&node: &u32| Some(self.nodes[ix(node)].links.next).filter(|&next| next != first);
        iter::successors(Some(first), next).map(|node| (node, self.value(node)))
    }

    /// Appends `value` to `label`'s list, creating the label if needed.
    fn push(&mut self, label: &[u8], value: T) -> u32 {
        let node = key(self.nodes.vacant_key());
        let head = match self.head(label) {
            Some(head) => head,
            None => self.add_head(label, node),
        };
        self.nodes.insert(Node { value, head, links: Links::alone(node) });
        self.heads[ix(head)].count += 1;
        let first = self.heads[ix(head)].first;
        if first != node {
            link_before(&mut self.nodes, first, node, node_links);
        }
        node
    }

    fn add_head(&mut self, label: &[u8], first: u32) -> u32 {
        let head = key(self.heads.vacant_key());
        let same_hash = self.index.insert(self.hasher.hash_one(label), head).unwrap_or(NONE);
        self.heads.insert(Head { label: label.into(), first, same_hash, count: 0 });
        head
    }

    /// Removes a node, and its label when the list becomes empty.
    fn remove(&mut self, node: u32) -> T {
        let head = self.nodes[ix(node)].head;
        match unlink(&mut self.nodes, node, node_links) {
            None => self.remove_head(head),
            Some(next) => {
                let head = &mut self.heads[ix(head)];
                head.count -= 1;
                if head.first == node {
                    head.first = next;
                }
            }
        }
        self.nodes.remove(ix(node)).value
    }

    fn remove_head(&mut self, head: u32) {
        let gone = self.heads.remove(ix(head));
        let hash = self.hasher.hash_one(&*gone.label);
        let chained = self.index.get_mut(&hash).expect("every head is indexed");
        if *chained == head {
            match gone.same_hash {
                NONE => drop(self.index.remove(&hash)),
                next => *chained = next,
            }
            return;
        }
        let mut at = *chained;
        while self.heads[ix(at)].same_hash != head {
            at = self.heads[ix(at)].same_hash;
        }
        self.heads[ix(at)].same_hash = gone.same_hash;
    }
}

/// Passes a precomputed hash through, so the index does not hash its keys a second time.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; fold anything else in rather than lose it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// Links of a circular doubly-linked list threaded through a slab; a list is named by its
/// first node, and the node before the first is the last.
#[derive(Clone, Copy)]
struct Links {
    prev: u32,
    next: u32,
}

impl Links {
    fn alone(node: u32) -> Self {
        Links { prev: node, next: node }
    }
}

fn node_links<T>(node: &mut Node<T>) -> &mut Links {
    &mut node.links
}

fn age_links<C>(node: &mut Node<Session<C>>) -> &mut Links {
    &mut node.value.by_age
}

/// Puts `new` just before `at`; before the first node means at the end of the list.
fn link_before<T>(slab: &mut Slab<T>, at: u32, new: u32, links: impl Fn(&mut T) -> &mut Links) {
    let prev = links(&mut slab[ix(at)]).prev;
    *links(&mut slab[ix(new)]) = Links { prev, next: at };
    links(&mut slab[ix(prev)]).next = new;
    links(&mut slab[ix(at)]).prev = new;
}

/// Takes `node` out of its list; returns its successor, or None if it was alone.
fn unlink<T>(slab: &mut Slab<T>, node: u32, links: impl Fn(&mut T) -> &mut Links) -> Option<u32> {
    let Links { prev, next } = *links(&mut slab[ix(node)]);
    if next == node {
        return None;
    }
    links(&mut slab[ix(prev)]).next = next;
    links(&mut slab[ix(next)]).prev = prev;
    Some(next)
}

fn ix(node: u32) -> usize {
    node as usize
}

fn key(slab_key: usize) -> u32 {
    u32::try_from(slab_key).expect("fewer than 2^32 cache entries")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn expire(cache: &mut Cache<u32>, now: Millis) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        cache.expire(now, &mut out);
        out.into_iter().map(|e| (e.conn, e.endpoint.into())).collect()
    }

    fn conns(cache: &Cache<u32>) -> Vec<SessionId> {
        let mut ids: Vec<_> = cache.endpoints().flat_map(|(_, list)| list.map(|s| s.id)).collect();
        ids.sort_by_key(|id| id.to_u64());
        ids
    }

    #[test]
    fn a_cache_of_descriptors_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Cache<std::os::fd::OwnedFd>>();
    }

    #[test]
    fn find_endp_is_fifo_and_saves_never_deduplicate() {
        let mut cache = Cache::new();
        for conn in 1..=3 {
            cache.save_endp(0, 1_000, b"e", b"p", conn);
        }
        let size = Size { dest_count: 0, endp_count: 1, sess_count: 3 };
        assert_eq!(cache.size(), size);
        let found: Vec<u32> = iter::from_fn(|| cache.find_endp(b"e")).map(|f| f.conn).collect();
        assert_eq!(found, [1, 2, 3]);
        assert_eq!(cache.size(), Size::default());
        assert_eq!(cache.next_deadline(), None);
    }

    #[test]
    fn ids_round_trip_and_are_not_reused() {
        let mut cache = Cache::new();
        let old = cache.save_endp(0, 1_000, b"e", b"p", 1);
        assert_eq!(SessionId::from_u64(old.to_u64()), old);
        assert_eq!(cache.find_endp(b"e").map(|f| f.id), Some(old));
        let new = cache.save_endp(0, 1_000, b"e", b"p", 2);
        assert_ne!(new, old);
        assert!(cache.remove(old).is_none());
        assert!(cache.remove(SessionId::from_u64(u64::MAX)).is_none());
        let removed = cache.remove(new).expect("live id");
        assert_eq!((removed.conn, &*removed.endpoint), (2, &b"e"[..]));
        assert!(cache.remove(new).is_none());
    }

    #[test]
    fn counts_and_trims_one_endpoint() {
        let mut cache = Cache::new();
        for conn in 0..3 {
            cache.save_endp(0, 1_000, b"e", b"", conn);
        }
        cache.save_endp(0, 1_000, b"f", b"", 9);
        assert_eq!((cache.sessions_at(b"e"), cache.sessions_at(b"f"), cache.sessions_at(b"g")), (3, 1, 0));
        assert_eq!(cache.remove_oldest_at(b"e").map(|e| e.conn), Some(0));
        assert_eq!(cache.sessions_at(b"e"), 2);
        assert_eq!(cache.find_endp(b"e").map(|f| f.conn), Some(1));
        assert!(cache.remove_oldest_at(b"g").is_none());
    }

    #[test]
    fn generations_wrap_within_29_bits() {
        let mut cache = Cache::new();
        cache.next_generation = GENERATION_MASK;
        let last = cache.save_endp(0, 1_000, b"e", b"", 1);
        let wrapped = cache.save_endp(0, 1_000, b"e", b"", 2);
        assert!(last.to_u64() < 1 << 61 && wrapped.to_u64() < 1 << 61);
        assert_ne!(last, wrapped);
    }

    #[test]
    fn removing_from_the_middle_keeps_both_orders() {
        let mut cache = Cache::new();
        let ids: Vec<_> = (0..5).map(|conn| cache.save_endp(0, 1_000, &[b'a' + conn as u8 % 2], b"", conn)).collect();
        assert_eq!(cache.remove(ids[2]).map(|e| e.conn), Some(2));
        assert_eq!(cache.remove(ids[0]).map(|e| e.conn), Some(0));
        assert_eq!(cache.find_endp(b"a").map(|f| f.conn), Some(4));
        let rest: Vec<u32> = iter::from_fn(|| cache.remove_oldest()).map(|e| e.conn).collect();
        assert_eq!(rest, [1, 3]);
        assert_eq!(cache.size(), Size::default());
    }

    #[test]
    fn bindings_refresh_in_place_and_outlive_sessions() {
        let mut cache = Cache::new();
        assert_eq!(cache.save_dest(0, 5_000, b"d", b"p1", b"e1"), Binding::Added);
        assert_eq!(cache.save_dest(0, 5_000, b"d", b"p2", b"e2"), Binding::Added);
        assert_eq!(cache.save_dest(1_000, 1_000, b"d", b"p1", b"e1"), Binding::Refreshed);
        let view: Vec<_> =
            cache.destinations().flat_map(|(_, list)| list.map(|b| (b.endpoint.to_vec(), b.deadline))).collect();
        assert_eq!(view, [(b"e1".to_vec(), 2_000), (b"e2".to_vec(), 5_000)]);
        assert!(cache.find_dest(b"d").is_none());
        cache.save_endp(1_000, 9_000, b"e2", b"ep", 7);
        let hit = cache.find_dest(b"d").expect("e2 has a session");
        assert_eq!((hit.conn, &*hit.dest_property, &*hit.endp_property), (7, &b"p2"[..], &b"ep"[..]));
        assert_eq!(cache.next_deadline(), Some(2_000));
        assert!(expire(&mut cache, 2_000).is_empty());
        assert_eq!(cache.size().dest_count, 1);
        cache.save_endp(3_000, 9_000, b"e2", b"ep", 8);
        assert_eq!(cache.find_dest(b"d").map(|f| f.conn), Some(8));
    }

    #[test]
    fn expire_reports_sessions_by_deadline_then_save_order() {
        let mut cache = Cache::new();
        cache.save_endp(0, 2_000, b"x", b"", 1);
        cache.save_endp(0, 1_000, b"y", b"", 2);
        cache.save_endp(1_000, 1_000, b"x", b"", 3);
        cache.save_endp(500, 500, b"z", b"", 4);
        cache.save_dest(0, 1_500, b"d", b"", b"x");
        let mut out = Vec::new();
        assert_eq!(cache.expire(2_000, &mut out), 1);
        let got: Vec<_> = out.iter().map(|e| (e.conn, &*e.endpoint)).collect();
        assert_eq!(got, [(2, &b"y"[..]), (4, b"z"), (1, b"x"), (3, b"x")]);
        assert_eq!(cache.size(), Size::default());
    }

    #[test]
    fn drain_returns_sessions_oldest_first_and_forgets_bindings() {
        let mut cache = Cache::new();
        cache.save_endp(0, 1_000, b"b", b"", 1);
        cache.save_endp(0, 1_000, b"a", b"", 2);
        cache.save_dest(0, 1_000, b"d", b"", b"a");
        let drained: Vec<u32> = cache.drain().into_iter().map(|e| e.conn).collect();
        assert_eq!(drained, [1, 2]);
        assert_eq!(cache.size(), Size::default());
        assert_eq!(cache.next_deadline(), None);
        let id = cache.save_endp(2_000, 1_000, b"a", b"", 3);
        assert_eq!(conns(&cache), [id]);
        assert_eq!(cache.next_deadline(), Some(3_000));
    }

    #[test]
    fn a_crowded_endpoint_and_many_endpoints_stay_cheap() {
        // Quadratic behaviour would make this take minutes in a debug build.
        let mut cache = Cache::new();
        for conn in 0..20_000 {
            cache.save_endp(conn.into(), 60_000, b"busy", b"", conn);
        }
        for conn in 0..100_000u32 {
            cache.save_endp(0, 60_000, &conn.to_le_bytes(), b"", conn);
        }
        for conn in 0..20_000 {
            assert_eq!(cache.find_endp(b"busy").map(|f| f.conn), Some(conn));
        }
        assert_eq!(cache.size(), Size { dest_count: 0, endp_count: 100_000, sess_count: 100_000 });
        assert_eq!(expire(&mut cache, 60_000).len(), 100_000);
    }

    /// Every label hashes alike, so all heads share one chain.
    #[derive(Default)]
    struct Collide;

    impl Hasher for Collide {
        fn finish(&self) -> u64 {
            42
        }

        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn labels_with_equal_hashes_stay_apart() {
        let mut table: Table<u32, BuildHasherDefault<Collide>> = Table::with_hasher(BuildHasherDefault::default());
        let labels: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];
        let nodes: Vec<u32> = (0..8).map(|i| table.push(labels[i % 4], i as u32)).collect();
        let firsts = |table: &Table<u32, _>| labels.map(|l| table.first(l).map(|n| *table.value(n)));
        assert_eq!(firsts(&table), [Some(0), Some(1), Some(2), Some(3)]);
        // Empty "b" (mid-chain), then "d" (the chain's entry point), then "a" (its end).
        for i in [1, 5, 3, 7, 0, 4] {
            table.remove(nodes[i]);
        }
        assert_eq!(firsts(&table), [None, None, Some(2), None]);
        assert_eq!(table.labels(), 1);
        assert_eq!(table.push(b"a", 9), nodes[4]);
        assert_eq!(firsts(&table), [Some(9), None, Some(2), None]);
        let all: Vec<(&[u8], Vec<u32>)> = {
            let mut all: Vec<_> = table.iter().map(|(l, list)| (l, list.map(|(_, v)| *v).collect())).collect();
            all.sort();
            all
        };
        assert_eq!(all, [(&b"a"[..], vec![9]), (&b"c"[..], vec![2, 6])]);
    }

    /// Labels shared by both name spaces, so collisions between them get exercised.
    const LABELS: [&[u8]; 4] = [b"a", b"b", b"A", b""];
    const PROPS: [&[u8]; 2] = [b"p", b"q"];

    #[derive(Clone, Debug)]
    enum Op {
        SaveEndp { ttl: Millis, endpoint: usize, property: usize },
        FindEndp(usize),
        SaveDest { ttl: Millis, dest: usize, property: usize, endpoint: usize },
        FindDest(usize),
        Remove(usize),
        RemoveOldest,
        Advance(Millis),
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        let ttl = prop_oneof![Just(10), Just(1_000), 1..3_000u64, Just(20_000)];
        let advance = prop_oneof![Just(0), Just(10), 1..1_500u64, Just(6_000)];
        let label = 0..LABELS.len();
        let prop = 0..PROPS.len();
        prop_oneof![
            6 => (ttl.clone(), label.clone(), prop.clone())
                .prop_map(|(ttl, endpoint, property)| Op::SaveEndp { ttl, endpoint, property }),
            3 => label.clone().prop_map(Op::FindEndp),
            4 => (ttl, label.clone(), prop, label.clone())
                .prop_map(|(ttl, dest, property, endpoint)| Op::SaveDest { ttl, dest, property, endpoint }),
            3 => label.prop_map(Op::FindDest),
            1 => any::<usize>().prop_map(Op::Remove),
            1 => Just(Op::RemoveOldest),
            4 => advance.prop_map(Op::Advance),
            1 => Just(Op::Drain),
        ]
    }

    struct ModelSession {
        conn: u32,
        endpoint: &'static [u8],
        property: &'static [u8],
        saved_at: Millis,
        deadline: Millis,
    }

    struct ModelBinding {
        dest: &'static [u8],
        endpoint: &'static [u8],
        property: &'static [u8],
        deadline: Millis,
    }

    /// The obviously correct cache: two vectors in creation order, searched linearly.
    #[derive(Default)]
    struct Model {
        sessions: Vec<ModelSession>,
        bindings: Vec<ModelBinding>,
    }

    type Taken = Option<(u32, Vec<u8>)>;

    impl Model {
        fn find_endp(&mut self, endpoint: &[u8]) -> Taken {
            let at = self.sessions.iter().position(|s| s.endpoint == endpoint)?;
            let s = self.sessions.remove(at);
            Some((s.conn, s.property.to_vec()))
        }

        fn save_dest(
            &mut self,
            deadline: Millis,
            dest: &'static [u8],
            property: &'static [u8],
            endpoint: &'static [u8],
        ) -> Binding {
            let same = |b: &&mut ModelBinding| b.dest == dest && b.property == property && b.endpoint == endpoint;
            match self.bindings.iter_mut().find(same) {
                Some(b) => {
                    b.deadline = deadline;
                    Binding::Refreshed
                }
                None => {
                    self.bindings.push(ModelBinding { dest, endpoint, property, deadline });
                    Binding::Added
                }
            }
        }

        fn find_dest(&mut self, dest: &[u8]) -> Option<(u32, Vec<u8>, Vec<u8>)> {
            let endpoints: Vec<_> =
                self.bindings.iter().filter(|b| b.dest == dest).map(|b| (b.endpoint, b.property)).collect();
            endpoints.into_iter().find_map(|(e, p)| self.find_endp(e).map(|(conn, ep)| (conn, p.to_vec(), ep)))
        }

        fn remove(&mut self, conn: u32) -> Taken {
            let at = self.sessions.iter().position(|s| s.conn == conn)?;
            let s = self.sessions.remove(at);
            Some((s.conn, s.endpoint.to_vec()))
        }

        fn expire(&mut self, now: Millis) -> (Vec<(u32, Vec<u8>)>, usize) {
            let mut due: Vec<_> = self
                .sessions
                .iter()
                .filter(|s| s.deadline <= now)
                .map(|s| (s.deadline, s.conn, s.endpoint.to_vec()))
                .collect();
            due.sort_by_key(|d| d.0); // stable: ties keep creation order
            self.sessions.retain(|s| s.deadline > now);
            let bindings = self.bindings.len();
            self.bindings.retain(|b| b.deadline > now);
            (due.into_iter().map(|(_, conn, e)| (conn, e)).collect(), bindings - self.bindings.len())
        }

        fn size(&self) -> Size {
            let distinct = |mut labels: Vec<&[u8]>| {
                labels.sort();
                labels.dedup();
                labels.len()
            };
            Size {
                dest_count: distinct(self.bindings.iter().map(|b| b.dest).collect()),
                endp_count: distinct(self.sessions.iter().map(|s| s.endpoint).collect()),
                sess_count: self.sessions.len(),
            }
        }

        fn next_deadline(&self) -> Option<Millis> {
            let sessions = self.sessions.iter().map(|s| s.deadline);
            sessions.chain(self.bindings.iter().map(|b| b.deadline)).min()
        }
    }

    /// Checks the read-only views against the model, translating ids to conns with `ids`.
    fn check_views(cache: &Cache<u32>, model: &Model, ids: &HashMap<SessionId, u32>) -> Result<(), TestCaseError> {
        for (label, list) in cache.endpoints() {
            let got: Vec<_> = list.map(|s| (ids[&s.id], s.property.to_vec(), s.saved_at, s.deadline)).collect();
            let sessions = model.sessions.iter().filter(|s| s.endpoint == label);
            let want: Vec<_> = sessions.map(|s| (s.conn, s.property.to_vec(), s.saved_at, s.deadline)).collect();
            prop_assert_eq!(got, want);
        }
        for (label, list) in cache.destinations() {
            let got: Vec<_> = list.map(|b| (b.endpoint.to_vec(), b.property.to_vec(), b.deadline)).collect();
            let bindings = model.bindings.iter().filter(|b| b.dest == label);
            let want: Vec<_> = bindings.map(|b| (b.endpoint.to_vec(), b.property.to_vec(), b.deadline)).collect();
            prop_assert_eq!(got, want);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn behaves_like_the_model(ops in prop::collection::vec(op(), 1..120)) {
            let (mut cache, mut model) = (Cache::new(), Model::default());
            let mut ids = HashMap::new();
            let mut issued = Vec::new();
            let (mut now, mut next_conn) = (0, 0);
            for op in ops {
                match op {
                    Op::SaveEndp { ttl, endpoint, property } => {
                        let (endpoint, property) = (LABELS[endpoint], PROPS[property]);
                        let id = cache.save_endp(now, ttl, endpoint, property, next_conn);
                        prop_assert!(ids.insert(id, next_conn).is_none(), "id {:?} issued twice", id);
                        issued.push(id);
                        let session = ModelSession { conn: next_conn, endpoint, property, saved_at: now, deadline: now + ttl };
                        model.sessions.push(session);
                        next_conn += 1;
                    }
                    Op::FindEndp(label) => {
                        let got = cache.find_endp(LABELS[label]);
                        if let Some(found) = &got {
                            prop_assert_eq!(ids[&found.id], found.conn);
                        }
                        prop_assert_eq!(got.map(|f| (f.conn, f.property.into())), model.find_endp(LABELS[label]));
                    }
                    Op::SaveDest { ttl, dest, property, endpoint } => {
                        let (dest, property, endpoint) = (LABELS[dest], PROPS[property], LABELS[endpoint]);
                        let got = cache.save_dest(now, ttl, dest, property, endpoint);
                        prop_assert_eq!(got, model.save_dest(now + ttl, dest, property, endpoint));
                    }
                    Op::FindDest(label) => {
                        let got = cache.find_dest(LABELS[label]);
                        if let Some(found) = &got {
                            prop_assert_eq!(ids[&found.id], found.conn);
                        }
                        let got = got.map(|f| (f.conn, f.dest_property.into(), f.endp_property.into()));
                        prop_assert_eq!(got, model.find_dest(LABELS[label]));
                    }
                    Op::Remove(pick) if !issued.is_empty() => {
                        let id = issued[pick % issued.len()];
                        let got = cache.remove(id).map(|e| (e.conn, e.endpoint.into()));
                        prop_assert_eq!(got, model.remove(ids[&id]));
                    }
                    Op::Remove(_) => prop_assert!(cache.remove(SessionId::from_u64(0)).is_none()),
                    Op::RemoveOldest => {
                        let oldest = model.sessions.first().map(|s| s.conn);
                        let got = cache.remove_oldest().map(|e| (e.conn, e.endpoint.into()));
                        prop_assert_eq!(got, oldest.and_then(|conn| model.remove(conn)));
                    }
                    Op::Advance(by) => {
                        now += by;
                        let mut out = Vec::new();
                        let bindings = cache.expire(now, &mut out);
                        let got: Vec<_> = out.into_iter().map(|e| (e.conn, e.endpoint.into())).collect();
                        prop_assert_eq!((got, bindings), model.expire(now));
                    }
                    Op::Drain => {
                        let got: Vec<u32> = cache.drain().into_iter().map(|e| e.conn).collect();
                        let want: Vec<u32> = model.sessions.drain(..).map(|s| s.conn).collect();
                        model.bindings.clear();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(cache.size(), model.size());
                prop_assert_eq!(cache.next_deadline(), model.next_deadline());
                check_views(&cache, &model, &ids)?;
            }
        }
    }
}
