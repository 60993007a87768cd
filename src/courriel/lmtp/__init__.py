"""LMTP (RFC 2033): delivery from an MTA on the same host, sharing the SMTP session."""
