"""Tests of LMTP/SMTP delivery (issue 6 part 1)."""
