//! Anchored glob matching for permission patterns and IAM `StringLike`.
//!
//! Only `*` (any run of characters, possibly empty) and, when enabled, `?`
//! (exactly one character) are special. Everything else is literal, and the
//! pattern must match the whole input: `openfaas-fn:env` never matches
//! `openfaas-fn:env2`. Matching is linear in practice (single-star
//! backtracking), so hostile patterns cannot blow up.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    pattern: Box<str>,
    kind: Kind,
    question_mark: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    /// `*`: matches everything.
    Any,
    /// No wildcard at all: plain equality.
    Exact,
    /// `prefix*`: a common shape worth a fast path.
    Prefix(Box<str>),
    /// Anything else.
    General,
}

impl Glob {
    /// A glob where only `*` is special (permission resources).
    pub fn new(pattern: &str) -> Self {
        Self::build(pattern, false)
    }

    /// A glob where `*` and `?` are special (IAM `StringLike`).
    pub fn with_question_mark(pattern: &str) -> Self {
        Self::build(pattern, true)
    }

    fn build(pattern: &str, question_mark: bool) -> Self {
        let special = |c: char| c == '*' || (question_mark && c == '?');
        let kind = if pattern == "*" {
            Kind::Any
        } else if !pattern.contains(special) {
            Kind::Exact
        } else if let Some(prefix) = pattern.strip_suffix('*')
            && !prefix.contains(special)
        {
            Kind::Prefix(prefix.into())
        } else {
            Kind::General
        };
        Glob {
            pattern: pattern.into(),
            kind,
            question_mark,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True when the pattern has no wildcard, so it names exactly one string.
    pub fn is_literal(&self) -> bool {
        self.kind == Kind::Exact
    }

    pub fn matches(&self, input: &str) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact => &*self.pattern == input,
            Kind::Prefix(p) => input.starts_with(&**p),
            Kind::General => wildcard_match(
                self.pattern.as_bytes(),
                input.as_bytes(),
                self.question_mark,
            ),
        }
    }
}

/// Classic two-pointer wildcard match with backtracking to the last `*`.
/// `?` consumes one UTF-8 code point, not one byte.
fn wildcard_match(pattern: &[u8], input: &[u8], question_mark: bool) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < input.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
            }
            Some(b'?') if question_mark => {
                p += 1;
                i += utf8_len(input[i]);
            }
            Some(&c) if c == input[i] => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    // Let the last star swallow one more code point.
                    let next = si + utf8_len(input[si]);
                    star = Some((sp, next));
                    p = sp + 1;
                    i = next;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests;
