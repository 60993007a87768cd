"""The test DNS server fixture, shared with tests/outbound."""

from tests.outbound.conftest import dns

__all__ = ["dns"]
