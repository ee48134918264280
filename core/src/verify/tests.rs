use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{Claims as JsClaims, Duration as JsDuration, HS256Key, MACLike};
use serde_json::json;

use super::*;
use crate::claims::GatewayClaims;
use crate::jwks::VerifyingKey;
use crate::testing::{TestKey, api_claims, b64_json, function_claims, jwks};

const ISS: &str = "https://gateway.example.com";
const NOW: u64 = 1_800_000_000;

struct Fixture {
    key: TestKey,
    keys: KeySet,
    validation: Validation,
}

fn fixture() -> Fixture {
    let key = TestKey::generate();
    let (keys, _) = KeySet::from_jwks_json(jwks(&[&key]).as_bytes()).unwrap();
    Fixture {
        key,
        keys,
        validation: Validation::new([ISS], [ISS]).unwrap(),
    }
}

impl Fixture {
    fn check(&self, token: &str) -> Result<Verified<GatewayClaims>, TokenError> {
        verify(token, &self.keys, &self.validation, NOW)
    }
    fn good(&self) -> String {
        self.key
            .sign(&function_claims(ISS, NOW, 300, &["openfaas-fn:*"]))
    }
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[test]
fn valid_function_token() {
    let f = fixture();
    let v = f.check(&f.good()).unwrap();
    assert_eq!(v.kid, f.key.kid);
    assert_eq!(v.alg, Algorithm::ES256);
    assert_eq!(v.claims.iss.as_deref(), Some(ISS));
    assert_eq!(v.claims.sub.as_deref(), Some("fed:test-user"));
    assert_eq!(v.claims.aud, vec![ISS.to_string()]);
    assert_eq!(v.claims.exp, NOW + 300);
    let grant = v.claims.custom.function.unwrap();
    assert_eq!(grant.permissions, vec!["openfaas-fn:*"]);
    assert_eq!(grant.audience, None);
}

#[test]
fn aud_as_a_plain_string_is_accepted() {
    let f = fixture();
    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c["aud"] = json!(ISS);
    assert!(f.check(&f.key.sign(&c)).is_ok());
}

#[test]
fn api_token_verifies_but_has_no_function_claim() {
    let f = fixture();
    let v = f.check(&f.key.sign(&api_claims(ISS, NOW, 300))).unwrap();
    assert!(v.claims.custom.function.is_none());
    assert_eq!(
        v.claims.custom.fed_iss.as_deref(),
        Some("https://idp.example.com")
    );
}

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    let header = json!({"alg": "none", "typ": "JWT", "kid": f.key.kid});
    let payload = function_claims(ISS, NOW, 300, &["*"]);
    for tail in ["", "AAAA"] {
        let token = format!("{}.{}.{tail}", b64_json(&header), b64_json(&payload));
        assert!(matches!(
            f.check(&token),
            Err(TokenError::AlgorithmMismatch { .. })
        ));
    }
    // And alg none without a kid still stops at the kid.
    let token = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none"})),
        b64_json(&payload)
    );
    assert_eq!(f.check(&token).unwrap_err(), TokenError::MissingKid);
}

#[test]
fn hs256_with_the_public_key_as_secret_is_refused() {
    let f = fixture();
    // The classic confusion: HMAC keyed with the public key's bytes, under the
    // EC key's kid. Try both the raw point and the JWKS text as the secret.
    for secret in [f.key.public_sec1(), jwks(&[&f.key]).into_bytes()] {
        let hmac = HS256Key::from_bytes(&secret).with_key_id(&f.key.kid);
        let claims =
            JsClaims::with_custom_claims(GatewayClaims::default(), JsDuration::from_secs(300))
                .with_issuer(ISS)
                .with_audience(ISS);
        let token = hmac.authenticate(claims).unwrap();
        assert_eq!(
            f.check(&token).unwrap_err(),
            TokenError::AlgorithmMismatch {
                expected: Algorithm::ES256,
                found: "HS256".into()
            }
        );
    }
}

#[test]
fn unknown_or_missing_kid() {
    let f = fixture();
    let other = TestKey::generate();
    let token = other.sign(&function_claims(ISS, NOW, 300, &["*"]));
    assert_eq!(
        f.check(&token).unwrap_err(),
        TokenError::UnknownKid(other.kid)
    );
    // The right key under a wrong kid is still an unknown kid.
    let renamed = f.key.clone().with_kid("rotated-away");
    let token = renamed.sign(&function_claims(ISS, NOW, 300, &["*"]));
    assert!(matches!(f.check(&token), Err(TokenError::UnknownKid(_))));
    let token = f.key.sign_raw(
        &json!({"alg": "ES256", "typ": "JWT"}),
        &function_claims(ISS, NOW, 300, &["*"]),
    );
    assert_eq!(f.check(&token).unwrap_err(), TokenError::MissingKid);
}

