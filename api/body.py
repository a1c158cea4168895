"""Request bodies take JSON's types as JSON has them: ``false`` is not 0, ``"5"`` is not 5, ``1`` is not true.

Pydantic's lax mode turns ``"reminder_minutes": false`` into 0 and ``"active": 1``
into true; strict mode would also refuse an RFC 3339 string for a datetime or
a string for an enum, which is what JSON has for them. `Body` sits between:
before a field is validated, the JSON kind of the value (boolean, number,
string, array, object, null) must be one the field's annotation admits, or the
field is refused (422 naming it). Every request model of the API derives from
`Body`; `tests/api/test_hostile_input.py` checks that for every body of the
route table.
"""

from __future__ import annotations

import datetime as dt
import enum
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator

_KINDS = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
          dict: "an object", type(None): "null"}


def _kinds(annotation: Any) -> set[type] | None:
    """The JSON kinds (as Python types) an annotation admits; None for anything."""
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is object:
        return None
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        found: set[type] = set()
        for arg in typing.get_args(annotation):
            kinds = _kinds(arg)
            if kinds is None:
                return None
            found |= kinds
        return found
    if origin is typing.Literal:
        return {bool if isinstance(v, bool) else int if isinstance(v, int) else type(v)
                for v in typing.get_args(annotation)}
    if origin in (list, tuple, set, frozenset):
        return {list}
    if origin is dict:
        return {dict}
    if annotation is type(None) or annotation is None:
        return {type(None)}
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return {bool}
        if issubclass(annotation, enum.Enum):
            return {type(m.value) for m in annotation}
        if issubclass(annotation, int):
            return {int, float}  # 3.0 is an integer to JSON Schema; 2.5 is refused by the int field itself
        if issubclass(annotation, float):
            return {int, float}
        if issubclass(annotation, (str, dt.datetime, dt.date, dt.time, dt.timedelta)):
            return {str}
        if issubclass(annotation, (list, tuple, set, frozenset)):
            return {list}
        if issubclass(annotation, (dict, BaseModel)):
            return {dict}
    return None  # anything else: left to the field's own validation


def _item(annotation: Any) -> Any:
    """The element annotation of a list field (through Optional/Annotated), or None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _item(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        items = [i for i in (_item(a) for a in typing.get_args(annotation)) if i is not None]
        return items[0] if len(items) == 1 else None
    if origin in (list, set, frozenset):
        return typing.get_args(annotation)[0]
    return None


def _kind_of(value: Any) -> type | None:
    for kind in (bool, int, float, str, list, dict, type(None)):
        if isinstance(value, kind):
            return kind
    return None  # not a JSON value (a model built in Python): not this check's business


def _refuse(value: Any, kinds: set[type]) -> str | None:
    kind = _kind_of(value)
    if kind is None or kind in kinds:
        return None
    wanted = " or ".join(sorted({_KINDS[k] for k in kinds}))
    if kind is float and int in kinds:  # a number, but not one of the whole numbers the field takes
        return f"must be {wanted.replace('a number', 'a whole number')}, not {value!r}"
    return f"must be {wanted}, not {_KINDS[kind]}"


class Body(BaseModel):
    """Base of every request model: each field's JSON kind checked before Pydantic coerces anything."""

    @field_validator("*", mode="before")
    @classmethod
    def _json_kind(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        kinds = _kinds(field.annotation)
        if kinds is not None:
            problem = _refuse(value, kinds)
            if problem:
                raise ValueError(problem)
        item = _item(field.annotation)
        item_kinds = _kinds(item) if item is not None else None
        if item_kinds is not None and isinstance(value, list):
            for i, element in enumerate(value):
                problem = _refuse(element, item_kinds)
                if problem:
                    raise ValueError(f"item {i} {problem}")
        return value
