"""The rule grammar of rule-based segments (API.md §3.2): pure, no I/O.

A rule is {field, operator, value}; a segment's rules are ANDed. `raw` holds a JSON boolean tree
{"all": [...]} | {"any": [...]} | {"not": node} of plain rules — never a database query string.
The evaluator that decides membership builds on these definitions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from segments import limits

RAW_MAX_DEPTH = 10
VALUE_MAX_BYTES = 16 * 1024  # a rule's value, as DynamoDB counts it

Operator = Literal[
    "and_list", "equals", "exact", "greater_than", "greater_than_or_equals", "less_than",
    "less_than_or_equals", "near", "none_of", "not_equal_to", "or_list", "raw", "starts_with",
    "starts_with_case_insensitive",
]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, max_length=200)
    operator: Operator
    value: Any = None

    @field_validator("value")
    @classmethod
    def _value(cls, value: Any) -> Any:
        """Any JSON value DynamoDB can store, numbers as Decimal (see limits.storable), at most
        VALUE_MAX_BYTES."""
        if not (isinstance(value, str | int | float | Decimal | bool | list | dict) or value is None):
            raise ValueError("value must be a string, number, boolean, list or object")
        if limits.value_size(value) > VALUE_MAX_BYTES:
            raise ValueError(f"value must take at most {VALUE_MAX_BYTES:,} bytes")
        try:
            return limits.storable(value, "value")
        except limits.LimitExceeded as exc:
            where = "" if exc.field == "value" else f" (at {exc.field})"
            raise ValueError(f"{exc.message}{where}") from None

    @model_validator(mode="after")
    def _raw_tree(self) -> Rule:
        if self.operator == "raw":
            _check_tree(self.value, depth=0)
        return self


def _check_tree(node: Any, depth: int) -> None:
    """A `raw` value: {"all": [...]} | {"any": [...]} | {"not": node} over plain rules, never a query string."""
    if depth > RAW_MAX_DEPTH:
        raise ValueError(f"raw rule trees may nest at most {RAW_MAX_DEPTH} levels")
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError('raw value must be {"all": [...]}, {"any": [...]} or {"not": rule}')
    (op, inner), = node.items()
    if op in ("all", "any"):
        if not isinstance(inner, list) or not inner:
            raise ValueError(f'"{op}" takes a non-empty list')
        for child in inner:
            _check_node(child, depth + 1)
    elif op == "not":
        _check_node(inner, depth + 1)
    else:
        raise ValueError(f'unknown raw operator "{op}" (use all, any or not)')


def _check_node(node: Any, depth: int) -> None:
    if isinstance(node, dict) and "field" in node:
        try:
            rule = Rule.model_validate(node)
        except ValidationError as exc:
            raise ValueError(f"invalid rule in raw tree: {exc.errors()[0]['msg']}") from None
        if rule.operator == "raw":
            raise ValueError("a raw tree holds plain rules, not another raw rule")
    else:
        _check_tree(node, depth)
