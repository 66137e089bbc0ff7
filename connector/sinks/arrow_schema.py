"""One fixed Arrow schema per OCSF class, derived from the class's generated JSON Schema, and rows that fit it.

Why fixed: Security Lake's Glue crawler (and Athena) read a custom source's files as one table, so every file of a
class must carry the same columns with the same types, whatever the events in it. The schema is therefore derived
from ``schemas/<class>.json`` alone (never from the data): every attribute of the class is a column (sorted by
name), absent attributes are typed nulls. ``tests/golden/arrow/<table>.txt`` pins each table's schema.

Derivation rules (JSON Schema → Arrow):

* ``string`` → ``string``; ``boolean`` → ``bool``; ``number`` → ``float64``;
* ``integer`` → ``int32`` when the schema bounds it inside int32 (an ``enum``, a ``const``, or ``minimum`` and
  ``maximum``: the OCSF ``*_id`` enums, ``class_uid``, ``type_uid``…), else ``int64``. The generated JSON Schema
  does not say which integers are OCSF ``timestamp_t``; they are unbounded, hence ``int64``: ``time`` and the other
  ``*_time`` attributes stay epoch milliseconds in a ``bigint`` column, as in OCSF's JSON and in Security Lake's own
  OCSF tables (which add ``time_dt`` timestamps only under the ``datetime`` profile, not used here);
* an object (``$ref`` into ``$defs``) → ``struct`` of its properties, an array of objects → ``list<struct>``, an
  array of scalars → ``list<scalar>``;
* **JSON strings** (``string`` columns holding the attribute's JSON text) for what has no fixed shape: free-form
  objects (``unmapped``, ``object``: any object without properties), attributes of several types (``data``), and
  objects cut off by the depth bound below. (``raw_data`` is a string in OCSF already.)

Depth bound: OCSF objects are recursive (``process.parent_process``, ``user.groups``, ``file.signature…``), and
fully expanded a class has thousands of leaf columns, each of which costs per row in Arrow (an offset and a
validity bit even when null) and per row group in the Parquet footer. So structs are expanded ``MAX_STRUCT_DEPTH``
(2) levels below the event (``actor`` → ``actor.user`` → its scalars, ``metadata.product`` → ``vendor_name``), and
an object nested deeper, or an object of the same ``$defs`` entry as one it sits in (a cycle), is one JSON string
column (``metadata.product.feature``, ``actor.user.groups``, ``actor.process.parent_process``). Athena reads those
with ``json_extract_scalar``.

Rows: ``TableConverter`` turns validated events into a record batch of the schema (JSON strings where the schema has
them); pyarrow fills absent attributes with nulls. Events were validated against the same JSON Schema, so they fit;
should one not (an integer beyond int64, which JSON Schema allows; a shape this derivation missed), the value that
does not fit is set to null in its column and kept, under ``parquet_unfit`` with its dotted path, in the event's
``unmapped`` JSON: the event is delivered, nothing is lost, and the sink counts and logs (path only) each such value.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import pyarrow as pa

from connector.ocsf.catalog import class_schema
from connector.registry import registry

__all__ = ["MAX_STRUCT_DEPTH", "UNFIT_KEY", "TableConverter", "arrow_schema", "table_converter"]

MAX_STRUCT_DEPTH: Final = 2
UNFIT_KEY: Final = "parquet_unfit"
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


class _Json:
    """The attribute's JSON text in a ``string`` column."""

    arrow: Final = pa.string()


_JSON: Final = _Json()


@dataclass(frozen=True)
class _Scalar:
    """A scalar column; ``fits`` mirrors JSON Schema's type (a bool is no integer) plus the Arrow range."""

    arrow: pa.DataType
    kind: str  # "string" | "boolean" | "number" | "integer"
    low: int = 0
    high: int = 0

    def fits(self, value: Any) -> bool:
        kind = self.kind
        if kind == "string":
            return type(value) is str
        if kind == "boolean":
            return type(value) is bool
        if kind == "integer":
            return type(value) is int and self.low <= value <= self.high
        return type(value) in (int, float) and (type(value) is float or _INT64[0] <= value <= _INT64[1])


