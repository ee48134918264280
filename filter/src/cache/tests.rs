use super::*;

fn allow() -> Outcome {
    Outcome::Allow { subject: None }
}

#[test]
fn hit_until_expiry() {
    let mut c = TokenCache::new(4);
    c.insert("t1", allow(), 100, 50);
    assert_eq!(c.get("t1", 100), Some(&allow()));
    assert_eq!(c.get("t1", 101), None);
    assert!(c.is_empty(), "expired entry is dropped on lookup");
}

#[test]
fn exact_key_only() {
    let mut c = TokenCache::new(4);
    c.insert("token", allow(), 100, 0);
    assert_eq!(c.get("token ", 0), None);
    assert_eq!(c.get("toke", 0), None);
}

#[test]
fn forbidden_outcomes_are_cached_too() {
    let mut c = TokenCache::new(4);
    let f = Outcome::Denied(InvokeDenial::NotPermitted("dev:env".into()));
    c.insert("t", f.clone(), 100, 0);
    assert_eq!(c.get("t", 1), Some(&f));
}

#[test]
fn bounded_with_expired_first_then_oldest() {
    let mut c = TokenCache::new(3);
    c.insert("a", allow(), 10, 0);
    c.insert("b", allow(), 100, 0);
    c.insert("c", allow(), 100, 0);
    // At t=20 "a" has expired: it goes first, "b" survives.
    c.insert("d", allow(), 100, 20);
    assert_eq!(c.len(), 3);
    assert!(c.get("b", 20).is_some());
    // Full of live entries: the oldest ("b") goes.
    c.insert("e", allow(), 100, 20);
    assert_eq!(c.len(), 3);
    assert!(c.get("b", 20).is_none());
    assert!(c.get("c", 20).is_some() && c.get("d", 20).is_some() && c.get("e", 20).is_some());
}

#[test]
fn reinsert_does_not_grow_order() {
    let mut c = TokenCache::new(2);
    for _ in 0..10 {
        c.insert("a", allow(), 100, 0);
    }
    c.insert("b", allow(), 100, 0);
    assert_eq!(c.len(), 2);
    assert_eq!(c.order.len(), 2);
}

#[test]
fn zero_capacity_disables() {
    let mut c = TokenCache::new(0);
    c.insert("a", allow(), 100, 0);
    assert!(c.get("a", 0).is_none());
}

#[test]
fn clear_empties() {
    let mut c = TokenCache::new(2);
    c.insert("a", allow(), 100, 0);
    c.clear();
    assert!(c.get("a", 0).is_none());
}

#[test]
fn tokens_sharing_a_tail_are_still_told_apart() {
    // Same length and same last 64 bytes: the same hash bucket.
    let tail = "s".repeat(64);
    let (a, b) = (format!("aaaa.{tail}"), format!("bbbb.{tail}"));
    let mut c = TokenCache::new(8);
    c.insert(&a, allow(), 100, 0);
    assert_eq!(
        c.get(&b, 0),
        None,
        "a lookup never matches on the hash alone"
    );
    let denied = Outcome::Denied(InvokeDenial::NotPermitted("x".into()));
    c.insert(&b, denied.clone(), 100, 0);
    assert_eq!(c.get(&a, 0), Some(&allow()));
    assert_eq!(c.get(&b, 0), Some(&denied));
    assert_eq!(c.len(), 2);
}

#[test]
fn a_cache_that_stays_under_capacity_does_not_grow() {
    // Tokens that expire and are looked up again leave the map; their place
    // in the eviction order must go too, or a worker that never fills its
    // cache grows without bound (a VM out of memory is a 503).
    let mut c = TokenCache::new(1024);
    for i in 0..100_000u64 {
        let token = format!("token-{i}");
        c.insert(&token, allow(), i + 1, i);
        assert!(c.get(&token, i + 2).is_none(), "expired");
        assert!(c.len() <= 1);
        assert!(
            c.order.len() <= 2 * c.len() + 16,
            "order: {}",
            c.order.len()
        );
    }
}