#[test]
fn other_key_signing_under_our_kid_fails_the_signature() {
    let f = fixture();
    let impostor = TestKey::generate().with_kid(&f.key.kid);
    let token = impostor.sign(&function_claims(ISS, NOW, 300, &["*"]));
    assert_eq!(f.check(&token).unwrap_err(), TokenError::BadSignature);
}

#[test]
fn time_claims() {
    let f = fixture();
    let mut c = function_claims(ISS, NOW - 600, 300, &["*"]);
    assert_eq!(f.check(&f.key.sign(&c)).unwrap_err(), TokenError::Expired);
    // Within the leeway (30 s) an expired token still passes...
    c["exp"] = json!(NOW - 20);
    assert!(f.check(&f.key.sign(&c)).is_ok());
    // ...and just past it, it does not.
    c["exp"] = json!(NOW - 31);
    assert_eq!(f.check(&f.key.sign(&c)).unwrap_err(), TokenError::Expired);

    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c["nbf"] = json!(NOW + 3600);
    assert_eq!(
        f.check(&f.key.sign(&c)).unwrap_err(),
        TokenError::NotYetValid
    );

    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c["iat"] = json!(NOW + 3600);
    assert_eq!(
        f.check(&f.key.sign(&c)).unwrap_err(),
        TokenError::IssuedInFuture
    );

    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        f.check(&f.key.sign(&c)).unwrap_err(),
        TokenError::MissingExpiry
    );
}

#[test]
fn leeway_is_configurable() {
    let mut f = fixture();
    f.validation = f.validation.clone().with_leeway(0);
    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c["exp"] = json!(NOW - 1);
    assert_eq!(f.check(&f.key.sign(&c)).unwrap_err(), TokenError::Expired);
}

#[test]
fn wrong_issuer_or_audience() {
    let f = fixture();
    let c = function_claims("https://evil.example.com", NOW, 300, &["*"]);
    let mut c2 = c.clone();
    c2["aud"] = json!([ISS]);
    assert_eq!(
        f.check(&f.key.sign(&c2)).unwrap_err(),
        TokenError::WrongIssuer
    );
    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c["aud"] = json!(["https://other.example.com"]);
    assert_eq!(
        f.check(&f.key.sign(&c)).unwrap_err(),
        TokenError::WrongAudience
    );
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        f.check(&f.key.sign(&c)).unwrap_err(),
        TokenError::WrongAudience
    );
    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        f.check(&f.key.sign(&c)).unwrap_err(),
        TokenError::WrongIssuer
    );
}

#[test]
fn tampered_payload_and_stripped_signature() {
    let f = fixture();
    let good = segments(&f.good());
    let widened = b64_json(&function_claims(ISS, NOW, 300, &["*"]));
    let token = format!("{}.{widened}.{}", good[0], good[2]);
    assert_eq!(f.check(&token).unwrap_err(), TokenError::BadSignature);
    let token = format!("{}.{}.", good[0], good[1]);
    assert_eq!(f.check(&token).unwrap_err(), TokenError::BadSignature);
    // A signature of a different, valid-looking length.
    let token = format!("{}.{}.{}", good[0], good[1], &good[2][..40]);
    assert_eq!(f.check(&token).unwrap_err(), TokenError::BadSignature);
}

#[test]
fn all_zero_ecdsa_signature() {
    let f = fixture();
    let good = segments(&f.good());
    let zeros = URL_SAFE_NO_PAD.encode([0u8; 64]);
    let token = format!("{}.{}.{zeros}", good[0], good[1]);
    assert_eq!(f.check(&token).unwrap_err(), TokenError::BadSignature);
}

#[test]
fn malformed_encodings() {
    let f = fixture();
    let good = segments(&f.good());
    let cases = [
        format!("{}!.{}.{}", good[0], good[1], good[2]),
        format!("{}.{}.{}=", good[0], good[1], good[2]),
        format!("{}.{}+.{}", good[0], good[1], good[2]),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode("not json"),
            good[1],
            good[2]
        ),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode("[1,2]"),
            good[1],
            good[2]
        ),
        "A.{}.{}".replace("{}", "x"),
        ".x.y".into(),
        "x..y".into(),
        "é.é.é".into(),
    ];
    for token in cases {
        assert!(
            matches!(f.check(&token), Err(TokenError::Malformed(_))),
            "{token}: {:?}",
            f.check(&token)
        );
    }
}

