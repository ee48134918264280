use mesh_auth_core::testing::{TestKey, jwks};

use super::*;
use crate::host::mock::{MockHost, SharedStore};

const T0: u64 = 1_800_000_000_000;

fn remote() -> KeySource {
    KeySource::Remote(RemoteJwks {
        cluster: "jwks".into(),
        authority: "ext-authz".into(),
        path: "/.well-known/jwks.json".into(),
        refresh_ms: 60_000,
        timeout_ms: 5_000,
        min_refetch_ms: 10_000,
        retry_ms: 5_000,
    })
}

/// Both halves of a tick, as the worker runs them, minus the waiters.
fn tick(k: &mut Keys, h: &MockHost, m: &Metrics) -> Option<(Change, Change)> {
    let (snapshot, read) = k.read_shared(h, m)?;
    Some((read, k.fetch_if_due(h, m, h.now_ms.get(), snapshot)))
}

/// Answer the latest call.
fn answer(k: &mut Keys, h: &MockHost, m: &Metrics, body: Option<&str>) -> Change {
    let token = h.calls.borrow().last().map(|c| c.token).unwrap();
    let status = body.map(|_| 200);
    k.on_response(h, m, token, status, body.map(|b| b.as_bytes().to_vec()))
}

#[test]
fn local_keys_have_no_lifecycle() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let m = Metrics::define(&h);
    let set = KeySet::from_jwks_json(jwks(&[&key]).as_bytes()).unwrap().0;
    let mut k = Keys::new(&h, &KeySource::Local(Arc::new(set)));
    assert!(k.current().is_some());
    assert_eq!(k.first_fetch_by(T0), None);
    assert_eq!(k.await_kid(&h, &m, "other", T0), None);
    assert!(tick(&mut k, &h, &m).is_none());
    assert!(h.calls.borrow().is_empty());
    assert!(h.shared.borrow().is_empty());
}

#[test]
fn each_step_says_what_changed() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let m = Metrics::define(&h);
    let mut k = Keys::new(&h, &remote());
    assert_eq!(k.first_fetch_by(T0), Some(T0), "the first fetch is due");
    assert_eq!(tick(&mut k, &h, &m), Some((Change::None, Change::None)));
    assert_eq!(h.calls.borrow().len(), 1);
    assert_eq!(k.settled_through(T0), None, "a fetch runs");
    assert_eq!(
        answer(&mut k, &h, &m, Some(&jwks(&[&key]))),
        Change::NewKeys
    );
    assert!(k.current().is_some());
    assert_eq!(k.settled_through(T0), Some(T0));
    // A response to a call that is not ours changes nothing.
    assert_eq!(k.on_response(&h, &m, 999, Some(200), None), Change::None);
    // The same document again, then a failure: the keys stay.
    for body in [Some(jwks(&[&key])), None] {
        h.advance(60_000);
        assert_eq!(tick(&mut k, &h, &m), Some((Change::None, Change::None)));
        assert_eq!(answer(&mut k, &h, &m, body.as_deref()), Change::FetchEnded);
        assert!(k.current().is_some());
    }
}

#[test]
fn another_workers_fetch_is_taken_up_on_the_tick() {
    let store: SharedStore = Default::default();
    let [h1, h2] = [(); 2].map(|()| MockHost::sharing(T0, &store));
    let key = TestKey::generate();
    let (m1, m2) = (Metrics::define(&h1), Metrics::define(&h2));
    let (mut k1, mut k2) = (Keys::new(&h1, &remote()), Keys::new(&h2, &remote()));
    tick(&mut k1, &h1, &m1);
    assert_eq!(tick(&mut k2, &h2, &m2), Some((Change::None, Change::None)));
    assert!(h2.calls.borrow().is_empty(), "the lease is taken");
    assert_eq!(k2.first_fetch_by(T0), Some(T0), "wait for worker 1's fetch");
    assert_eq!(
        answer(&mut k1, &h1, &m1, Some(&jwks(&[&key]))),
        Change::NewKeys
    );
    assert_eq!(
        tick(&mut k2, &h2, &m2),
        Some((Change::NewKeys, Change::None))
    );
    assert!(k2.current().is_some());
    assert!(h2.calls.borrow().is_empty());
}
