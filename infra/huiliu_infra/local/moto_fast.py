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

* **JSON response serialisation** — for every member of every structure in a response (each
  attribute value of each item: the ten members of ``AttributeValue``), moto's attribute picker
  builds a context and recomputes the names the member may be stored under (six alias providers,
  ``xform_name``), then tries each. For a plain ``dict`` those names depend only on the service,
  the structure, the member and its shape — never on the values — so they are computed once and
  looked up in the dict directly (same names, same order, same answer). A BatchGetItem of 100
  journeys items cost ~100 ms of emulator CPU.
* **DynamoDB item size check** — moto builds every item (each put, each projected query result)
  attribute by attribute into a dict that re-sums the size of *all* attributes so far on each
  insertion (O(attributes²) size walks per item) to refuse one over 400 KB. The sizes only grow
  as distinct attributes are added, so the check on the finished item refuses exactly the same
  items: it is done once.
* **DynamoDB projections** — to project an item onto ``ProjectionExpression`` names, moto turns the
  whole item into plain Python (a deep copy of every attribute), picks the names, and serialises
  them back: per result of a keys-only Query, the cost of the full item. When every projected name
  is a top-level attribute holding a string, binary, boolean or null, the picked attributes are
  copied as they are (the same values; numbers, sets and documents still take moto's way).
* **Dispatch** — the server asks, for every request, whether the host names a moto module by
  listing moto's package directory (a ``stat`` per entry, ~200 of them). The directory does not
  change while the process runs: it is listed once.
* **DynamoDB ``BatchExecuteStatement``** — moto runs every PartiQL statement by turning *every item
  of every table* into JSON first (O(table) per statement), and its UPDATE neither accepts more
  than one ``SET``/``REMOVE`` clause nor reports a WHERE that matches no item. That is not what
  DynamoDB does: an UPDATE statement is an UpdateItem on the key its WHERE names, conditional on
  the rest of the WHERE, and a false condition is that statement's ``ConditionalCheckFailed``
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.update.html).
  The statements of the form the journeys tick commits with (``UPDATE "t" SET "a"=? … REMOVE "b" …
  WHERE "pk"=? AND "sk"=? AND "rev"=?``: top-level names, ``?`` parameters, equalities) are run here
  that way, on the item itself; any other statement goes to moto as before. Emulator only: what
  runs on AWS is the statement itself.

