"""The benchmark package (tools/bench/): its layout holds, and the cheapest benchmark runs.

No figure is asserted here (performance is measured by `python -m tools.bench`, never by tests).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
from pathlib import Path

import pytest

from tools.bench import harness
from tools.bench import moto as bench_moto

PACKAGE = Path(harness.__file__).resolve().parent
MODULES = {p.stem: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for p in sorted(PACKAGE.glob("*.py"))}


def registered_names(tree: ast.Module) -> list[str]:
    """Names given to `@benchmark("name", ...)` in a module."""
    return [
        deco.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for deco in node.decorator_list
        if isinstance(deco, ast.Call)
        and isinstance(deco.func, ast.Name)
        and deco.func.id == "benchmark"
        and isinstance(deco.args[0], ast.Constant)
    ]


BENCHMARK_MODULES = {name: registered_names(tree) for name, tree in MODULES.items() if registered_names(tree)}


def package_imports(tree: ast.Module) -> dict[str, set[str]]:
    """Modules of tools.bench imported by a module -> the names taken from each ("" = the module itself)."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tools.bench."):
                    found.setdefault(alias.name.removeprefix("tools.bench."), set()).add("")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tools.bench":
                for alias in node.names:
                    found.setdefault(alias.name, set()).add("")
            elif node.module.startswith("tools.bench."):
                names = {alias.name for alias in node.names}
                found.setdefault(node.module.removeprefix("tools.bench."), set()).update(names)
    return found


def test_every_benchmark_module_is_registered() -> None:
    for module in BENCHMARK_MODULES:
        importlib.import_module(f"tools.bench.{module}")
    cli = importlib.import_module("tools.bench.__main__")
    importlib.import_module("tools.bench.members_doc")
    in_order = [m.__name__.removeprefix("tools.bench.") for m in cli.ORDER]
    assert sorted(in_order) == sorted(BENCHMARK_MODULES), "every benchmark module belongs in ORDER (__main__.py)"
    expected = {name for names in BENCHMARK_MODULES.values() for name in names}
    assert set(harness.BENCHMARKS) == expected
    assert all(b.target for b in harness.BENCHMARKS.values())


def test_cli_lists_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    from tools.bench.__main__ import main

    assert main(["--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert listed == [
        "cold-import",
        "snapstart",
        "create-calls",
        "members-calls",
        "members-speed",
        "members-reads",
        "signals-ingest",
        "signals-reads",
        "signals-late-joiners",
        "rules-eval",
        "rule-realtime",
        "rule-rebuild",
        "exports",
        "mailchimp",
        "stream_readers",
        "environments",
        "webhooks",
    ]


def test_no_import_cycle_in_the_package() -> None:
    graph = {name: set(package_imports(tree)) & set(MODULES) for name, tree in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in graph[name]:
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_no_benchmark_module_imports_another() -> None:
    for name in BENCHMARK_MODULES:
        others = set(package_imports(MODULES[name])) & (set(BENCHMARK_MODULES) - {name})
        assert not others, f"{name} imports {sorted(others)}"


def test_no_private_name_crosses_a_module() -> None:
    for name, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{name} imports {private} from {node.module}"
        aliases = {
            a.asname or a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module in ("tools.bench", "tools")
            for a in n.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                assert not node.attr.startswith("_"), f"{name} uses {node.value.id}.{node.attr}"


def test_only_the_adapter_imports_the_core() -> None:
    for name, tree in MODULES.items():
        for node in ast.walk(tree):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            uses_core = any(m == "segments" or m.startswith("segments.") for m in modules)
            assert name == "core" or not uses_core, f"{name} imports {modules}: go through tools.bench.core"


def test_create_calls_runs(capsys: pytest.CaptureFixture[str]) -> None:
    importlib.import_module("tools.bench.create_calls")
    opts = harness.Options(runs=1, no_build=True, rebuild=False, verbose=False)
    result = harness.BENCHMARKS["create-calls"].fn(opts)
    out = capsys.readouterr().out
    assert result["first create (cold container)"]["status"] == 200
    assert "first create (cold container)" in out and "target: 1 call, a write" in out


def test_members_doc_replaces_only_its_section(tmp_path: Path) -> None:
    from tools.bench import members_doc

    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nintro\n\n## Members\n\nold figures\n\n## Later\n\nkept\n", encoding="utf-8")
    members_doc.write_doc([("calls: target", "met")], doc)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Performance\n\nintro\n\n## Members\n")
    assert "old figures" not in text and "| calls: target | met |" in text
    assert text.endswith("## Later\n\nkept\n")


def test_moto_partition_lookup_answers_as_moto_does() -> None:
    """The benchmarks' partition lookup for moto's Query changes its cost, never its answers."""
    items = [
        {
            "pk": {"S": f"SEG#{s}"},
            "sk": {"S": f"PID#p-{i:03d}"},
            "gsi3pk": {"S": f"PID#p-{i:03d}"},
            "gsi3sk": {"S": f"MEMBER#org#{s}"},
        }
        for s in range(3)
        for i in range(40)
        if (i + s) % 3
    ]
    gsi3 = {"IndexName": "gsi3", "KeyConditionExpression": "gsi3pk = :pk"}
    queries = [
        {**gsi3, "ExpressionAttributeValues": {":pk": {"S": "PID#p-004"}}},
        {**gsi3, "ExpressionAttributeValues": {":pk": {"S": "PID#none"}}},
        {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "Limit": 7,
            "ScanIndexForward": False,
            "ExpressionAttributeValues": {":pk": {"S": "SEG#1"}, ":p": {"S": "PID#p-0"}},
        },
    ]

    def answers(patched: bool) -> list[object]:
        with harness.function_env(), bench_moto.moto_in_process() as client:
            with bench_moto.moto_partition_lookup() if patched else contextlib.nullcontext():
                table = harness.FUNCTION_ENV["TABLE_NAME"]
                for item in items:
                    client.put_item(TableName=table, Item=item)
                return [
                    (sorted(map(str, a["Items"])), a["Count"], a.get("LastEvaluatedKey"))
                    for a in (client.query(TableName=table, **q) for q in queries)
                ]

    assert answers(True) == answers(False)
