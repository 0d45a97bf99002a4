"""The plugin's own key-value store in the host's database. Needs no grant: the host
prefixes every key with the plugin's name, so a plugin can neither see nor touch another
plugin's keys. A write that returned survives a crash of the host. Values are bytes; the
`_string` and `_json` helpers store text and JSON."""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from . import _host
from .errors import InvalidArgument


def get(key: str) -> Optional[bytes]:
    """The value stored under `key`, or None."""
    return _host.current().kv_get(key)


def set(key: str, value: bytes) -> None:  # noqa: A001 - mirrors the WIT and Rust names
    """Stores `value` under `key`, replacing what was there. Over the plugin's quota it
    raises `TooLarge` and stores nothing."""
    _host.current().kv_set(key, bytes(value))


def delete(key: str) -> None:
    """Removes `key`; removing a missing key is not an error."""
    _host.current().kv_delete(key)


def keys(prefix: str = "") -> list[str]:
    """The keys starting with `prefix`, sorted; "" lists every key."""
    return list(_host.current().kv_keys(prefix))


def get_string(key: str, default: Optional[str] = None) -> Optional[str]:
    """The value under `key` as text, or `default`. A value that is not UTF-8 raises
    `InvalidArgument`."""
    raw = get(key)
    if raw is None:
        return default
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"the value of `{key}` is not UTF-8") from None


def set_string(key: str, value: str) -> None:
    """Stores the text `value` under `key`."""
    set(key, value.encode("utf-8"))


def get_json(key: str, default: Any = None) -> Any:
    """The value under `key` decoded as JSON, or `default` when there is none. A value that
    is not JSON raises `InvalidArgument`."""
    text = get_string(key)
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidArgument(f"the value of `{key}` is not JSON") from None


def set_json(key: str, value: Any) -> None:
    """Stores `value` as compact JSON under `key`."""
    set_string(key, json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def batch(ops: Iterable[tuple]) -> None:
    """Applies writes all or nothing: each op is `("set", key, bytes)` or `("delete", key)`.
    A refused batch stores none of its operations."""
    checked = []
    for op in ops:
        if op[0] == "set" and len(op) == 3:
            checked.append(("set", op[1], bytes(op[2])))
        elif op[0] == "delete" and len(op) == 2:
            checked.append(("delete", op[1]))
        else:
            raise ValueError(f"kv.batch: expected ('set', key, value) or ('delete', key), got {op!r}")
    _host.current().kv_batch(checked)
