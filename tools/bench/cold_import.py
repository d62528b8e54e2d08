"""`cold-import`: import of each handler from the built artifact, against `import boto3` from the
same layer, in fresh processes (docs/performance.md, "Cold import")."""

from __future__ import annotations

import collections
import json
import os
import platform
import shutil
import statistics
import subprocess  # nosec B404  # fixed argv below
import textwrap
from pathlib import Path
from typing import Any

from tools import cfn
from tools.bench.harness import (
    BENCH_DIR,
    BUILD_DIR,
    FUNCTION_ENV,
    REGION,
    ROOT,
    SAM,
    TEMPLATE,
    VENV_PY,
    Options,
    benchmark,
    functions_of,
    say,
)

# ------------------------------------------------------------------ sam build


def _newest_source_mtime() -> float:
    newest = TEMPLATE.stat().st_mtime
    for base in (ROOT / "layers", ROOT / "functions"):
        for path in base.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


def sam_env() -> dict[str, str]:
    """SAM from its own venv, with the project venv first so that `python3.13` resolves."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(SAM.parent), env.get("PATH", "")])
    env.setdefault("AWS_DEFAULT_REGION", REGION)
    env["SAM_CLI_TELEMETRY"] = "0"
    return env


def ensure_build(opts: Options) -> Path:
    built = BUILD_DIR / "template.yaml"
    fresh = built.exists() and built.stat().st_mtime >= _newest_source_mtime()
    if opts.no_build:
        if not built.exists():
            raise SystemExit("--no-build: .aws-sam/build is missing; run `make build` first")
        if not fresh:
            say("warning: .aws-sam/build is older than the sources (--no-build: measuring it anyway)")
        return built
    if fresh and not opts.rebuild:
        say("sam build: .aws-sam/build is newer than the sources, reusing it")
        return built
    if not SAM.exists():
        raise SystemExit(f"{SAM} is missing; run `make sam-venv`")
    say("sam build ...")
    proc = subprocess.run([str(SAM), "build"], cwd=ROOT, env=sam_env(), capture_output=True, text=True, check=False)  # nosec B603  # the SAM CLI of .venv-sam, fixed argv
    if proc.returncode != 0:
        say(proc.stdout[-4000:])
        say(proc.stderr[-4000:])
        raise SystemExit("sam build failed")
    return built


# ------------------------------------------------------------------ a layer runnable on this host


ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}


def _elf_machine(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(20)
    if head[:4] != b"\x7fELF":
        return None
    order = "little" if head[5] == 1 else "big"
    return ELF_MACHINES.get(int.from_bytes(head[18:20], order), "other")


def _host_machine() -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine())


def _record_files(dist_info: Path) -> list[str]:
    record = dist_info / "RECORD"
    return [line.split(",")[0] for line in record.read_text().splitlines() if line.strip()]


def _dist_name_version(dist_info: Path) -> tuple[str, str]:
    name, version = dist_info.name[: -len(".dist-info")].rsplit("-", 1)
    return name, version


def host_layer(layer_python: Path, dest: Path) -> tuple[Path, list[str]]:
    """A copy of the built layer runnable here: every file as built, except compiled modules of
    another architecture, swapped for the host wheel of the same distribution and version."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(layer_python, dest, ignore=shutil.ignore_patterns("__pycache__"))
    host = _host_machine()
    foreign_files = {p.relative_to(dest).as_posix() for p in dest.rglob("*.so") if _elf_machine(p) not in (None, host)}
    if not foreign_files:
        return dest, []
    swapped = []
    for dist_info in sorted(dest.glob("*.dist-info")):
        files = _record_files(dist_info)
        if not foreign_files.intersection(files):
            continue
        name, version = _dist_name_version(dist_info)
        wheel_dir = BENCH_DIR / "host-wheels" / f"{name}-{version}"
        if not wheel_dir.exists():
            subprocess.run(  # nosec B603  # pip of the project venv, fixed argv
                [
                    str(VENV_PY),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--target",
                    str(wheel_dir),
                    f"{name}=={version}",
                ],
                check=True,
                capture_output=True,
            )
        for rel in files:  # remove the foreign build of this distribution
            target = dest / rel
            if not rel.startswith("..") and target.is_file():
                target.unlink()
        for src in wheel_dir.rglob("*"):
            if src.is_file() and "__pycache__" not in src.parts and src.parent != wheel_dir / "bin":
                out = dest / src.relative_to(wheel_dir)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)
        swapped.append(f"{name}=={version}")
    return dest, swapped


# ------------------------------------------------------------------ one import in a fresh process


PROBE = textwrap.dedent(
    """
    import sys, time, json
    t0 = time.perf_counter()
    import {module}
    t1 = time.perf_counter()
    top = {{m.split(".")[0] for m in sys.modules}}
    print(json.dumps({{"seconds": t1 - t0,
                       "modules": sorted(m for m in top if m not in sys.stdlib_module_names
                                         and not m.startswith("_") and m != "handler")}}))
    """
)


