"""Argument helpers shared by the standard methods (RFC 8620 §5.1 /get, §5.3 /set)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from courriel.jmap.core import MethodError, invalid


def ids_arg(args: dict[str, Any], limit: int, key: str = "ids") -> list[str] | None:
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{key} must be an array of ids")
    if len(value) > limit:
        raise MethodError("requestTooLarge", f"more than {limit} ids")  # §5.1 maxObjectsInGet
    return list(dict.fromkeys(value))


def properties_arg(args: dict[str, Any], known: Collection[str], default: Collection[str], key: str = "properties") -> list[str]:
    value = args.get(key)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{key} must be an array of strings")
    for name in value:
        if name not in known and not name.startswith("header:"):
            raise invalid(f"unknown property {name}")
    return list(dict.fromkeys(value))


def bool_arg(args: dict[str, Any], key: str, default: bool = False) -> bool:
    value = args.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"{key} must be a boolean")
    return value


def int_arg(args: dict[str, Any], key: str, default: int | None = None, minimum: int = 0) -> int | None:
    value = args.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise invalid(f"{key} must be an integer >= {minimum}")
    return value


def set_counts(args: dict[str, Any], limit: int) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(create, update, destroy) of a /set call, validated (§5.3), maxObjectsInSet enforced."""
    create = args.get("create") or {}
    update = args.get("update") or {}
    destroy = args.get("destroy") or []
    if not isinstance(create, dict) or not all(isinstance(v, dict) for v in create.values()):
        raise invalid("create must map creation ids to objects")
    if not isinstance(update, dict) or not all(isinstance(v, dict) for v in update.values()):
        raise invalid("update must map ids to patch objects")
    if not isinstance(destroy, list) or not all(isinstance(v, str) for v in destroy):
        raise invalid("destroy must be an array of ids")
    if len(create) + len(update) + len(destroy) > limit:
        raise MethodError("requestTooLarge", f"more than {limit} objects in one /set")
    return create, update, destroy


def set_error(kind: str, description: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, **extra}
    if description:
        out["description"] = description
    return out