@dataclass(frozen=True)
class _Struct:
    """A struct column: its fields by name (sorted), each a node."""

    arrow: pa.DataType
    fields: Mapping[str, _Node]

    @functools.cached_property
    def keys(self) -> frozenset[str]:
        return frozenset(self.fields)


@dataclass(frozen=True)
class _List:
    """A list column of scalars or structs."""

    arrow: pa.DataType
    item: _Scalar | _Struct


_Node = _Json | _Scalar | _Struct | _List


class _Deriver:
    """Walks one class's JSON Schema (following ``$ref`` into ``$defs``) into nodes, bounded as documented."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._defs: Mapping[str, Any] = schema.get("$defs", {})

    def struct(self, properties: Mapping[str, Any], depth: int, path: frozenset[str]) -> dict[str, _Node]:
        return {name: self.node(properties[name], depth, path) for name in sorted(properties)}

    def node(self, prop: Mapping[str, Any], depth: int, path: frozenset[str]) -> _Node:
        ref = prop.get("$ref")
        if ref is not None:
            return self._object(ref, depth, path)
        kind = prop.get("type")
        if kind == "array":
            items = prop.get("items", {})
            item = self.node(items, depth, path)
            if isinstance(item, _Scalar | _Struct):
                return _List(pa.list_(item.arrow), item)
            return _JSON  # an array of free-form or cut-off objects: the whole array as one JSON text
        if kind == "string":
            return _Scalar(pa.string(), "string")
        if kind == "boolean":
            return _Scalar(pa.bool_(), "boolean")
        if kind == "number":
            return _Scalar(pa.float64(), "number")
        if kind == "integer":
            low, high = _bounds(prop)
            if _INT32[0] <= low and high <= _INT32[1]:
                return _Scalar(pa.int32(), "integer", *_INT32)
            return _Scalar(pa.int64(), "integer", *_INT64)
        return _JSON  # "object" without a $ref, several types, or no type at all

    def _object(self, ref: str, depth: int, path: frozenset[str]) -> _Node:
        name = ref.rsplit("/", 1)[-1]
        definition = self._defs.get(name, {})
        properties = definition.get("properties") or {}
        if not properties or depth >= MAX_STRUCT_DEPTH or name in path:
            return _JSON
        fields = self.struct(properties, depth + 1, path | {name})
        return _Struct(pa.struct([pa.field(key, node.arrow) for key, node in fields.items()]), fields)


def _bounds(prop: Mapping[str, Any]) -> tuple[int | float, int | float]:
    """The integer range the schema allows (unbounded: +-inf)."""
    values = prop.get("enum") or ([prop["const"]] if "const" in prop else None)
    if values:
        return min(values), max(values)
    return prop.get("minimum", float("-inf")), prop.get("maximum", float("inf"))


@functools.cache
def _compiled(table: str) -> tuple[pa.Schema, TableConverter]:
    spec = registry().table(table)
    json_schema = class_schema(spec.class_uid)
    fields = _Deriver(json_schema).struct(json_schema.get("properties", {}), 0, frozenset())
    schema = pa.schema([pa.field(name, node.arrow) for name, node in fields.items()])
    return schema, TableConverter(table, schema, fields)


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of every Parquet file of ``table`` (a manifest table name), compiled once per process."""
    return _compiled(table)[0]


def table_converter(table: str) -> TableConverter:
    """The event converter of ``table`` (see ``TableConverter``), compiled once per process."""
    return _compiled(table)[1]


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits (orjson refuses it; the standard library does not)
        return json.dumps(value, ensure_ascii=False, default=str)


class _Unfit(Exception):
    """A value the fast path cannot place (an unknown attribute, a list or object of the wrong type)."""


# What pyarrow and the fast path raise on a value that does not fit its column (ArrowInvalid is a ValueError,
# ArrowTypeError a TypeError).
_NOT_FITTING = (_Unfit, TypeError, ValueError, OverflowError, AttributeError)