def _probe(module: str, pythonpath: list[Path], *, bytecode: bool) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # nosec B108  # HOME for a child process, nothing written
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
        **FUNCTION_ENV,
    }
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    # -S: no site-packages of the dev venv, so every import resolves from the artifact (as on
    # Lambda, where sys.path is the function dir, then the layer, then the runtime).
    proc = subprocess.run(  # nosec B603  # the venv's python, fixed argv
        [str(VENV_PY), "-S", "-c", PROBE.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=BENCH_DIR,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the benchmark


@benchmark("cold-import", "import of a handler <= 1.4 x `import boto3`, same run (built artifact)")
def cold_import(opts: Options) -> dict[str, Any]:
    built_template = ensure_build(opts)
    template = cfn.load_template(built_template)
    layers = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::LayerVersion"]
    if len(layers) != 1:
        raise SystemExit(f"expected one layer in the built template, found {layers}")
    layer_src = BUILD_DIR / template["Resources"][layers[0]]["Properties"]["ContentUri"] / "python"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    layer, swapped = host_layer(layer_src, BENCH_DIR / "layer" / "python")
    arches = collections.Counter(_elf_machine(p) for p in layer_src.rglob("*.so"))
    built_for = ", ".join(f"{n} {arch}" for arch, n in sorted(arches.items(), key=str)) or "none"
    say(f"layer: {layer_src.relative_to(ROOT)} (compiled modules: {built_for}) copied to {layer.relative_to(ROOT)}")
    if swapped:
        say(f"  compiled modules swapped for {_host_machine()} builds of the same versions: {', '.join(swapped)}")

    fn_dirs: dict[str, Path | None] = {}
    for name, props in sorted(functions_of(template).items()):
        src = BUILD_DIR / props["CodeUri"]
        if not (src / "handler.py").is_file():
            fn_dirs[name] = None
            continue
        dest = BENCH_DIR / "functions" / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        fn_dirs[name] = dest

    subjects: list[tuple[str, str, list[Path]]] = [("import boto3 (baseline)", "boto3", [layer])]
    subjects += [(name, "handler", [d, layer]) for name, d in fn_dirs.items() if d is not None]

    results: dict[str, dict[str, Any]] = {label: {} for label, _, _ in subjects}
    errors: dict[str, str] = {}
    # "source": no __pycache__ anywhere in the artifact and none written, so every module of the
    # layer and function is compiled at import. That is what a SAM-built zip (no .pyc) costs on
    # Lambda, whose /opt and /var/task are read-only. "pyc": one warm-up run writes __pycache__,
    # then every run loads bytecode: the cost once the layer ships compiled files.
    for mode in ("source", "pyc"):
        bytecode = mode == "pyc"
        for label, module, path in subjects:  # warm-up (page cache; and the .pyc files in "pyc")
            if label in errors:
                continue
            try:
                _probe(module, path, bytecode=bytecode)
            except RuntimeError as exc:
                errors[label] = str(exc)
        samples: dict[str, list[float]] = {label: [] for label, _, _ in subjects}
        modules: dict[str, list[str]] = {}
        for _ in range(opts.runs):  # interleaved, so drift hits every subject alike
            for label, module, path in subjects:
                if label in errors:
                    continue
                out = _probe(module, path, bytecode=bytecode)
                samples[label].append(out["seconds"])
                modules[label] = out["modules"]
        for label, values in samples.items():
            if values:
                results[label][mode] = statistics.median(values)
                results[label]["modules"] = modules[label]

    base = results["import boto3 (baseline)"]
    say()
    say(f"cold import, median of {opts.runs} fresh processes per figure (`python -S`, artifact paths only)")
    say(f"  {'':28} {'from source (.py only)':>26}   {'bytecode cached (.pyc)':>26}")
    verdicts = {}
    for label, _, _ in subjects:
        row = f"  {label:28}"
        if label in errors:
            say(f"{row} error: {errors[label]}")
            continue
        for mode in ("source", "pyc"):
            ratio = results[label][mode] / base[mode]
            results[label][f"{mode}_ratio"] = ratio
            mark = "" if label == "import boto3 (baseline)" else (" ok" if ratio <= 1.4 else " over")
            row += f"   {results[label][mode] * 1000:8.1f} ms {ratio:5.2f}x{mark:5}"
        verdicts[label] = results[label]["pyc_ratio"] <= 1.4
        say(row)
    for name, d in fn_dirs.items():
        if d is None:
            say(f"  {name:28} not measured: no handler.py in the build")
    say("  target: <= 1.40x (ok / over is judged on each column's own baseline)")
    if opts.verbose:
        base_mods = set(base.get("modules", []))
        for label, _, _ in subjects[1:]:
            extra = sorted(set(results[label].get("modules", [])) - base_mods)
            say(f"  {label}: top-level modules beyond boto3's: {', '.join(extra) or '-'}")
    return {
        "layer_swapped": swapped,
        "seconds": {k: {m: v.get(m) for m in ("source", "pyc")} for k, v in results.items()},
        "ratios": {k: {m: v.get(f"{m}_ratio") for m in ("source", "pyc")} for k, v in results.items()},
        "errors": errors,
        "missing_handler": [n for n, d in fn_dirs.items() if d is None],
    }
