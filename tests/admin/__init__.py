"""Tests of the management channel and convert (issue 4)."""
