from __future__ import annotations

import json
import logging

from courriel.logs import JSONFormatter


def test_json_lines_carry_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "courriel.smtp", "levelname": "INFO", "msg": "delivered %s", "args": ("q1",), "queue_id": "q1", "size": 5}
    )
    line = JSONFormatter().format(record)
    data = json.loads(line)
    assert data["message"] == "delivered q1" and data["queue_id"] == "q1" and data["size"] == 5
    assert data["level"] == "info" and data["logger"] == "courriel.smtp" and data["time"].endswith("Z")
