"""ocsipersist on SQLite: every API call, restarts, worker processes sharing the file, errors."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ocsi_ext_ocsipersist import NoBackend, Table, ref, selection, table
from ocsi_ext_ocsipersist.conformance import COUNTER, check_api
from ocsi_ext_ocsipersist_sqlite import SQLiteBackend, parse_options

from ocsi import ConfigError
from ocsi.testing import load_context, parse_element, write_extension

@pytest.fixture
def exts(tmp_path: Path) -> str:
    d = tmp_path / "exts"
    write_extension(d, "ocsi-ext-counter", COUNTER, requires=["ocsi-ext-ocsipersist"])
    return str(d)


def config(exts: str, db: str, name: str = "ocsi-ext-ocsipersist-sqlite") -> str:
    return (f'<findlib path="{exts}"/><extension findlib-package="{name}">'
            f'<database file="{db}"/></extension>'
            '<extension findlib-package="ocsi-ext-counter"/><host><counter/></host>')


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    backend = parse_options([parse_element(f'<database file="{tmp_path}/t.db"/>')], load_context())
    yield backend
    run(backend.close())


def test_every_call_of_the_api(store: SQLiteBackend) -> None:
    run(check_api())


def test_names_and_values_are_checked(store: SQLiteBackend) -> None:
    with pytest.raises(ValueError):
        Table("")
    with pytest.raises(TypeError):  # JSON only, never pickle
        run(table("t").set("k", object()))


def test_a_site_step_keeps_its_data_across_restarts(ocsi_server, exts, tmp_path):
    db = str(tmp_path / "data.db")
    srv = ocsi_server(config(exts, db))
    assert [srv.get("/hit").text for _ in range(3)] == ["1", "2", "3"]
    assert srv.get("/put?color=blue").status == 204
    srv.stop()
    srv = ocsi_server(config(exts, db))
    assert srv.get("/hit").text == "4" and json.loads(srv.get("/get?color").body) == "blue"


def test_ocsigen_name_and_datadir_default(ocsi_server, exts, tmp_path):
    (tmp_path / "data").mkdir()
    srv = ocsi_server(f'<datadir>{tmp_path}/data</datadir><findlib path="{exts}"/>'
                      '<extension findlib-package="ocsigenserver.ext.ocsipersist-sqlite"/>'
                      '<extension findlib-package="ocsi-ext-counter"/><host><counter/></host>')
    assert srv.get("/hit").text == "1"
    assert os.path.exists(tmp_path / "data" / "ocsidb")
    srv.command("ocsipersist:stats")
    assert "ocsipersist sqlite" in srv.wait_log("warnings", "ocsipersist sqlite")
    assert "hits 1" in srv.log("warnings")


def test_worker_processes_share_the_file_and_lose_no_update(ocsi_process, exts, tmp_path):
    proc = ocsi_process(config(exts, str(tmp_path / "shared.db")), args=["--workers", "2"])
    errors: list[BaseException] = []

    def client() -> None:
        import http.client
        try:
            conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=30)
            for _ in range(50):
                conn.request("GET", "/hit")
                r = conn.getresponse()
                r.read()
                assert r.status == 200
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert proc.get("/get?n").body == b"1000"  # 1,000 concurrent updates, none lost


def test_configuration_errors_are_located(tmp_path, ocsi_memory, exts):
    with pytest.raises(ConfigError, match="unknown option <data>"):
        parse_options([parse_element('<data file="x"/>')], load_context())
    with pytest.raises(ConfigError, match="no <datadir>"):
        parse_options([], load_context())
    with pytest.raises(ConfigError, match="cannot open the ocsipersist database"):
        parse_options([parse_element(f'<database file="{tmp_path}/missing/dir/db"/>')],
                      load_context())
    other = tmp_path / "other"
    write_extension(other, "ocsi-ext-otherstore", f'''
import ocsi, ocsi_ext_ocsipersist
from ocsi_ext_ocsipersist_sqlite import SQLiteBackend

@ocsi.hookimpl
def ocsi_extension_options(options, ctx):
    ocsi_ext_ocsipersist.claim(SQLiteBackend("{tmp_path}/o.db"), ctx)
''', requires=["ocsi-ext-ocsipersist"])
    with pytest.raises(ConfigError, match="two ocsipersist backends") as err:
        ocsi_memory(config(exts, str(tmp_path / "a.db")).replace(
            "<host>", f'<findlib path="{other}"/><extension findlib-package="ocsi-ext-otherstore"/><host>'))
    assert "ocsi.conf" in str(err.value)


def test_no_backend_is_a_clear_error() -> None:
    saved = selection._active, selection._latest
    selection._active = selection._latest = None
    try:
        with pytest.raises(NoBackend, match="ocsi-ext-ocsipersist-sqlite"):
            run(table("t").get("k"))
    finally:
        selection._active, selection._latest = saved


def test_export_and_import_move_the_data(store: SQLiteBackend, tmp_path: Path) -> None:
    import subprocess
    import sys

    async def fill() -> None:
        for i in range(700):
            await table("big").set(f"{i:04d}", {"n": i})
        await ref("hello").set("wörld")
    run(fill())
    dump = subprocess.run([sys.executable, "-m", "ocsi", "persist", "export", "sqlite", store.path],
                          capture_output=True, text=True, timeout=60, check=True)
    lines = dump.stdout.splitlines()
    assert len(lines) == 701 and "701 rows" in dump.stderr
    assert json.loads(lines[0]) == {"table": "big", "key": "0000", "value": {"n": 0}}
    target = str(tmp_path / "copy.db")
    done = subprocess.run([sys.executable, "-m", "ocsi", "persist", "import", "sqlite", target],
                          input=dump.stdout, capture_output=True, text=True, timeout=60, check=True)
    assert "701 rows" in done.stderr
    copy = SQLiteBackend(target)

    async def check() -> None:
        assert await copy.tables() == {"big": 700, "ocsipersist.refs": 1}
        assert await copy.get("ocsipersist.refs", "hello") == '"wörld"'
        await copy.close()
    run(check())
    bad = subprocess.run([sys.executable, "-m", "ocsi", "persist", "import", "sqlite", target],
                         input='{"table": "t"}\n', capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "line 1: not a row" in bad.stderr
    none = subprocess.run([sys.executable, "-m", "ocsi", "persist", "export", "nosuch", "x"],
                          capture_output=True, text=True, timeout=60)
    assert none.returncode != 0 and "no backend 'nosuch' installed" in none.stderr


def test_a_reload_moves_to_the_new_store_and_a_failed_one_keeps_the_old(ocsi_server, exts, tmp_path):
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    srv = ocsi_server(config(exts, a))
    assert [srv.get("/hit").text for _ in range(2)] == ["1", "2"]
    srv.reload(config(exts, b))
    assert srv.get("/hit").text == "1"
    srv.reload(config(exts, str(tmp_path / "no" / "such" / "dir.db")))
    assert "cannot open the ocsipersist database" in srv.wait_log("errors", "cannot open")
    assert srv.get("/hit").text == "2"  # still b


MANUAL = """<ocsigen>
  <server>
    <port>127.0.0.1:{port}</port>
    <logdir>{tmp}/log</logdir>
    <datadir>{data}</datadir>
    <commandpipe>{tmp}/ocsi.cmd</commandpipe>
    <charset>utf-8</charset>
    <extension findlib-package="ocsigenserver.ext.staticmod"/>
    <extension findlib-package="ocsigenserver.ext.ocsipersist-sqlite">
      <database file="{data}/ocsidb"/>
    </extension>
    <host hostfilter="*">
      <static dir="{www}"/>
    </host>
  </server>
