//! IAM objects and the policy engine (in progress).
