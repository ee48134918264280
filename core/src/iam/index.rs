//! Finds the Roles that may match a token without testing them all.
//!
//! Each Role with an exact-value requirement (`principal`, `StringEqual`,
//! `ForAnyValue:StringEqual`) is filed under one of them: the claim and its
//! values. Of several, the one shared by the fewest Roles is chosen, so
//! 10,000 Roles with the same `jwt:iss` and distinct `jwt:sub` file under
//! `sub`. Roles with only globs or case-insensitive tests are always
//! candidates. Candidates are then tested in full, so the index only has to
//! over-approximate.

use std::collections::HashMap;

use super::ClaimMap;
use super::condition::claim_texts;
use super::model::Role;

#[derive(Debug, Clone, Default)]
pub(crate) struct RoleIndex {
    claims: Vec<ClaimIndex>,
    /// Roles with nothing to file them under.
    scan: Vec<usize>,
}

#[derive(Debug, Clone)]
struct ClaimIndex {
    claim: Box<str>,
    roles_by_value: HashMap<Box<str>, Vec<usize>>,
}

fn exact(role: &Role) -> Vec<(&str, &[Box<str>])> {
    role.condition()
        .requirements()
        .iter()
        .filter_map(|r| r.exact_values())
        .collect()
}

impl RoleIndex {
    pub(crate) fn build(roles: &[Role]) -> Self {
        let mut sharing: HashMap<(&str, &str), usize> = HashMap::new();
        for role in roles {
            for (claim, values) in exact(role) {
                for value in values {
                    *sharing.entry((claim, value)).or_default() += 1;
                }
            }
        }

        let mut index = RoleIndex::default();
        let mut claim_slot: HashMap<&str, usize> = HashMap::new();
        for (i, role) in roles.iter().enumerate() {
            let cost = |(claim, values): &(&str, &[Box<str>])| -> usize {
                values
                    .iter()
                    .map(|v| sharing.get(&(*claim, &**v)).copied().unwrap_or(0))
                    .sum()
            };
            let Some((claim, values)) = exact(role).into_iter().min_by_key(cost) else {
                index.scan.push(i);
                continue;
            };
            let slot = *claim_slot.entry(claim).or_insert_with(|| {
                index.claims.push(ClaimIndex {
                    claim: claim.into(),
                    roles_by_value: HashMap::new(),
                });
                index.claims.len() - 1
            });
            if let Some(ci) = index.claims.get_mut(slot) {
                for value in values {
                    ci.roles_by_value.entry(value.clone()).or_default().push(i);
                }
            }
        }
        index
    }

    /// Indexes of the Roles that may match, ascending, without repeats.
    pub(crate) fn candidates(&self, claims: &ClaimMap) -> Vec<usize> {
        let mut out = self.scan.clone();
        for ci in &self.claims {
            let Some(value) = claims.get(&*ci.claim) else {
                continue;
            };
            for text in claim_texts(value) {
                if let Some(roles) = ci.roles_by_value.get(&*text) {
                    out.extend_from_slice(roles);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
