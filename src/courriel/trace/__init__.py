"""Seeing the protocols: session transcripts (recorder, redact, service), message journeys
(journey) and `courriel explain` (explain). See docs/ARCHITECTURE.md "Traces and journeys"."""
