//! The token endpoint's form parser (`ExchangeRequest::parse`), which reads
//! the query string and the `application/x-www-form-urlencoded` body of
//! `POST /oauth/token` from anyone.
//!
//! Input: the query string, a NUL, the body.
//!
//! Properties:
//! * at most 64 audiences, none empty, none repeated;
//! * no query is the same as an empty one;
//! * a body also given as the query (every parameter twice, with the same
//!   value) parses as the body alone;
//! * what was parsed, written back as a form, parses to the same request.

use ext_authz::exchange::ExchangeRequest;

const MAX_AUDIENCES: usize = 64;

pub fn token_form(data: &[u8]) {
    let (query, body) = crate::split_nul(data);
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let parsed = ExchangeRequest::parse(Some(query), body);
    if query.is_empty() {
        assert_eq!(
            parsed.as_ref().ok(),
            ExchangeRequest::parse(None, body).as_ref().ok()
        );
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let alone = ExchangeRequest::parse(None, body);
        let twice = ExchangeRequest::parse(Some(text), body);
        assert_eq!(
            alone.as_ref().ok(),
            twice.as_ref().ok(),
            "the body as query and body parses differently: {text:?}"
        );
        assert_eq!(alone.is_ok(), twice.is_ok());
    }
    let Ok(req) = parsed else { return };
    assert!(
        req.audiences.len() <= MAX_AUDIENCES,
        "{} audiences",
        req.audiences.len()
    );
    for (i, a) in req.audiences.iter().enumerate() {
        assert!(!a.is_empty(), "an empty audience");
        assert!(!req.audiences[..i].contains(a), "audience {a:?} twice");
    }

    let mut form = form_urlencoded::Serializer::new(String::new());
    let fields = [
        ("grant_type", &req.grant_type),
        ("subject_token", &req.subject_token),
        ("subject_token_type", &req.subject_token_type),
        ("requested_token_type", &req.requested_token_type),
        ("scope", &req.scope),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            form.append_pair(name, v);
        }
    }
    for a in &req.audiences {
        form.append_pair("audience", a);
    }
    let written = form.finish();
    let reparsed = ExchangeRequest::parse(None, written.as_bytes())
        .unwrap_or_else(|e| panic!("{written:?} no longer parses: {e:?}"));
    assert_eq!(reparsed, req, "round trip through {written:?}");
}
