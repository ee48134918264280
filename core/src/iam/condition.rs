//! Role principals and conditions, compiled, and how they match a token's
//! claims. The rules are in the [`crate::iam`] module docs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::ClaimMap;
use super::error::IamErrorKind;
use crate::glob::Glob;

/// The prefix every condition key carries: `jwt:sub` addresses claim `sub`.
pub const CLAIM_KEY_PREFIX: &str = "jwt:";

/// A condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `StringEqual` (or `StringEquals`), and `principal` entries.
    StringEqual,
    /// `StringEqualIgnoreCase` (or `StringEqualsIgnoreCase`).
    StringEqualIgnoreCase,
    /// `StringLike`: a glob where `*` is any run and `?` one character.
    StringLike,
    /// `ForAnyValue:StringEqual` (or `ForAnyValue:StringEquals`).
    ForAnyValueStringEqual,
}

/// The condition key that holds principal entries when written inside a
/// `condition`, as the OpenFaaS function-authentication docs do.
pub(crate) const PRINCIPAL: &str = "principal";

impl Operator {
    /// Parses an operator name. `principal` is not an operator: the caller
    /// handles it.
    pub fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "StringEqual" | "StringEquals" => Operator::StringEqual,
            "StringEqualIgnoreCase" | "StringEqualsIgnoreCase" => Operator::StringEqualIgnoreCase,
            "StringLike" => Operator::StringLike,
            "ForAnyValue:StringEqual" | "ForAnyValue:StringEquals" => {
                Operator::ForAnyValueStringEqual
            }
            _ => return None,
        })
    }

    /// The canonical name, as the docs write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operator::StringEqual => "StringEqual",
            Operator::StringEqualIgnoreCase => "StringEqualIgnoreCase",
            Operator::StringLike => "StringLike",
            Operator::ForAnyValueStringEqual => "ForAnyValue:StringEqual",
        }
    }
}

/// All requirements must hold (AND). Empty means "always true", which only
/// Policy statements can have: a Role always needs at least one.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    requirements: Vec<Requirement>,
}

/// One claim checked with one operator against values that are OR'd.
#[derive(Debug, Clone)]
pub(crate) struct Requirement {
    claim: Box<str>,
    test: Test,
    /// The operator and values as written, for explanations.
    op: Operator,
    written: Vec<Box<str>>,
}

#[derive(Debug, Clone)]
enum Test {
    Equal(Vec<Box<str>>),
    /// Values stored case-folded.
    EqualIgnoreCase(Vec<String>),
    Like(Vec<Glob>),
    AnyEqual(Vec<Box<str>>),
}

impl Condition {
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, claims: &ClaimMap) -> bool {
        self.requirements.iter().all(|r| r.matches(claims))
    }

    /// Does some requirement test this claim (`iss`, not `jwt:iss`)?
    pub fn tests_claim(&self, claim: &str) -> bool {
        self.requirements.iter().any(|r| &*r.claim == claim)
    }

    pub(crate) fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl Requirement {
    /// The claim tested (`sub`, not `jwt:sub`).
    pub(crate) fn claim(&self) -> &str {
        &self.claim
    }

    pub(crate) fn operator(&self) -> Operator {
        self.op
    }

    /// The values as written in the object.
    pub(crate) fn values(&self) -> &[Box<str>] {
        &self.written
    }

    pub(crate) fn matches(&self, claims: &ClaimMap) -> bool {
        let Some(value) = claims.get(&*self.claim) else {
            return false;
        };
        match &self.test {
            Test::Equal(wanted) => {
                scalar_text(value).is_some_and(|t| wanted.iter().any(|w| **w == *t))
            }
            Test::EqualIgnoreCase(wanted) => scalar_text(value).is_some_and(|t| {
                let t = fold_case(&t);
                wanted.contains(&t)
            }),
            Test::Like(globs) => {
                scalar_text(value).is_some_and(|t| globs.iter().any(|g| g.matches(&t)))
            }
            Test::AnyEqual(wanted) => claim_texts(value).any(|t| wanted.iter().any(|w| **w == *t)),
        }
    }

    /// For the role index: the claim and the exact texts one of which the
    /// claim (or, for arrays, one element) must equal. None for globs and
    /// case-insensitive tests.
    pub(crate) fn exact_values(&self) -> Option<(&str, &[Box<str>])> {
        match &self.test {
            Test::Equal(v) | Test::AnyEqual(v) => Some((&self.claim, v)),
            Test::EqualIgnoreCase(_) | Test::Like(_) => None,
        }
    }
}

