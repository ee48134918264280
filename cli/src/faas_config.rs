//! faas-cli's config file (owned by the login work; placeholder until it lands).
