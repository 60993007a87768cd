"""The pure IMAP protocol layer: command parser and response encoder (no I/O, no store)."""