/// The text of a scalar claim: a string as is, a bool or number as its JSON
/// text. Arrays, objects and null have none.
pub(crate) fn scalar_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The texts of a claim seen as a set: the scalar elements of an array, or
/// a scalar on its own.
pub(crate) fn claim_texts(value: &Value) -> impl Iterator<Item = Cow<'_, str>> {
    let (one, many) = match value {
        Value::Array(items) => (None, items.as_slice()),
        other => (scalar_text(other), &[][..]),
    };
    one.into_iter().chain(many.iter().filter_map(scalar_text))
}

/// Unicode lower-casing, close to Go's `strings.EqualFold`.
fn fold_case(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Wire form: operator -> `jwt:<claim>` -> values.
pub type ConditionSpec = BTreeMap<String, BTreeMap<String, Vec<String>>>;
/// Wire form: `jwt:<claim>` -> values.
pub type PrincipalSpec = BTreeMap<String, Vec<String>>;

/// Compiles a `principal` map and a `condition` map (which may hold its own
/// `principal`) into one AND'd condition. Problems are reported; the bad
/// entries are left out of the result, which the caller then discards.
pub(crate) fn compile(
    principal: Option<(&str, &PrincipalSpec)>,
    condition: Option<(&str, &ConditionSpec)>,
    report: &mut dyn FnMut(String, IamErrorKind),
) -> Condition {
    let mut requirements = Vec::new();
    if let Some((path, principal)) = principal {
        compile_map(
            path,
            Operator::StringEqual,
            principal,
            &mut requirements,
            report,
        );
    }
    if let Some((path, condition)) = condition {
        if condition.is_empty() {
            report(path.to_owned(), IamErrorKind::EmptyList);
        }
        for (op_name, entries) in condition {
            let op_path = format!("{path}.{op_name}");
            let op = if op_name == PRINCIPAL {
                Operator::StringEqual
            } else if let Some(op) = Operator::parse(op_name) {
                op
            } else {
                report(
                    op_path,
                    IamErrorKind::UnknownOperator {
                        found: op_name.clone(),
                    },
                );
                continue;
            };
            compile_map(&op_path, op, entries, &mut requirements, report);
        }
    }
    Condition { requirements }
}

fn compile_map(
    path: &str,
    op: Operator,
    entries: &BTreeMap<String, Vec<String>>,
    out: &mut Vec<Requirement>,
    report: &mut dyn FnMut(String, IamErrorKind),
) {
    if entries.is_empty() {
        report(path.to_owned(), IamErrorKind::EmptyList);
    }
    for (key, values) in entries {
        let key_path = format!("{path}.{key}");
        let claim = match key.strip_prefix(CLAIM_KEY_PREFIX) {
            Some(claim) if !claim.is_empty() => claim,
            _ => {
                report(
                    key_path,
                    IamErrorKind::InvalidConditionKey { found: key.clone() },
                );
                continue;
            }
        };
        if values.is_empty() {
            report(key_path, IamErrorKind::EmptyList);
            continue;
        }
        let test = match op {
            Operator::StringEqual => Test::Equal(boxed(values)),
            Operator::ForAnyValueStringEqual => Test::AnyEqual(boxed(values)),
            Operator::StringEqualIgnoreCase => {
                Test::EqualIgnoreCase(values.iter().map(|v| fold_case(v)).collect())
            }
            Operator::StringLike => {
                Test::Like(values.iter().map(|v| Glob::with_question_mark(v)).collect())
            }
        };
        out.push(Requirement {
            claim: claim.into(),
            test,
            op,
            written: boxed(values),
        });
    }
}

fn boxed(values: &[String]) -> Vec<Box<str>> {
    values.iter().map(|v| v.as_str().into()).collect()
}

#[cfg(test)]
mod tests;
