//! A recording host for unit tests, configured builder-style.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::{ForeignError, Host, LogLevel};

/// A foreign function the mock host offers.
pub type Foreign = Box<dyn Fn(&str, &[u8]) -> Result<Vec<u8>, ForeignError>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentResponse {
    pub context: u32,
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SentResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
}

/// Shared data is shared between mock hosts that clone the same `Rc`, so
/// tests can model several workers.
pub type SharedStore = std::rc::Rc<RefCell<HashMap<String, (Vec<u8>, u32)>>>;

#[derive(Default)]
pub struct MockHost {
    pub now_ms: Cell<u64>,
    pub context: Cell<u32>,
    /// Request headers per stream context.
    pub headers: RefCell<HashMap<u32, Vec<(String, String)>>>,
    pub responses: RefCell<Vec<SentResponse>>,
    pub resumed: RefCell<Vec<u32>>,
    pub logs: RefCell<Vec<(LogLevel, String)>>,
    pub metrics: RefCell<Vec<(String, u64)>>,
    pub shared: SharedStore,
    next_cas: Cell<u32>,
    pub calls: RefCell<Vec<Call>>,
    pub call_fails: Cell<bool>,
    /// The next this many compare-and-swaps lose, as if another worker had
    /// written the key in between.
    pub cas_losses: Cell<u32>,
    /// Contexts that no longer exist (the client went away).
    pub gone: RefCell<Vec<u32>>,
    /// Foreign functions: None means the host has none.
    pub foreign: RefCell<Option<Foreign>>,
    pub foreign_calls: RefCell<Vec<(String, Vec<u8>)>>,
}

impl MockHost {
    pub fn new(now_ms: u64) -> Self {
        let h = MockHost::default();
        h.now_ms.set(now_ms);
        h
    }

    pub fn sharing(now_ms: u64, shared: &SharedStore) -> Self {
        let h = Self::new(now_ms);
        let h = MockHost {
            shared: shared.clone(),
            ..h
        };
        h.next_cas.set(1000 * (1 + shared.borrow().len() as u32));
        h
    }

    /// Start a stream: make it current and give it these headers.
    pub fn request(&self, context: u32, headers: &[(&str, &str)]) {
        self.context.set(context);
        self.headers.borrow_mut().insert(
            context,
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    pub fn advance(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    pub fn metric(&self, name: &str) -> u64 {
        self.metrics
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    pub fn header_of(&self, context: u32, name: &str) -> Option<String> {
        self.headers.borrow().get(&context).and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    }

    pub fn last_response(&self) -> Option<SentResponse> {
        self.responses.borrow().last().cloned()
    }

    pub fn response_for(&self, context: u32) -> Option<SentResponse> {
        self.responses
            .borrow()
            .iter()
            .find(|r| r.context == context)
            .cloned()
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.logs.borrow().iter().any(|(_, m)| m.contains(needle))
    }
}

impl MockHost {
    /// Offer Envoy's `verify_signature`, done with p256 as BoringSSL would:
    /// a DER SubjectPublicKeyInfo and a DER ECDSA signature over SHA-256.
    pub fn with_native_verify(self) -> Self {
        *self.foreign.borrow_mut() = Some(Box::new(|name, args| {
            use p256::ecdsa::signature::Verifier as _;
            if name != "verify_signature" {
                return Err(ForeignError::NotFound);
            }
            let fields = parse_fields(args).ok_or(ForeignError::Failed)?;
            let get = |n: u8| {
                fields
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.as_slice())
            };
            if get(1) != Some(b"sha256".as_slice()) {
                return Err(ForeignError::Failed);
            }
            let spki = get(2).ok_or(ForeignError::Failed)?;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
                spki.get(26..).ok_or(ForeignError::Failed)?,
            )
            .map_err(|_| ForeignError::Failed)?;
            let ok = p256::ecdsa::Signature::from_der(get(3).unwrap_or_default())
                .map(|sig| key.verify(get(4).unwrap_or_default(), &sig).is_ok())
                .unwrap_or(false);
            Ok(if ok {
                vec![0x08, 0x01]
            } else {
                vec![0x08, 0x00, 0x12, 0x03, b'b', b'a', b'd']
            })
        }));
        self
    }
}

/// Length-delimited protobuf fields (all `VerifySignatureArguments` has).
fn parse_fields(mut b: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = b.split_first() {
        let (mut len, mut shift, mut i) = (0usize, 0, 0);
        loop {
            let byte = *rest.get(i)?;
            len |= usize::from(byte & 0x7f) << shift;
            i += 1;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let body = rest.get(i..i + len)?;
        out.push((tag >> 3, body.to_vec()));
        b = &rest[i + len..];
    }
    Some(out)
}

impl Host for MockHost {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }

    fn request_header(&self, name: &str) -> Option<String> {
        self.header_of(self.context.get(), name)
    }

    fn request_header_map(&self) -> Vec<u8> {
        let all = self.headers.borrow();
        let pairs: Vec<(String, &[u8])> = all
            .get(&self.context.get())
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes()))
                    .collect()
            })
            .unwrap_or_default();
        crate::headers::serialize(pairs.iter().map(|(k, v)| (k.as_bytes(), *v)))
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        let mut all = self.headers.borrow_mut();
        let h = all.entry(self.context.get()).or_default();
        h.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            h.push((name.to_owned(), v.to_owned()));
        }
    }

    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        self.responses.borrow_mut().push(SentResponse {
            context: self.context.get(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
    }

    fn resume_request(&self) {
        self.resumed.borrow_mut().push(self.context.get());
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        if self.gone.borrow().contains(&context_id) {
            return false;
        }
        self.context.set(context_id);
        true
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        let mut m = self.metrics.borrow_mut();
        if let Some(i) = m.iter().position(|(n, _)| n == name) {
            return u32::try_from(i).ok();
        }
        m.push((name.to_owned(), 0));
        u32::try_from(m.len() - 1).ok()
    }

    fn increment(&self, metric: u32, by: u64) {
        if let Some(m) = self.metrics.borrow_mut().get_mut(metric as usize) {
            m.1 += by;
        }
    }

    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.shared.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut store = self.shared.borrow_mut();
        if cas.is_some_and(|c| c != 0) && store.contains_key(key) && self.cas_losses.get() > 0 {
            self.cas_losses.set(self.cas_losses.get() - 1);
            return false;
        }
        // Envoy's rule: a CAS only guards keys that already exist.
        if let (Some(want), Some((_, have))) = (cas, store.get(key))
            && want != 0
            && want != *have
        {
            return false;
        }
        self.next_cas.set(self.next_cas.get() + 1);
        store.insert(key.to_owned(), (value.to_vec(), self.next_cas.get()));
        true
    }

    fn call_foreign(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError> {
        self.foreign_calls
            .borrow_mut()
            .push((name.to_owned(), args.to_vec()));
        match &*self.foreign.borrow() {
            Some(f) => f(name, args),
            None => Err(ForeignError::NotFound),
        }
    }

    fn http_call(&self, cluster: &str, headers: &[(&str, &str)], timeout_ms: u64) -> Option<u32> {
        if self.call_fails.get() {
            return None;
        }
        let mut calls = self.calls.borrow_mut();
        let token = 100 + calls.len() as u32;
        calls.push(Call {
            token,
            cluster: cluster.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout_ms,
        });
        Some(token)
    }
}
