"""CPU the embedded emulator (moto) spends for nothing, taken out: same answers, same state.

The local runtime runs the handlers and moto in one Python process; under load, moto's own work is
most of the CPU (docs/pipeline.md, "where the time goes"). Two of its costs grow with nothing the
pipeline does:

* **EventBridge** — every rule target of every ``PutEvents`` entry re-parses the default input paths
  with ``jsonpath_ng.ext.parse``, which builds a new LALR parser (tables and all) per call. The parsed
  expressions are immutable: they are cached.
* **DynamoDB ``TransactWriteItems``** — for a rollback, moto deep-copies every table a transaction
  touches, once per item of the transaction: O(items in the table) per call, so a run slows down as
  its tables fill. The backup here copies the table's key index one level (references to the items)
  and deep-copies only the items the transaction writes — the only ones it can change — so a rollback
  restores exactly what moto's full copy would.

Installed once per process by :meth:`LocalRuntime._start_aws` for the embedded server only (an
external endpoint is its own affair).
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from collections import defaultdict
from typing import Any

_lock = threading.Lock()
_installed = False
_touched = threading.local()  # the (hash, range) keys per table of the transaction in progress


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _cache_jsonpath()
        _light_transaction_backup()
        _installed = True


def _cache_jsonpath() -> None:
    import jsonpath_ng.ext as ext  # moto imports ``parse`` from here at each call

    if not hasattr(ext.parse, "cache_info"):
        ext.parse = functools.lru_cache(maxsize=512)(ext.parse)


def _light_transaction_backup() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "_huiliu_light_backup", False):
        return
    # The same code, reading ``copy.deepcopy`` from a namespace whose deepcopy is the light backup.
    namespace = dict(original.__globals__)
    namespace["copy"] = types.SimpleNamespace(deepcopy=_backup)
    light = types.FunctionType(
        original.__code__, namespace, original.__name__, original.__defaults__, original.__closure__
    )

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _touched.keys = _keys_by_table(self, transact_items)
        try:
            return light(self, transact_items)  # type: ignore[no-any-return]
        finally:
            _touched.keys = None

    transact_write_items._huiliu_light_backup = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _keys_by_table(backend: Any, transact_items: list[dict[str, Any]]) -> dict[str, list[tuple[Any, Any]]]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    keys: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    for item in transact_items:
        if not isinstance(item, dict) or len(item) != 1:
            continue  # moto refuses it
        ((op_type, op),) = item.items()
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None:
            continue
        attrs = op.get("Item") if op_type == "Put" else op.get("Key")
        if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
            continue  # moto refuses it before writing anything
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in attrs:
                continue
            range_value = DynamoType(attrs[table.range_key_attr])
        keys[table.name].append((hash_value, range_value))
    return keys


def _backup(table: Any) -> Any:
    """What moto restores on a rollback: the table as it is now, for every key the transaction writes."""
    keys = (getattr(_touched, "keys", None) or {}).get(getattr(table, "name", None))
    if keys is None:
        return copy.deepcopy(table)
    snapshot = copy.copy(table)
    if table.has_range_key:
        snapshot.items = defaultdict(dict, {h: dict(v) for h, v in table.items.items()})
    else:
        snapshot.items = defaultdict(dict, table.items)
    for hash_value, range_value in keys:
        if range_value is not None:
            held = table.items.get(hash_value, {}).get(range_value)
            if held is not None:
                snapshot.items[hash_value][range_value] = copy.deepcopy(held)
        else:
            held = table.items.get(hash_value)
            if held is not None:
                snapshot.items[hash_value] = copy.deepcopy(held)
    return snapshot
