"""Mail in from outside IMAP: LMTP, SMTP, injection (issue 6)."""