</ocsigen>
"""


def test_the_manuals_first_example_runs(ocsi_server, tmp_path):
    # Ocsigen's manual, first example, with the Eliom lines left out and paths made local
    (tmp_path / "data").mkdir()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello")
    srv = ocsi_server(MANUAL.replace("{data}", str(tmp_path / "data"))
                      .replace("{www}", str(tmp_path / "www")), full=True)
    assert srv.get("/index.html").text == "hello"
    assert os.path.exists(tmp_path / "data" / "ocsidb")


def test_an_asgi_application_uses_the_same_store(ocsi_server, exts, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "persist_app.py").write_text('''
from ocsi_ext_ocsipersist import table

visits = table("hits")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    n = await visits.update("n", lambda v: v + 1, default=0)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(n).encode()})
''')
    srv = ocsi_server(config(exts, str(tmp_path / "app.db")).replace(
        "<host><counter/></host>",
        f'<findlib path="{tmp_path}/app"/><extension findlib-package="ocsi-ext-asgi"/>'
        '<host><site path="site"><counter/></site>'
        '<site path="app"><asgi app="persist_app:app" lifespan="false"/></site></host>'))
    assert srv.get("/site/hit").text == "1"
    assert srv.get("/app/").text == "2"  # the step and the application count together
    assert srv.get("/site/hit").text == "3"
