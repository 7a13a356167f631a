"""``<ratelimit shared="cluster">``: two servers counting against one limit in a throwaway
PostgreSQL (ocsipersist-pgsql's test cluster), and the cost of the round trip."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ocsi import ConfigError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "ocsipersist-pgsql" / "tests"))
import postgres  # noqa: E402
from postgres import cluster  # noqa: E402,F401 (the fixture)

pytestmark = pytest.mark.skipif(not postgres.available(), reason="PostgreSQL is not installed")


def config(c: postgres.Cluster, attrs: str) -> str:
    db = (f'<database host="127.0.0.1" port="{c.port}" user="{postgres.USER}" '
          f'password="{postgres.PASSWORD}"/>')
    return (f'<datadir>{{tmp}}/data</datadir><findlib path="{HERE}"/>'
            f'<extension findlib-package="ocsi-ext-ocsipersist-pgsql">{db}</extension>'
            '<extension findlib-package="ocsi-ext-ratelimit"/><extension module="rl_content"/>'
            f'<host><ratelimit shared="cluster" {attrs}/><page/></host>')


def test_two_servers_share_one_limit(cluster: postgres.Cluster, ocsi_server: Callable[..., Any]) -> None:
    attrs = 'zone="two" rate="1r/m" burst="9" nodelay="true" key="header:K"'
    one, two = ocsi_server(config(cluster, attrs)), ocsi_server(config(cluster, attrs))
    got = [(one if i % 2 else two).get("/", {"K": "a"}).status for i in range(30)]
    assert got.count(200) == 10 and got[:10] == [200] * 10
    refused = one.get("/", {"K": "a"})
    assert refused.status == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    assert two.get("/", {"K": "b"}).status == 200  # another key


def test_a_zone_is_required_and_the_database_too(cluster: postgres.Cluster,
                                                 ocsi_memory: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match="needs a zone"):
        ocsi_memory(config(cluster, 'rate="1r/s"'))
    with pytest.raises(ConfigError, match="ocsipersist-pgsql"):
        ocsi_memory('<extension findlib-package="ocsi-ext-ratelimit"/>'
                    '<host><ratelimit shared="cluster" zone="z" rate="1r/s"/></host>')


def test_the_round_trip_costs(cluster: postgres.Cluster, ocsi_server: Callable[..., Any]) -> None:
    """Not an assertion on time: the cost is printed (pytest -s) for the README."""
    srv = ocsi_server(config(cluster, 'zone="cost" rate="1000000r/s"'))
    step = next(s for s in srv.server.runtime.pipeline.steps() if hasattr(s, "cluster"))
    n = 500

    async def many() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            assert (await step.cluster.take("ip 127.0.0.1")).accepted
        return (time.perf_counter() - t0) / n

    srv.call(many)  # the pool and the table made
    print(f"\nshared=cluster: {min(srv.call(many) for _ in range(3)) * 1e6:.0f} µs a request")


def test_without_its_database_the_limit_lets_requests_through(
        cluster: postgres.Cluster, ocsi_server: Callable[..., Any]) -> None:
    srv = ocsi_server(config(cluster, 'zone="down" rate="1r/m"'))
    assert [srv.get("/").status for _ in range(2)] == [200, 429]
    cluster.stop()
    try:
        assert [srv.get("/").status for _ in range(3)] == [200] * 3
        errors = srv.wait_log("errors", "cannot be reached", lines=0, timeout=10)
        assert errors.count("the cluster's database cannot be reached") == 1  # once a minute
    finally:
        cluster.start()
    for _ in range(100):  # the pool reconnects (bounded)
        if srv.get("/").status == 429:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the limit did not come back with its database")
