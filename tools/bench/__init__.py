"""Benchmarks for docs/performance.md (`python -m tools.bench`, see `__main__`).

- `harness`: the registry (`@benchmark`), options, output and what the benchmarks share.
- `core`: the benchmarks' only use of the core (`segments.*`).
- one module per benchmark: `cold_import`, `create_calls`, `members_calls`, `members_speed`,
  `members_reads`, `rules_eval`; none imports another.
- `rules_reference`: a slow, obvious interpreter of the rule semantics (the yardstick of
  `rules_eval` and of tests/unit/test_rules_properties.py).
- `environments`: the local stack with execution environments as threads against processes
  (`process_env`, the prototype environment in a process of its own).
- `members_doc`: runs the members benchmarks and rewrites the "Members" section of the doc.
"""
