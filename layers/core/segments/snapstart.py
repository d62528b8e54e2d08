"""Lambda SnapStart's runtime hooks, where the runtime has them.

With SnapStart on (the template's `SnapStart` parameter), Lambda initialises a function once per
published version, snapshots the initialised environment and resumes every new execution
environment from that snapshot. Lambda's Python runtimes (3.12 and later) ship the
`snapshot_restore_py` module: callables registered with it run just before the snapshot (in the
reverse order of registration) and just after each restore (in order, within 10 s). Elsewhere
(tests, the local stack, `segments-admin`, a runtime without it) the module is absent and
`register` keeps nothing; the hooks stay plain functions that tests call directly.
"""

from __future__ import annotations

from collections.abc import Callable

Hook = Callable[[], None]


def register(*, before_snapshot: Hook | None = None, after_restore: Hook | None = None) -> bool:
    """Hand the hooks to the runtime; False where there is no runtime to hand them to."""
    try:
        import snapshot_restore_py  # Lambda's Python runtimes only
    except ImportError:
        return False
    if before_snapshot is not None:
        snapshot_restore_py.register_before_snapshot(before_snapshot)
    if after_restore is not None:
        snapshot_restore_py.register_after_restore(after_restore)
    return True
