"""Recipient lookups for an MTA in front of courriel (the socketmap protocol)."""
