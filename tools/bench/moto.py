"""moto for the benchmarks: in-process, as a server (thread or process), and at scale."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

from tools import cfn
from tools.bench import core
from tools.bench.harness import REGION, TEMPLATE, function_env
from tools.moto_atomic import make_moto_atomic


@contextlib.contextmanager
def moto_in_process() -> Iterator[Any]:
    """moto's mock_aws with the template's tables; yields a DynamoDB client."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        cfn.create_tables(client, cfn.load_template(TEMPLATE))
        yield client


def _serve(port: int, ready: Any) -> None:
    """A moto server's process (`moto_server(own_process=True)`): serve until terminated."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    ready.set()
    threading.Event().wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server(*, own_process: bool) -> Iterator[str]:
    """A ThreadedMotoServer on a free loopback port, in this process or in its own; the core's
    AWS_ENDPOINT_URL points at it, and the template's tables are created in it. Yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    process: Any = None
    server: Any = None
    if own_process:
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        process = ctx.Process(target=_serve, args=(port, ready), daemon=True)
        process.start()
        if not ready.wait(60):
            raise RuntimeError("moto server did not start")
    else:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
    url = f"http://127.0.0.1:{port}"
    # A server thread shares this process's moto state with earlier runs: start from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).close()  # nosec B310  # the local moto server
    os.environ["AWS_ENDPOINT_URL"] = url
    core.reset_core()
    try:
        cfn.create_tables(core.dynamo_client(), cfn.load_template(TEMPLATE))
        yield url
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        core.reset_core()
        if server is not None:
            server.stop()
        if process is not None:
            process.terminate()
            process.join(10)


_GSI = threading.local()


@contextlib.contextmanager
def moto_partition_lookup() -> Iterator[None]:
    """Give moto's Query a lookup by partition, of the table and of its global secondary indexes.

    moto 5 answers every Query by sorting and evaluating every item of the table (O(table) per
    call), where DynamoDB reads only the partition asked for; with 100,000 members that emulator
    cost would be the whole figure. Here a table Query evaluates only the items of its partition,
    and an index Query only the current items recorded under its partition value: moto's
    `Table.put_item` also records the item's key under each index partition value it holds. The
    rest of the Query (conditions, order, limits, pages) is moto's own code. Items that gain an
    index attribute by UpdateItem are not recorded: use it where index attributes are written by
    puts (member items are). Undone on exit."""
    from moto.dynamodb.models.table import Table

    original_put, original_query, original_all = Table.put_item, Table.query, Table.all_items
    recorded: dict[tuple[int, str, str, str], set[tuple[Any, Any]]] = {}

    def hash_attrs(table: Any) -> list[str]:
        return [k["AttributeName"] for i in (table.global_indexes or []) for k in i.schema if k["KeyType"] == "HASH"]

    def put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        item = original_put(self, item_attrs, *args, **kwargs)
        key = (item.hash_key, item.range_key)
        for attr in hash_attrs(self):
            value = item_attrs.get(attr)
            if isinstance(value, dict) and len(value) == 1:
                ((kind, raw),) = value.items()
                recorded.setdefault((id(self), attr, kind, str(raw)), set()).add(key)
        return item

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[7] if len(args) > 7 else None)
        conditions = kwargs.get("hash_key_conditions") or []
        hash_key = kwargs.get("hash_key", args[0] if args else None)
        candidates: list[Any] = []
        if index_name is None and hash_key is not None and self.range_key_attr:
            candidates = list(self.items.get(hash_key, {}).values())
        elif index_name is not None and len(conditions) == 1:
            attr, value = conditions[0]
            for item_hash, item_range in recorded.get((id(self), attr, value.type, str(value.value)), ()):
                stored = self.items.get(item_hash)
                if stored is not None and item_range is not None:
                    stored = stored.get(item_range)
                if stored is not None:
                    candidates.append(stored)
        else:
            return original_query(self, *args, **kwargs)
        _GSI.candidates = candidates
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _GSI.candidates = None

    def all_items(self: Any) -> Any:
        candidates = getattr(_GSI, "candidates", None)
        if candidates is None:
            return original_all(self)
        return sorted(candidates, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    Table.put_item, Table.query, Table.all_items = put_item, query, all_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.put_item, Table.query, Table.all_items = original_put, original_query, original_all  # type: ignore[method-assign]


@contextlib.contextmanager
def moto_at_scale() -> Iterator[None]:
    """The functions' environment and in-process moto fit for 100,000-item tables: atomic
    transactions that do not copy the table (docs/decisions.md) and a Query by partition."""
    make_moto_atomic()
    with function_env(), moto_in_process(), moto_partition_lookup():
        yield
