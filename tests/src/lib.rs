//! Harness for integration tests against real processes.