#[test]
fn signed_non_json_payload() {
    let f = fixture();
    // A JSON string, not an object, signed with the real key.
    let token = f
        .key
        .sign_raw(&json!({"alg": "ES256", "kid": f.key.kid}), &json!("x"));
    assert_eq!(f.check(&token).unwrap_err(), TokenError::MalformedClaims);
    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c["function"] = json!("everything");
    assert_eq!(
        f.check(&f.key.sign(&c)).unwrap_err(),
        TokenError::MalformedClaims
    );
}

#[test]
fn segment_counts() {
    let f = fixture();
    let good = segments(&f.good());
    for token in [
        format!("{}.{}", good[0], good[1]),
        format!("{}.{}.{}.{}", good[0], good[1], good[2], good[2]),
        good[0].clone(),
        String::new(),
        "....".into(),
    ] {
        assert!(
            matches!(f.check(&token), Err(TokenError::Malformed(_))),
            "{token}"
        );
    }
}

#[test]
fn oversized_token_is_refused_before_parsing() {
    let f = fixture();
    let big = "A".repeat(100 * 1024);
    assert_eq!(
        f.check(&big).unwrap_err(),
        TokenError::TooLong {
            len: 100 * 1024,
            max: DEFAULT_MAX_TOKEN_BYTES
        }
    );
    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c["pad"] = json!("x".repeat(20_000));
    assert!(matches!(
        f.check(&f.key.sign(&c)),
        Err(TokenError::TooLong { .. })
    ));
}

#[test]
fn crit_header_is_refused() {
    let f = fixture();
    let c = function_claims(ISS, NOW, 300, &["*"]);
    for crit in [json!(["exp"]), json!([]), json!("b64")] {
        let token = f
            .key
            .sign_raw(&json!({"alg": "ES256", "kid": f.key.kid, "crit": crit}), &c);
        assert_eq!(f.check(&token).unwrap_err(), TokenError::CriticalHeader);
    }
}

#[test]
fn jku_and_x5u_are_ignored() {
    let f = fixture();
    let c = function_claims(ISS, NOW, 300, &["*"]);
    // With our own key they verify: the extra headers change nothing.
    let token = f.key.sign_raw(
        &json!({"alg": "ES256", "kid": f.key.kid, "jku": "http://169.254.169.254/jwks", "x5u": "http://evil/cert"}),
        &c,
    );
    assert!(f.check(&token).is_ok());
    // With an attacker's key they are not a way in.
    let evil = TestKey::generate();
    let token = evil.sign_raw(
        &json!({"alg": "ES256", "kid": evil.kid, "jku": "http://evil/jwks", "jwk": evil.jwk()}),
        &c,
    );
    assert!(matches!(f.check(&token), Err(TokenError::UnknownKid(_))));
}

#[test]
fn typ_must_be_jwt_when_present() {
    let f = fixture();
    let c = function_claims(ISS, NOW, 300, &["*"]);
    let token = f
        .key
        .sign_raw(&json!({"alg": "ES256", "kid": f.key.kid, "typ": "JWE"}), &c);
    assert!(matches!(f.check(&token), Err(TokenError::Malformed(_))));
}

#[test]
fn hostile_kid_is_truncated_in_the_error() {
    let f = fixture();
    let kid = "k".repeat(5000);
    let token = f
        .key
        .clone()
        .with_kid(&kid)
        .sign(&function_claims(ISS, NOW, 300, &["*"]));
    match f.check(&token).unwrap_err() {
        TokenError::UnknownKid(k) => assert!(k.len() < 100),
        e => panic!("{e:?}"),
    }
}

#[test]
fn validation_config_errors() {
    assert_eq!(
        Validation::new(Vec::<String>::new(), [ISS]).unwrap_err(),
        ValidationError::NoIssuer
    );
    assert_eq!(
        Validation::new([ISS], Vec::<String>::new()).unwrap_err(),
        ValidationError::NoAudience
    );
    assert!(
        Validation::new([ISS], [ISS])
            .unwrap()
            .with_max_token_bytes(10)
            .is_err()
    );
}