class TableConverter:
    """Turns a list of events of one table into one ``pyarrow.RecordBatch`` of its schema, column by column.

    Column by column rather than row by row: a column (or a whole struct) that no event of the batch fills is one
    ``pyarrow.nulls`` call, whatever its number of leaves, so the cost per event follows what the events hold, not
    the width of the class (839 leaf columns for Authentication). Unchecked first (the events were validated
    against the same JSON Schema); when pyarrow or the walk refuses a value, the batch is redone with every value
    checked, the unfit ones moved into ``unmapped`` and reported through ``on_unfit(event, dotted_path)``.
    """

    def __init__(self, table: str, schema: pa.Schema, fields: Mapping[str, _Node]) -> None:
        self.table = table
        self.schema = schema
        self._fields = fields
        self._keys = frozenset(fields)
        self._has_unmapped = fields.get("unmapped") is _JSON

    def record_batch(
        self, events: Sequence[Mapping[str, Any]], on_unfit: Callable[[Mapping[str, Any], str], None]
    ) -> pa.RecordBatch:
        """The events as one record batch, in their order."""
        try:
            return self._build(events)
        except _NOT_FITTING:
            pass
        return self._build([self._fitted(event, on_unfit) for event in events])

    def _build(self, events: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        count = len(events)
        present = set().union(*events)
        if not present <= self._keys:
            raise _Unfit
        columns = [
            _column(node, [event.get(name) for event in events]) if name in present else pa.nulls(count, node.arrow)
            for name, node in self._fields.items()
        ]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def _fitted(
        self, event: Mapping[str, Any], on_unfit: Callable[[Mapping[str, Any], str], None]
    ) -> Mapping[str, Any]:
        unfit: dict[str, Any] = {}
        fitted = _checked(event, self._fields, "", unfit)
        if not unfit:
            return fitted
        for path in unfit:
            on_unfit(event, path)
        if self._has_unmapped:
            unmapped = event.get("unmapped")
            kept = dict(unmapped) if isinstance(unmapped, Mapping) else {}
            if unmapped is not None and not isinstance(unmapped, Mapping):
                kept["value"] = unmapped
            kept[UNFIT_KEY] = unfit
            fitted["unmapped"] = kept
        return fitted


def _column(node: _Node, values: list[Any]) -> pa.Array:
    """One column (values: one per event, None when absent), built bottom-up."""
    count = len(values)
    nulls = values.count(None)
    if nulls == count:
        return pa.nulls(count, node.arrow)
    if isinstance(node, _Scalar):
        return pa.array(values, node.arrow)
    if isinstance(node, _Json):
        return pa.array([None if value is None else _dumps(value) for value in values], pa.string())
    mask = pa.array([value is None for value in values], pa.bool_()) if nulls else None
    if isinstance(node, _Struct):
        rows = [value for value in values if value is not None] if nulls else values
        present = set().union(*rows)  # TypeError when a value is no object
        if not present <= node.keys:
            raise _Unfit
        children = [
            (
                _column(child, [None if value is None else value.get(name) for value in values])
                if nulls
                else _column(child, [value.get(name) for value in values])
            )
            if name in present
            else pa.nulls(count, child.arrow)
            for name, child in node.fields.items()
        ]
        return pa.StructArray.from_arrays(children, fields=list(node.arrow), mask=mask)
    offsets = [0]
    flat: list[Any] = []
    for value in values:
        if value is not None:
            if type(value) is not list:
                raise _Unfit
            flat.extend(value)
        offsets.append(len(flat))
    items = _column(node.item, flat) if flat else pa.array([], node.item.arrow)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items, type=node.arrow, mask=mask)


def _checked(obj: Mapping[str, Any], fields: Mapping[str, _Node], prefix: str, unfit: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` holding only values that fit; the others go into ``unfit`` by dotted path."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"{prefix}{key}"
        node = fields.get(key)
        if value is None:
            continue
        if node is None:
            unfit[path] = value
            continue
        fitted = _fit(node, value, path, unfit)
        if fitted is not _MISSING:
            out[key] = fitted
    return out


_MISSING: Final = object()


def _fit(node: _Node, value: Any, path: str, unfit: dict[str, Any]) -> Any:
    if isinstance(node, _Json):
        return value
    if isinstance(node, _Scalar):
        if node.fits(value):
            return value
    elif isinstance(node, _Struct):
        if isinstance(value, Mapping):
            return _checked(value, node.fields, f"{path}.", unfit)
    elif type(value) is list:
        items = []
        for index, item in enumerate(value):
            fitted = _fit(node.item, item, f"{path}[{index}]", unfit) if item is not None else None
            items.append(None if fitted is _MISSING else fitted)
        return items
    unfit[path] = value
    return _MISSING
