//! Scenario tests: fake clients against the core, in simulated time.