#[test]
fn error_codes_are_listed() {
    let all = [
        TokenError::TooLong { len: 0, max: 0 },
        TokenError::Malformed(""),
        TokenError::CriticalHeader,
        TokenError::MissingKid,
        TokenError::UnknownKid(String::new()),
        TokenError::AlgorithmMismatch {
            expected: Algorithm::ES256,
            found: String::new(),
        },
        TokenError::BadSignature,
        TokenError::MalformedClaims,
        TokenError::MissingExpiry,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::IssuedInFuture,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
    ];
    let codes: Vec<&str> = all.iter().map(TokenError::code).collect();
    assert_eq!(codes, TokenError::CODES);
}

/// A stand-in for Envoy's `verify_signature`: DER key and DER signature,
/// checked with p256 the way BoringSSL would.
struct DerHost;

impl SignatureVerifier for DerHost {
    fn verify(&self, key: &VerifyingKey, message: &[u8], signature: &[u8]) -> Option<bool> {
        use p256::ecdsa::signature::Verifier as _;
        if key.alg != Algorithm::ES256 {
            return None;
        }
        let crate::jwks::RawKey::P256 { point, .. } = &key.raw else {
            return None;
        };
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()?;
        let Some(der) = es256_signature_to_der(signature) else {
            return Some(false);
        };
        let Ok(sig) = p256::ecdsa::Signature::from_der(&der) else {
            return Some(false);
        };
        Some(vk.verify(message, &sig).is_ok())
    }
}

/// A broken host that says yes to everything: claims must still be checked.
struct YesMan;

impl SignatureVerifier for YesMan {
    fn verify(&self, _: &VerifyingKey, _: &[u8], _: &[u8]) -> Option<bool> {
        Some(true)
    }
}

#[test]
fn the_host_path_gives_the_same_answers() {
    let f = fixture();
    let host =
        |token: &str| verify_with::<GatewayClaims>(token, &f.keys, &f.validation, NOW, &DerHost);
    let v = host(&f.good()).unwrap();
    assert_eq!(
        v.claims.custom.function.unwrap().permissions,
        vec!["openfaas-fn:*"]
    );
    let good = segments(&f.good());
    let widened = b64_json(&function_claims(ISS, NOW, 300, &["*"]));
    let zeros = URL_SAFE_NO_PAD.encode([0u8; 64]);
    let cases = [
        format!("{}.{widened}.{}", good[0], good[2]),
        format!("{}.{}.", good[0], good[1]),
        format!("{}.{}.{zeros}", good[0], good[1]),
        format!("{}.{}.{}", good[0], good[1], &good[2][..40]),
        TestKey::generate()
            .with_kid(&f.key.kid)
            .sign(&function_claims(ISS, NOW, 300, &["*"])),
    ];
    for token in &cases {
        assert_eq!(
            host(token).unwrap_err(),
            f.check(token).unwrap_err(),
            "{token}"
        );
        assert_eq!(host(token).unwrap_err(), TokenError::BadSignature);
    }
    let expired = f.key.sign(&function_claims(ISS, NOW - 600, 300, &["*"]));
    assert_eq!(host(&expired).unwrap_err(), TokenError::Expired);
    let mut c = function_claims(ISS, NOW, 300, &["*"]);
    c["function"] = json!("everything");
    assert_eq!(
        host(&f.key.sign(&c)).unwrap_err(),
        TokenError::MalformedClaims
    );
}

#[test]
fn a_host_that_says_yes_still_gets_claims_checked() {
    let f = fixture();
    let yes =
        |token: &str| verify_with::<GatewayClaims>(token, &f.keys, &f.validation, NOW, &YesMan);
    let mut c = function_claims(ISS, NOW - 600, 300, &["*"]);
    assert_eq!(yes(&f.key.sign(&c)).unwrap_err(), TokenError::Expired);
    c = function_claims("https://evil", NOW, 300, &["*"]);
    c["aud"] = json!([ISS]);
    assert_eq!(yes(&f.key.sign(&c)).unwrap_err(), TokenError::WrongIssuer);
    c = function_claims(ISS, NOW, 300, &["*"]);
    c["aud"] = json!(["x"]);
    assert_eq!(yes(&f.key.sign(&c)).unwrap_err(), TokenError::WrongAudience);
    c = function_claims(ISS, NOW, 300, &["*"]);
    c["nbf"] = json!(NOW + 999);
    assert_eq!(yes(&f.key.sign(&c)).unwrap_err(), TokenError::NotYetValid);
    c = function_claims(ISS, NOW, 300, &["*"]);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(yes(&f.key.sign(&c)).unwrap_err(), TokenError::MissingExpiry);
    // And nothing before the signature is skipped: alg and kid still rule.
    let hs = format!(
        "{}.{}.x",
        b64_json(&json!({"alg": "HS256", "kid": f.key.kid})),
        b64_json(&function_claims(ISS, NOW, 300, &["*"]))
    );
    assert!(matches!(
        yes(&hs),
        Err(TokenError::AlgorithmMismatch { .. })
    ));
}

