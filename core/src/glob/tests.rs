use super::Glob;

#[test]
fn star_alone_matches_everything() {
    let g = Glob::new("*");
    assert!(g.matches(""));
    assert!(g.matches("openfaas-fn:env"));
}

#[test]
fn literal_is_anchored() {
    let g = Glob::new("openfaas-fn:env");
    assert!(g.is_literal());
    assert!(g.matches("openfaas-fn:env"));
    assert!(!g.matches("openfaas-fn:env2"));
    assert!(!g.matches("xopenfaas-fn:env"));
    assert!(!g.matches("openfaas-fn:en"));
}

#[test]
fn namespace_wildcard() {
    let g = Glob::new("dev:*");
    assert!(g.matches("dev:env"));
    assert!(g.matches("dev:"));
    assert!(!g.matches("dev2:env"));
    assert!(!g.matches("staging:env"));
}

#[test]
fn name_wildcard() {
    let g = Glob::new("*:env");
    assert!(g.matches("dev:env"));
    assert!(g.matches("openfaas-fn:env"));
    assert!(!g.matches("dev:env2"));
    assert!(!g.matches("dev:myenv:x"));
}

#[test]
fn inner_and_multiple_stars_backtrack() {
    let g = Glob::new("a*b*c");
    assert!(g.matches("abc"));
    assert!(g.matches("aXXbYYc"));
    assert!(g.matches("abbbc"));
    assert!(!g.matches("aXXbYY"));
    assert!(!g.matches("XabYc"));
    assert!(Glob::new("**").matches("anything"));
    assert!(Glob::new("a**").matches("a"));
}

#[test]
fn regex_metacharacters_are_literal() {
    let g = Glob::new("dev:e.v");
    assert!(g.matches("dev:e.v"));
    assert!(!g.matches("dev:env"));
    assert!(!Glob::new("dev:[a-z]+").matches("dev:env"));
    assert!(!Glob::new("^dev:env$").matches("dev:env"));
}

#[test]
fn question_mark_only_when_enabled() {
    assert!(!Glob::new("user-?").matches("user-1"));
    assert!(Glob::new("user-?").matches("user-?"));
    let g = Glob::with_question_mark("user-?");
    assert!(g.matches("user-1"));
    assert!(!g.matches("user-12"));
    assert!(g.matches("user-é"));
    assert!(Glob::with_question_mark("*@example.???").matches("alice@example.com"));
}

#[test]
fn multibyte_input_under_star() {
    let g = Glob::new("*é:x");
    assert!(g.matches("ééé:x"));
    assert!(!g.matches("ééé:y"));
}

#[test]
fn hostile_pattern_stays_fast() {
    let pattern = "*a".repeat(50);
    let input = "a".repeat(10_000) + "b";
    assert!(!Glob::new(&pattern).matches(&input));
}
