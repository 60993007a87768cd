"""Outbound delivery: the queue runner, routing (MX, relays), DNS, the SMTP client, DSNs."""