#[test]
fn raw_signatures_become_minimal_der() {
    let mut raw = [0u8; 64];
    assert_eq!(
        es256_signature_to_der(&raw).unwrap(),
        vec![0x30, 6, 2, 1, 0, 2, 1, 0]
    );
    raw[0] = 0x80;
    raw[63] = 0x01;
    let der = es256_signature_to_der(&raw).unwrap();
    assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x21, 0x00]);
    assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
    assert!(es256_signature_to_der(&[0u8; 63]).is_none());
    // Round trip against p256's own DER encoding of a real signature.
    let key = TestKey::generate();
    let token = key.sign(&json!({"x": 1}));
    let sig = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(2).unwrap())
        .unwrap();
    let p = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    assert_eq!(es256_signature_to_der(&sig).unwrap(), p.to_der().as_bytes());
}

#[test]
fn both_signature_paths_refuse_for_the_same_reason_whatever_the_claims() {
    // Found by fuzzing: `{}` under a valid signature was `missing_exp` on
    // the host path and `wrong_issuer` in pure Rust, whose library checks
    // the claims in another order.
    let f = fixture();
    let host =
        |token: &str| verify_with::<GatewayClaims>(token, &f.keys, &f.validation, NOW, &DerHost);
    let mut cases = vec![json!({}), json!({"iss": ISS}), json!({"aud": ISS})];
    for (k, v) in [
        ("iss", json!("https://evil")),
        ("aud", json!("x")),
        ("exp", json!(NOW - 600)),
        ("nbf", json!(NOW + 999)),
        ("iat", json!(NOW + 999)),
    ] {
        let mut c = function_claims(ISS, NOW, 300, &["*"]);
        c[k] = v;
        cases.push(c.clone());
        // With exp gone as well: which reason wins must not depend on the path.
        c.as_object_mut().unwrap().remove("exp");
        cases.push(c);
    }
    for c in cases {
        let token = f.key.sign(&c);
        assert_eq!(host(&token).map(|_| ()), f.check(&token).map(|_| ()), "{c}");
    }
}

#[test]
fn json_that_is_not_utf8_is_refused_on_both_paths() {
    // Found by fuzzing: serde_json does not check the strings it skips, so
    // an unknown member could carry bytes that are not UTF-8 and the token
    // was accepted; JSON is UTF-8 (RFC 8259) and other verifiers refuse it.
    let f = fixture();
    let host =
        |token: &str| verify_with::<GatewayClaims>(token, &f.keys, &f.validation, NOW, &DerHost);
    let mut header = format!(
        r#"{{"alg":"ES256","typ":"JWT","kid":"{}","x":"a"#,
        f.key.kid
    )
    .into_bytes();
    header.extend_from_slice(&[0xff, 0xfe]);
    header.extend_from_slice(br#""}"#);
    let claims = function_claims(ISS, NOW, 300, &["*"]).to_string();
    let token = f.key.sign_bytes(&header, claims.as_bytes());
    for r in [f.check(&token).map(|_| ()), host(&token).map(|_| ())] {
        assert_eq!(r, Err(TokenError::Malformed("header is not UTF-8")));
    }
    let good_header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#, f.key.kid);
    let mut payload = claims.trim_end_matches('}').as_bytes().to_vec();
    payload.extend_from_slice(b",\"x\":\"\xff\"}");
    let token = f.key.sign_bytes(good_header.as_bytes(), &payload);
    for r in [f.check(&token).map(|_| ()), host(&token).map(|_| ())] {
        assert_eq!(r, Err(TokenError::MalformedClaims));
    }
    // The same with valid bytes passes both ways.
    let token = f.key.sign_bytes(good_header.as_bytes(), claims.as_bytes());
    assert!(f.check(&token).is_ok() && host(&token).is_ok());
}
