"""Process metrics in the Prometheus model (prometheus-client), exposed at ``/metrics``.

The protocol code calls the small functions below (a counter increment costs about a
microsecond); gauges that describe the store (queue length and age, messages and bytes) are
read from the store when ``/metrics`` is scraped (:mod:`courriel.metrics.http`). One registry per
process, not prometheus-client's global one, so that nothing foreign leaks in.

Names follow the Prometheus conventions: ``courriel_`` prefix, ``_total`` for counters,
base units (seconds, bytes).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

#: Latency buckets for commands and deliveries, in seconds (0.5 ms .. 30 s).
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

CONNECTIONS = Counter(
    "courriel_connections", "Connections accepted, per listener", ["listener"], registry=REGISTRY
)
CONNECTIONS_REFUSED = Counter(
    "courriel_connections_refused", "Connections refused by the connection limits", ["listener"], registry=REGISTRY
)
CONNECTIONS_ACTIVE = Gauge(
    "courriel_connections_active", "Connections open now, per listener", ["listener"], registry=REGISTRY
)
COMMANDS = Counter(
    "courriel_commands", "Protocol commands handled", ["protocol", "command"], registry=REGISTRY
)
COMMAND_SECONDS = Histogram(
    "courriel_command_duration_seconds", "Time to handle one command", ["protocol"],
    buckets=_BUCKETS, registry=REGISTRY,
)  # fmt: skip
LOGINS = Counter(
    "courriel_logins", "Authentication attempts and their result", ["protocol", "result"], registry=REGISTRY
)
DELIVERIES = Counter(
    "courriel_deliveries",
    "Messages received for delivery, per way in and result (delivered, queued, rejected, deferred)",
    ["protocol", "result"],
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "courriel_delivery_duration_seconds", "Time from end of data to durably stored/queued", ["protocol"],
    buckets=_BUCKETS, registry=REGISTRY,
)  # fmt: skip
OUTBOUND = Counter(
    "courriel_outbound_attempts",
    "Outbound delivery attempts per recipient, by result (delivered, deferred, failed)",
    ["result"],
    registry=REGISTRY,
)
OUTBOUND_AGE = Histogram(
    "courriel_outbound_delivery_age_seconds", "Time from queueing to final delivery",
    buckets=(1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 5 * 86400), registry=REGISTRY,
)  # fmt: skip
QUEUE_MESSAGES = Gauge("courriel_queue_messages", "Messages in the outbound queue", registry=REGISTRY)
QUEUE_RECIPIENTS = Gauge("courriel_queue_recipients", "Recipients pending in the outbound queue", registry=REGISTRY)
QUEUE_OLDEST = Gauge(
    "courriel_queue_oldest_age_seconds", "Age of the oldest message in the outbound queue", registry=REGISTRY
)
STORE_USERS = Gauge("courriel_store_users", "Accounts in the store", registry=REGISTRY)
STORE_MAILBOXES = Gauge("courriel_store_mailboxes", "Mailboxes in the store", registry=REGISTRY)
STORE_MESSAGES = Gauge("courriel_store_messages", "Messages in the store", registry=REGISTRY)
STORE_BYTES = Gauge("courriel_store_bytes", "Size of the stored messages", registry=REGISTRY)


def connection_opened(listener: str) -> None:
    CONNECTIONS.labels(listener).inc()
    CONNECTIONS_ACTIVE.labels(listener).inc()


def connection_closed(listener: str) -> None:
    CONNECTIONS_ACTIVE.labels(listener).dec()


def connection_refused(listener: str) -> None:
    CONNECTIONS_REFUSED.labels(listener).inc()


def command(protocol: str, name: str, seconds: float) -> None:
    """One command handled. ``name`` must come from the protocol's dispatch table (a bounded
    set): callers count unknown commands as ``"other"``, so a client cannot grow the labels."""
    COMMANDS.labels(protocol, name).inc()
    COMMAND_SECONDS.labels(protocol).observe(seconds)


def login(protocol: str, ok: bool) -> None:
    LOGINS.labels(protocol, "success" if ok else "failure").inc()


def delivery(protocol: str, result: str, seconds: float | None = None) -> None:
    DELIVERIES.labels(protocol, result).inc()
    if seconds is not None:
        DELIVERY_SECONDS.labels(protocol).observe(seconds)


def outbound(result: str, age: float | None = None) -> None:
    OUTBOUND.labels(result).inc()
    if age is not None:
        OUTBOUND_AGE.observe(age)