Installed once per process by :meth:`LocalRuntime._start_aws` for the embedded server only (an
external endpoint is its own affair), by the ``deployed`` test fixture, and by the benchmarks'
emulator (``python -m huiliu_infra.local.moto_fast``: moto's server with these installed).
"""

from __future__ import annotations

import copy
import functools
import re
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
        _partiql_updates()
        _cached_alias_keys()
        _item_size_once()
        _top_level_projection()
        _module_list_once()
        _installed = True


_MARK = "_huiliu_shim"


def _shimmed(function: Any) -> bool:
    """Whether ``function`` is one of ours (a reloaded module must not wrap a shim again)."""
    return bool(getattr(function, _MARK, False))


def _shim(owner: Any, name: str, replacement: Any) -> None:
    """Install ``replacement`` as ``owner.name``, marked as ours."""
    setattr(replacement, _MARK, True)
    setattr(owner, name, replacement)


def _cache_jsonpath() -> None:
    import jsonpath_ng.ext as ext  # moto imports ``parse`` from here at each call

    if not hasattr(ext.parse, "cache_info"):
        ext.parse = functools.lru_cache(maxsize=512)(ext.parse)


def _light_transaction_backup() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    if _shimmed(original):
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

    _shim(DynamoDBBackend, "transact_write_items", transact_write_items)


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


# -- PartiQL UPDATE statements, as DynamoDB runs them ---------------------------------------------
_NAME = r'(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))'
_UPDATE = re.compile(
    r"\s*UPDATE\s+" + _NAME + r"\s+(.*?)\s+WHERE\s+(.*?)\s*;?\s*$", re.IGNORECASE | re.DOTALL
)
_CLAUSE = re.compile(r"\s*(?:SET\s+" + _NAME + r"\s*=\s*\?|REMOVE\s+" + _NAME + r")\s*", re.IGNORECASE)
_EQUALS = re.compile(r"\s*" + _NAME + r"\s*=\s*\?\s*$")
_statement_lock = threading.Lock()  # the server answers on threads: check and write as one step


def _name(match: re.Match[str], first: int) -> str:
    return match.group(first) or match.group(first + 1)


def _parse_update(statement: str) -> tuple[str, list[tuple[str, bool]], list[str]] | None:
    """(table, [(name, is_set)], [where names]) of a simple UPDATE; None for anything else."""
    found = _UPDATE.match(statement)
    if found is None:
        return None
    table, body, where = _name(found, 1), found.group(3), found.group(4)
    actions: list[tuple[str, bool]] = []
    at = 0
    while at < len(body):
        clause = _CLAUSE.match(body, at)
        if clause is None or clause.end() == at:
            return None
        if clause.group(1) or clause.group(2):
            actions.append((_name(clause, 1), True))
        else:
            actions.append((_name(clause, 3), False))
        at = clause.end()
    conditions = []
    for part in re.split(r"\s+AND\s+", where, flags=re.IGNORECASE):
        equal = _EQUALS.match(part)
        if equal is None:
            return None
        conditions.append(_name(equal, 1))
    return (table, actions, conditions) if actions else None


def _run_update(
    backend: Any, parsed: tuple[str, list[tuple[str, bool]], list[str]], params: list[Any]
) -> dict[str, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    table_name, actions, conditions = parsed
    table = backend.tables.get(table_name)
    if table is None:
        return {"Error": {"Code": "ResourceNotFound", "Message": "Requested resource not found"}}
    n_set = sum(1 for _, is_set in actions if is_set)
    if len(params) != n_set + len(conditions):
        return {
            "Error": {
                "Code": "ValidationError",
                "Message": "Number of parameters in request and statement don't match.",
            }
        }
    values, where = params[:n_set], dict(zip(conditions, params[n_set:], strict=True))
    key_names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    if any(k not in where for k in key_names) or any(k in key_names for k, is_set in actions):
        return {
            "Error": {
                "Code": "ValidationError",
                "Message": "Where clause does not contain a mandatory equality on all key attributes",
            }
        }
    hash_value = DynamoType(where[table.hash_key_attr])
    range_value = DynamoType(where[table.range_key_attr]) if table.range_key_attr else None
    with _statement_lock:
        current = table.get_item(hash_value, range_value)
        if current is None or any(
            name not in current.attrs or current.attrs[name] != DynamoType(value)
            for name, value in where.items()
            if name not in key_names
        ):
            return {
                "TableName": table_name,
                "Error": {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
            }
        attrs = {name: value.to_json() for name, value in current.attrs.items()}
        given = iter(values)
        for name, is_set in actions:
            if is_set:
                attrs[name] = next(given)
            else:
                attrs.pop(name, None)
        table.put_item(attrs, overwrite=True)
    return {"TableName": table_name}


def _partiql_updates() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.batch_execute_statement
    if _shimmed(original):
        return

    @functools.wraps(original)
    def batch_execute_statement(self: Any, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        parsed = [_parse_update(str(s.get("Statement", ""))) for s in statements]
        if not all(parsed):
            return original(self, statements)  # type: ignore[no-any-return]
        return [
            _run_update(self, p, list(s.get("Parameters") or []))
            for p, s in zip(parsed, statements, strict=True)
            if p is not None
        ]

    _shim(DynamoDBBackend, "batch_execute_statement", batch_execute_statement)


# -- JSON responses: each structure member's stored names computed once -----------------------------
def _cached_alias_keys() -> None:
    from moto.core import serialize

    serializer = serialize.JSONSerializer  # JSON-protocol services (DynamoDB among them) only
    if _shimmed(serializer.__dict__.get("_serialize_structure_member")):
        return
    original = serialize.ResponseSerializer._serialize_structure_member
    names: dict[tuple[Any, ...], tuple[str, ...]] = {}

    @functools.wraps(original)
    def _serialize_structure_member(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        picker = self._value_picker
        if (
            type(value) is not dict
            or type(picker) is not serialize.XFormedAttributePicker
            or picker.response_transformers
            or picker.alias_providers is not serialize.DEFAULT_ALIAS_PROVIDERS
        ):
            original(self, serialized, value, shape, key)
            return
        # A plain dict has no Meta (ExplicitAlias) and the class name "dict" (ClassPrefixAlias): the
        # other providers read only the shape, its parent structure and the key — not the values.
        parent = getattr(shape, "parent", None)
        cache_key = (self.service_model.service_name, getattr(parent, "name", None), key, shape.name)
        possible = names.get(cache_key)
        if possible is None:
            context = serialize.AttributePickerContext(
                obj=value, key=key, shape=shape, operation_model=None, service_model=self.service_model
            )
            possible = names[cache_key] = tuple(picker.get_possible_keys(context))
        member_value = None
        for name in possible:
            if "." in name:  # a path (moto's get_value walks it): not the fast case
                original(self, serialized, value, shape, key)
                return
            if name in value:
                member_value = value[name]
                break
        if member_value is not None:
            self._serialize(serialized, member_value, shape, key)

    _shim(serializer, "_serialize_structure_member", _serialize_structure_member)

    # A plain dict whose keys are all member names of a structure where no member's stored names
    # include a sibling's name: each member's value can only be the dict's entry under its own
    # name, so the members are read from the dict directly (in the shape's order, as moto does).
    structure = serialize.BaseJSONSerializer._serialize_type_structure
    direct: dict[tuple[str, str], bool] = {}

    def readable_directly(self: Any, shape: Any) -> bool:
        cache_key = (self.service_model.service_name, shape.name)
        found = direct.get(cache_key)
        if found is None:
            members = set(shape.members)
            found = True
            for member_key, member_shape in shape.members.items():
                member_shape.parent = shape
                context = serialize.AttributePickerContext(
                    obj={},
                    key=member_key,
                    shape=member_shape,
                    operation_model=None,
                    service_model=self.service_model,
                )
                possible = set(self._value_picker.get_possible_keys(context))
                if possible & (members - {member_key}) or any("." in n for n in possible):
                    found = False
                    break
            direct[cache_key] = found
        return found

    @functools.wraps(structure)
    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        picker = self._value_picker
        if (
            type(value) is not dict
            or shape.is_document_type
            or type(picker) is not serialize.XFormedAttributePicker
            or picker.response_transformers
            or picker.alias_providers is not serialize.DEFAULT_ALIAS_PROVIDERS
            or not value.keys() <= shape.members.keys()
            or not readable_directly(self, shape)
        ):
            structure(self, serialized, value, shape, key)
            return
        wrapper: Any = self.MAP_TYPE() if key else serialized
        for member_key, member_shape in shape.members.items():
            member_shape.parent = shape
            member_value = value.get(member_key)
            if member_value is not None:
                self._serialize(wrapper, member_value, member_shape, member_key)
        if key:
            self._default_serialize(serialized, wrapper, shape, key)

    _shim(serializer, "_serialize_type_structure", _serialize_type_structure)


# -- an item's 400 KB check, once per item -----------------------------------------------------------
def _item_size_once() -> None:
    from moto.dynamodb.models import dynamo_type

    item_cls = dynamo_type.Item
    original = item_cls.__init__
    if _shimmed(original):
        return

    @functools.wraps(original)
    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        converted = {key: dynamo_type.DynamoType(value) for key, value in attrs.items()}
        # moto's LimitedSizeDict raises when the running total (names + values) passes 405,000
        # bytes at any insertion; with distinct names the running total only grows, so the total
        # of the finished item decides the same.
        total = sum(dynamo_type.bytesize(key) + value.size() for key, value in converted.items())
        if total > 405000:
            raise dynamo_type.ItemSizeTooLarge
        self.attrs = dynamo_type.LimitedSizeDict(converted)  # its update() does not re-check

    _shim(item_cls, "__init__", __init__)


# -- projections onto top-level scalar attributes --------------------------------------------------------
_PLAIN_TYPES = frozenset({"S", "B", "BOOL", "NULL"})


def _top_level_projection() -> None:
    from moto.dynamodb.models import dynamo_type

    item_cls = dynamo_type.Item
    original = item_cls.project
    if _shimmed(original):
        return

    @functools.wraps(original)
    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        names = []
        for expression in projection_expressions:
            if len(expression) != 1 or "[" in expression[0]:
                return original(self, projection_expressions)
            names.append(expression[0])
        picked = {}
        for name in names:
            value = self.attrs.get(name)
            if value is None:
                continue  # absent: not in the projection (as moto's find_nested_key)
            if value.type not in _PLAIN_TYPES:
                return original(self, projection_expressions)
            picked[name] = copy.deepcopy(value)
        return item_cls(hash_key=self.hash_key, range_key=self.range_key, attrs=picked)

    _shim(item_cls, "project", project)


# -- moto's module list, once ----------------------------------------------------------------------------
def _module_list_once() -> None:
    from moto import backends

    original = backends.list_of_moto_modules
    if _shimmed(original):
        return
    listed: list[tuple[str, ...]] = []

    @functools.wraps(original)
    def list_of_moto_modules() -> Any:
        if not listed:
            listed.append(tuple(original()))
        return iter(listed[0])

    _shim(backends, "list_of_moto_modules", list_of_moto_modules)


def main(argv: list[str] | None = None) -> None:
    """moto's server with these speed-ups (the benchmarks' emulator): ``python -m
    huiliu_infra.local.moto_fast -H 127.0.0.1 -p 5000``."""
    from moto import server

    install()
    server.main(argv)


if __name__ == "__main__":
    main()
