"""Checklist rows 106–115 with staticmod as the content generator, over real sockets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ocsi_ext_staticmod")
pytest.importorskip("ocsi.server")


@pytest.fixture
def www(tmp_path: Path) -> Any:
    d = tmp_path / "www"
    (d / "s").mkdir(parents=True)
    (d / "a.txt").write_text("A")
    (d / "s" / "cat").write_text("cat in s")
    (d / "s" / "dog").write_text("dog in s")
    other = tmp_path / "other"
    (other / "s").mkdir(parents=True)
    (other / "s" / "dog").write_text("dog from host level")
    (other / "notfound.html").write_text("custom not found")
    return d, other


def start(ocsi_server: Callable[..., Any], body: str) -> Any:
    return ocsi_server('<extension findlib-package="ocsi-ext-staticmod"/>'
                       '<extension findlib-package="ocsi-ext-accesscontrol"/>' + body)


def test_106_ip_forbidden_local(ocsi_server: Callable[..., Any], www: Any) -> None:
    d, _ = www
    srv = start(ocsi_server, f'<host><if><ip value="127.0.0.1"/><then><forbidden/></then></if>'
                             f'<static dir="{d}"/></host>')
    assert srv.get("/a.txt").status == 403
    srv = start(ocsi_server, f'<host><if><ip value="10.0.0.0/8"/><then><forbidden/></then></if>'
                             f'<static dir="{d}"/></host>')
    assert srv.get("/a.txt").body == b"A"


def test_109_path_in_site_and_111_forbidden_after_content(ocsi_server: Callable[..., Any], www: Any) -> None:
    d, _ = www
    srv = start(ocsi_server, f'<host><site path="s"><if><path regexp="c.*"/><then><forbidden/>'
                             f'</then></if><static dir="{d}/s"/></site></host>')
    assert srv.get("/s/cat").status == 403
    assert srv.get("/s/dog").body == b"dog in s"
    srv = start(ocsi_server, f'<host><static dir="{d}"/><forbidden/></host>')
    assert srv.get("/a.txt").status == 403          # <static/><forbidden/>: 403 for a real file


def test_112_nextsite_serves_following_static(ocsi_server: Callable[..., Any], www: Any) -> None:
    d, other = www
    srv = start(ocsi_server, f'<host><site path="s"><if><path regexp="dog"/><then><nextsite/>'
                             f'</then></if><static dir="{d}/s"/></site>'
                             f'<static dir="{other}"/></host>')
    assert srv.get("/s/dog").body == b"dog from host level"
    assert srv.get("/s/cat").body == b"cat in s"
    srv = start(ocsi_server, f'<host><stop/><static dir="{d}"/></host>'
                             f'<host><static dir="{d}"/></host>')
    assert srv.get("/a.txt").status == 404
    srv = start(ocsi_server, f'<host><nexthost/><static dir="{other}"/></host>'
                             f'<host><static dir="{d}"/></host>')
    assert srv.get("/a.txt").body == b"A"


def test_113_ifnotfound_code(ocsi_server: Callable[..., Any], www: Any) -> None:
    d, other = www
    srv = start(ocsi_server, f'<host><static dir="{d}"/><ifnotfound code="40.">'
                             f'<static code="404" dest="{other}/notfound.html"/></ifnotfound></host>')
    r = srv.get("/nothing-here")
    assert (r.status, r.body) == (404, b"custom not found")
    assert srv.get("/a.txt").body == b"A"


def test_114_115_forwarded(ocsi_server: Callable[..., Any], www: Any) -> None:
    d, _ = www
    srv = start(ocsi_server, f'<host><allow-forward-for/><allow-forward-proto/>'
                             f'<if><and><ip value="1.2.3.4"/><ssl/></and><then>'
                             f'<static dir="{d}"/></then></if></host>')
    assert srv.get("/a.txt").status == 404
    assert srv.get("/a.txt", {"X-Forwarded-For": "1.2.3.4"}).status == 404
    r = srv.get("/a.txt", {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"})
    assert (r.status, r.body) == (200, b"A")
