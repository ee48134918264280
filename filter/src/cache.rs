//! A bounded cache of verification outcomes, so a repeated token costs a
//! hash and a lookup instead of an ECDSA verification.
//!
//! Only tokens that verified are cached (with their allow or 403 outcome),
//! so a flood of bad tokens cannot evict good entries. Entries die at the
//! token's `exp` (plus leeway) and the whole cache is cleared when the key
//! set changes, so a withdrawn key stops working at once. The full token is
//! the key: equality is exact, never a bare hash that could collide.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
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
    outcome: Outcome,
    /// Last second at which the token is still accepted (exp + leeway).
    valid_until: u64,
}

/// Fixed SipHash keys: no host randomness needed, and only tokens with a
/// valid signature are ever inserted, so collisions cannot be farmed.
type Hasher = BuildHasherDefault<DefaultHasher>;

#[derive(Debug)]
pub struct TokenCache {
    map: HashMap<Rc<str>, Entry, Hasher>,
    order: VecDeque<Rc<str>>,
    capacity: usize,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            map: HashMap::with_capacity_and_hasher(capacity.min(4096), Hasher::default()),
            order: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
        }
    }

    pub fn get(&mut self, token: &str, now: u64) -> Option<&Outcome> {
        let expired = self.map.get(token)?.valid_until < now;
        if expired {
            self.map.remove(token);
            return None;
        }
        self.map.get(token).map(|e| &e.outcome)
    }

    pub fn insert(&mut self, token: &str, outcome: Outcome, valid_until: u64, now: u64) {
        if self.capacity == 0 || valid_until < now {
            return;
        }
        if self.map.len() >= self.capacity {
            self.evict(now);
        }
        let key: Rc<str> = Rc::from(token);
        if self
            .map
            .insert(
                key.clone(),
                Entry {
                    outcome,
                    valid_until,
                },
            )
            .is_none()
        {
            self.order.push_back(key);
        }
    }

    /// Drop expired entries; if still nearly full, drop the oldest eighth,
    /// so a stream of new tokens pays for the sweep once per many inserts.
    fn evict(&mut self, now: u64) {
        self.map.retain(|_, e| e.valid_until >= now);
        let map = &self.map;
        self.order.retain(|k| map.contains_key(k));
        let target = self.capacity - (self.capacity / 8).max(1);
        while self.map.len() > target {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.map.remove(&oldest);
                }
                None => break,
            }
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests;
