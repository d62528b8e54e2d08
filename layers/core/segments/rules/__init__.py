"""Rules of rule-based segments (docs/api.md#rules), pure, no I/O.

- `grammar`: what a rule may say (`Rule`, `Operator`, `validate_rules`), checked before storing;
- `values`: the typed values rules compare (numbers, ISO dates, lists, `near` triples);
- `evaluator`: `compile_rules`, `matches` and `fields_read` over person records.
"""

from segments.rules import values
from segments.rules.evaluator import compile_rules, fields_read, matches
from segments.rules.grammar import (
    FIELD_MAX_LENGTH,
    FIELD_MAX_PARTS,
    OPERATORS,
    RAW_MAX_DEPTH,
    RULES_MAX,
    VALUE_MAX_BYTES,
    Operator,
    Rule,
    validate_rules,
)

__all__ = [
    "FIELD_MAX_LENGTH",
    "FIELD_MAX_PARTS",
    "OPERATORS",
    "RAW_MAX_DEPTH",
    "RULES_MAX",
    "VALUE_MAX_BYTES",
    "Operator",
    "Rule",
    "compile_rules",
    "fields_read",
    "matches",
    "validate_rules",
    "values",
]
