"""The rule grammar of rule-based segments (docs/api.md#rules): what a rule may say, checked before a
segment is stored. Pure, no I/O.

A rule is {field, operator, value}; a segment's rules are ANDed. `field` is a dotted path of
identifier-like names (`location.country`). `raw` holds a JSON boolean tree
{"all": [...]} | {"any": [...]} | {"not": node} of plain rules — never a database query string —
and its own `field` is not read. Each operator's value is checked here (comparisons take a number
or an ISO date, `near` takes "lat,lon,km", ...), so a rule that is stored can be evaluated.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from segments import errors
from segments.rules import values
from segments.store import limits

RAW_MAX_DEPTH = 10
VALUE_MAX_BYTES = 16 * 1024  # a rule's value, as DynamoDB counts it
FIELD_MAX_LENGTH = 200
FIELD_MAX_PARTS = 8  # names in a dotted path
RULES_MAX = 100  # rules of one segment (as the SheepCRM create allows)

Operator = Literal[
    "and_list",
    "equals",
    "exact",
    "greater_than",
    "greater_than_or_equals",
    "less_than",
    "less_than_or_equals",
    "near",
    "none_of",
    "not_equal_to",
    "or_list",
    "raw",
    "starts_with",
    "starts_with_case_insensitive",
]
OPERATORS: tuple[str, ...] = get_args(Operator)
EQUALITY = frozenset({"equals", "exact", "not_equal_to"})
COMPARISON = frozenset({"greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals"})
PREFIX = frozenset({"starts_with", "starts_with_case_insensitive"})
LISTS = frozenset({"or_list", "and_list", "none_of"})

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_PATH = re.compile(rf"{_NAME}(?:\.{_NAME})*")

NEAR_TAKES = 'near takes "lat,lon,km" (latitude -90..90, longitude -180..180, km > 0)'


def field_problem(field: str) -> str | None:
    """Why `field` is not a dotted path of identifier-like names, or None."""
    if not _PATH.fullmatch(field):
        return (
            "field must be a dotted path of names (letters, digits, _ or -, each starting with a "
            "letter or _), e.g. location.country"
        )
    if field.count(".") + 1 > FIELD_MAX_PARTS:
        return f"field may name at most {FIELD_MAX_PARTS} nested attributes"
    return None


def value_problem(operator: str, value: Any) -> str | None:
    """Why `value` is not a value of `operator` (the raw tree excepted), or None."""
    if operator in EQUALITY:
        if not values.is_scalar(value):
            return f"{operator} takes a string, number or boolean"
    elif operator in COMPARISON:
        if values.number(value) is None and values.when(value) is None:
            hint = ""
            if isinstance(value, str) and _numeric(value):
                hint = f" (send the number {value.strip()}, not the string {value!r})"
            return (
                f"{operator} takes a number, an ISO date (YYYY-MM-DD) or an ISO datetime "
                f"(YYYY-MM-DDTHH:MM:SS, with Z or an offset){hint}"
            )
    elif operator in PREFIX:
        if not isinstance(value, str) or not value:
            return f"{operator} takes a non-empty string"
    elif operator in LISTS:
        if values.listed(value) is None:
            return f"{operator} takes a non-empty list of strings, numbers or booleans, or a comma-separated string"
    elif operator == "near" and values.near(value) is None:
        return NEAR_TAKES
    return None


def _numeric(text: str) -> bool:
    try:
        return values.number(Decimal(text.strip())) is not None
    except ArithmeticError:
        return False


def _invalid(loc: str, message: str, given: Any) -> ValidationError:
    """A ValidationError located at one field of the rule (pydantic merges it into the caller's)."""
    return ValidationError.from_exception_data(
        "Rule",
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", "Value error, {why}", {"why": message}), loc=(loc,), input=given
            )
        ],
    )


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, max_length=FIELD_MAX_LENGTH)
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
    def _per_operator(self) -> Rule:
        """What each operator needs of `field` and `value` (errors located at that field)."""
        if self.operator == "raw":
            try:
                _check_tree(self.value, depth=0)
            except ValueError as exc:
                raise _invalid("value", str(exc), self.value) from None
            return self
        problem = field_problem(self.field)
        if problem:
            raise _invalid("field", problem, self.field)
        problem = value_problem(self.operator, self.value)
        if problem:
            raise _invalid("value", problem, self.value)
        return self


def _check_tree(node: Any, depth: int, at: str = "") -> None:
    """A `raw` value: {"all": [...]} | {"any": [...]} | {"not": node} over plain rules, never a query string."""
    if depth >= RAW_MAX_DEPTH:  # depth counts from 0: the tenth all/any/not node is at depth 9
        raise ValueError(f"raw rule trees may nest at most {RAW_MAX_DEPTH} levels")
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(
            'raw value must be {"all": [...]}, {"any": [...]} or {"not": rule}' + (f" (at {at})" if at else "")
        )
    ((op, inner),) = node.items()
    here = f"{at}.{op}" if at else str(op)
    if op in ("all", "any"):
        if not isinstance(inner, list) or not inner:
            raise ValueError(f'"{op}" takes a non-empty list' + (f" (at {at})" if at else ""))
        for i, child in enumerate(inner):
            _check_node(child, depth + 1, f"{here}.{i}")
    elif op == "not":
        _check_node(inner, depth + 1, here)
    else:
        raise ValueError(f'unknown raw operator "{op}" (use all, any or not)')


def _check_node(node: Any, depth: int, at: str) -> None:
    if isinstance(node, dict) and "field" in node:
        try:
            rule = Rule.model_validate(node)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join([at, *map(str, first["loc"])])
            raise ValueError(f"invalid rule in raw tree at {where}: {_msg(first)}") from None
        if rule.operator == "raw":
            raise ValueError(f"a raw tree holds plain rules, not another raw rule (at {at})")
    else:
        _check_tree(node, depth, at)


def _msg(error: Any) -> str:
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def validate_rules(raw_rules: Any) -> list[Rule]:
    """A segment's rules, parsed and checked; `errors.ValidationFailed` naming the first bad rule
    ("Invalid 'rules.2.value': ...") for anything else — and nothing but ValidationFailed."""
    if isinstance(raw_rules, Rule):
        raw_rules = [raw_rules]
    if not isinstance(raw_rules, list | tuple):
        raise errors.ValidationFailed("Invalid 'rules': must be a list of rules")
    if len(raw_rules) > RULES_MAX:
        raise errors.ValidationFailed(f"Invalid 'rules': at most {RULES_MAX} rules")
    parsed = []
    for i, raw in enumerate(raw_rules):
        try:
            parsed.append(raw if isinstance(raw, Rule) else Rule.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(["rules", str(i), *map(str, first["loc"])])
            raise errors.ValidationFailed(f"Invalid '{where}': {_msg(first)}") from None
        except RecursionError:
            raise errors.ValidationFailed(f"Invalid 'rules.{i}': nested too deeply") from None
    return parsed
