"""Fuzzing: hypothesis property tests (issue 7 item 1); the long runs are in fuzz/."""
