"""Authentication: password hashing and the secrets every SASL mechanism needs."""
