//! A bounded cache of verification outcomes, so a repeated token costs a
//! hash and a lookup instead of an ECDSA verification.
//!
//! Only tokens that verified are cached (with their allow or 403 outcome),
//! so a flood of bad tokens cannot evict good entries. Entries die at the
//! token's `exp` (plus leeway) and the whole cache is cleared when the key
//! set changes, so a withdrawn key stops working at once. Entries are found
//! by a hash of the token's tail and matched on the whole token: equality is
//! exact, never a bare hash that could collide.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use mesh_auth_core::InvokeDenial;

/// What a verified token may do here: pass, or be refused (403, or 401 for
/// an API token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow { subject: Option<Rc<str>> },
    Denied(InvokeDenial),
}

#[derive(Debug)]
struct Entry {
    token: Rc<str>,
    outcome: Outcome,
    /// Last second at which the token is still accepted (exp + leeway).
    valid_until: u64,
}

/// Entries by a hash of the token's tail: the signature, which is random,
/// so 64 bytes spread as well as all 700 and cost a tenth to hash. Equality
/// is still the whole token.
type Buckets = HashMap<u64, Vec<Entry>, BuildHasherDefault<IdentityHasher>>;

/// The key is already a hash.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Fixed SipHash keys: no host randomness needed, and only tokens with a
/// valid signature are ever inserted, so collisions cannot be farmed.
fn key(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    let mut h = DefaultHasher::new();
    h.write_usize(bytes.len());
    h.write(tail);
    h.finish()
}

#[derive(Debug, Default)]
pub struct TokenCache {
    map: Buckets,
    /// Insertion order, for evicting the oldest.
    order: VecDeque<(u64, Rc<str>)>,
    len: usize,
    capacity: usize,
}

impl std::fmt::Debug for IdentityHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHasher")
    }
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            map: HashMap::with_capacity_and_hasher(capacity.min(4096), Default::default()),
            order: VecDeque::with_capacity(capacity.min(4096)),
            len: 0,
            capacity,
        }
    }

    pub fn get(&mut self, token: &str, now: u64) -> Option<&Outcome> {
        let k = key(token);
        let bucket = self.map.get_mut(&k)?;
        let i = bucket.iter().position(|e| &*e.token == token)?;
        if bucket[i].valid_until < now {
            bucket.swap_remove(i);
            self.len -= 1;
            if bucket.is_empty() {
                self.map.remove(&k);
            }
            return None;
        }
        self.map.get(&k).and_then(|b| b.get(i)).map(|e| &e.outcome)
    }

    pub fn insert(&mut self, token: &str, outcome: Outcome, valid_until: u64, now: u64) {
        if self.capacity == 0 || valid_until < now {
            return;
        }
        let k = key(token);
        if let Some(e) = self
            .map
            .get_mut(&k)
            .and_then(|b| b.iter_mut().find(|e| &*e.token == token))
        {
            e.outcome = outcome;
            e.valid_until = valid_until;
            return;
        }
        if self.len >= self.capacity {
            self.evict(now);
        }
        let token: Rc<str> = Rc::from(token);
        // `get` drops expired entries from the map but cannot find them in
        // `order` cheaply: forget those here, before they pile up.
        if self.order.len() >= 2 * self.len + 16 {
            self.compact_order();
        }
        self.order.push_back((k, token.clone()));
        self.map.entry(k).or_default().push(Entry {
            token,
            outcome,
            valid_until,
        });
        self.len += 1;
    }

    /// Keep in `order` only the tokens still in the map.
    fn compact_order(&mut self) {
        let map = &self.map;
        self.order.retain(|(k, t)| {
            map.get(k)
                .is_some_and(|b| b.iter().any(|e| Rc::ptr_eq(&e.token, t)))
        });
    }

    /// Drop expired entries; if still nearly full, drop the oldest eighth,
    /// so a stream of new tokens pays for the sweep once per many inserts.
    fn evict(&mut self, now: u64) {
        for bucket in self.map.values_mut() {
            bucket.retain(|e| e.valid_until >= now);
        }
        self.map.retain(|_, b| !b.is_empty());
        self.compact_order();
        self.len = self.map.values().map(Vec::len).sum();
        let target = self.capacity - (self.capacity / 8).max(1);
        while self.len > target {
            let Some((k, oldest)) = self.order.pop_front() else {
                break;
            };
            if let Some(bucket) = self.map.get_mut(&k) {
                let before = bucket.len();
                bucket.retain(|e| !Rc::ptr_eq(&e.token, &oldest));
                self.len -= before - bucket.len();
                if bucket.is_empty() {
                    self.map.remove(&k);
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
        self.len = 0;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests;
