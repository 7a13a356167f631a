"""ocsipersist on a real PostgreSQL: every API call, two servers sharing it, a server that goes
away and comes back, restarts, bad <database> attributes."""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
import threading
import time
from pathlib import Path

import pytest
from ocsi_ext_ocsipersist.conformance import COUNTER, check_api
from ocsi_ext_ocsipersist_pgsql import parse_options

from ocsi import ConfigError
from ocsi.testing import load_context, parse_element, write_extension

sys.path.insert(0, str(Path(__file__).parent))
import postgres  # noqa: E402
from postgres import cluster  # noqa: E402,F401 (the fixture)

pytestmark = pytest.mark.skipif(not postgres.available(), reason="PostgreSQL is not installed")


def database(c: postgres.Cluster, **extra: str) -> str:
    attrs = {"host": "127.0.0.1", "port": str(c.port), "user": postgres.USER,
             "password": postgres.PASSWORD, **extra}
    return "<database " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>"


@pytest.fixture
def exts(tmp_path: Path) -> str:
    d = tmp_path / "exts"
    write_extension(d, "ocsi-ext-counter", COUNTER, requires=["ocsi-ext-ocsipersist"])
    return str(d)


def config(exts: str, c: postgres.Cluster, name: str = "ocsi-ext-ocsipersist-pgsql") -> str:
    return (f'<findlib path="{exts}"/><extension findlib-package="{name}">{database(c)}'
            '</extension><extension findlib-package="ocsi-ext-counter"/><host><counter/></host>')


def test_every_call_of_the_api(cluster) -> None:
    backend = parse_options([parse_element(database(cluster))], load_context())

    async def go() -> None:
        try:
            await check_api()
        finally:
            await backend.close()
    asyncio.run(go())


def test_the_unix_socket_and_the_pool_size(cluster) -> None:
    el = parse_element(f'<database unix_domain_socket_dir="{cluster.socket_dir}" '
                       f'port="{cluster.port}" user="{postgres.USER}" size_conn_pool="2"/>')
    backend = parse_options([el], load_context())
    assert backend.where.size_conn_pool == 2

    async def go() -> None:
        await asyncio.gather(*(backend.set("t", str(i), "1") for i in range(20)))
        assert await backend.length("t") == 20
        await backend.clear("t")
        await backend.close()
    asyncio.run(go())


def _hits(port: int, count: int, errors: list[BaseException]) -> None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(count):
            conn.request("GET", "/hit")
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
        conn.close()
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_two_servers_share_the_database_and_lose_no_update(ocsi_process, exts, cluster):
    a = ocsi_process(config(exts, cluster))
    b = ocsi_process(config(exts, cluster))  # another server: its own process and port
    assert a.get("/put?shared=from-a").status == 204
    assert json.loads(b.get("/get?shared").body) == "from-a"  # at once, on the other server
    start = json.loads(a.get("/get?n").body) or 0
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_hits, args=(srv.port, 50, errors))
               for srv in (a, b) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors
    assert int(b.get("/get?n").body) == start + 1000  # 1,000 concurrent updates over two servers


def test_data_survives_a_restart_and_the_database_may_go_away(ocsi_server, exts, cluster):
    srv = ocsi_server(config(exts, cluster))
    assert srv.get("/put?kept=yes").status == 204
    srv.stop()
    srv = ocsi_server(config(exts, cluster))
    assert json.loads(srv.get("/get?kept").body) == "yes"
    cluster.stop()
    try:
        assert srv.get("/get?kept").status == 500  # the request fails, the server stays
        assert "/get" in srv.wait_log("errors", "error")
    finally:
        cluster.start()
    for _ in range(200):  # the pool reconnects once the database is back (20 s at most)
        if srv.get("/get?kept").status == 200:
            break
        time.sleep(0.1)
    assert json.loads(srv.get("/get?kept").body) == "yes"


def test_ocsigen_name_and_stats(ocsi_server, exts, cluster):
    srv = ocsi_server(config(exts, cluster, "ocsigenserver.ext.ocsipersist-pgsql"))
    assert srv.get("/put?x=1").status == 204
    srv.command("ocsipersist:stats")
    line = srv.wait_log("warnings", "ocsipersist pgsql")
    assert "ocsipersist pgsql" in line and "hits" in line


@pytest.mark.parametrize("attrs, message", [
    ('port="1"', "cannot reach the ocsipersist database"),
    ('password="wrong"', "password authentication failed"),
    ('database="nosuchdb"', "nosuchdb"),
    ('size_conn_pool="0"', "not between 1 and 1000"),
    ('port="http"', "port"),
    ('colour="red"', "colour"),
])
def test_bad_database_attributes_are_located_errors(cluster, attrs, message) -> None:
    name = attrs.split("=")[0]
    el = parse_element(database(cluster, **{name: attrs.split('"')[1]}), "ocsi.conf")
    with pytest.raises(ConfigError, match=message) as err:
        parse_options([el], load_context())
    assert "ocsi.conf:1" in str(err.value)
    assert postgres.PASSWORD not in str(err.value)


def test_the_manuals_second_example_runs(ocsi_server, cluster, tmp_path):
    # Ocsigen's manual, the PostgreSQL example: every <database> attribute, Eliom left out
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello")
    srv = ocsi_server(f"""<ocsigen><server>
      <port>127.0.0.1:{{port}}</port><logdir>{{tmp}}/log</logdir>
      <commandpipe>{{tmp}}/ocsi.cmd</commandpipe>
      <extension findlib-package="ocsigenserver.ext.staticmod"/>
      <extension findlib-package="ocsigenserver.ext.ocsipersist-pgsql">
        <database host="127.0.0.1" port="{cluster.port}" user="{postgres.USER}"
                  password="{postgres.PASSWORD}" database="ocsipersist"
                  unix_domain_socket_dir="{cluster.socket_dir}" size_conn_pool="16"/>
      </extension>
      <host hostfilter="*"><static dir="{tmp_path}/www"/></host>
    </server></ocsigen>""", full=True)
    assert srv.get("/index.html").text == "hello"


def test_export_from_sqlite_import_into_postgresql(cluster, tmp_path) -> None:
    import subprocess

    from ocsi_ext_ocsipersist_sqlite import from_spec

    sqlite = from_spec(str(tmp_path / "from.db"))

    async def fill() -> None:
        for i in range(600):
            await sqlite.set("moved", f"{i:04d}", json.dumps({"i": i}))
        await sqlite.close()
    asyncio.run(fill())
    dump = subprocess.run([sys.executable, "-m", "ocsi", "persist", "export", "sqlite",
                           str(tmp_path / "from.db")], capture_output=True, text=True,
                          timeout=60, check=True)
    spec = (f"host=127.0.0.1 port={cluster.port} user={postgres.USER} "
            f"password={postgres.PASSWORD} database=ocsipersist")
    subprocess.run([sys.executable, "-m", "ocsi", "persist", "import", "pgsql", spec],
                   input=dump.stdout, capture_output=True, text=True, timeout=60, check=True)
    back = subprocess.run([sys.executable, "-m", "ocsi", "persist", "export", "pgsql", spec],
                          capture_output=True, text=True, timeout=60, check=True)
    moved = [line for line in back.stdout.splitlines() if '"table": "moved"' in line]
    assert moved == dump.stdout.splitlines()
