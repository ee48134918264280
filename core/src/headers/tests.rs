use super::*;

#[test]
fn printable_ascii_is_forwarded() {
    assert!(is_forwardable("fed:alice@example.com"));
    assert!(is_forwardable("system:serviceaccount:ci:deployer"));
    assert!(is_forwardable("a b"));
    assert!(is_forwardable(&"x".repeat(MAX_FORWARDED_VALUE_BYTES)));
}

#[test]
fn anything_a_header_could_be_abused_with_is_not() {
    for bad in [
        "",
        "tab\there",
        "new\nline",
        "cr\rlf",
        "nul\0",
        "del\x7f",
        "héllo",
        " leading",
        "trailing ",
    ] {
        assert!(!is_forwardable(bad), "{bad:?}");
    }
    assert!(!is_forwardable(&"x".repeat(MAX_FORWARDED_VALUE_BYTES + 1)));
}
