"""<rewrite> with staticmod after it: in memory and over sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocsi.testing import assert_config_error

EXTS = ('<extension findlib-package="ocsigenserver.ext.rewritemod"/>'
        '<extension findlib-package="ocsigenserver.ext.staticmod"/>')


@pytest.fixture
def www(tmp_path: Path) -> Any:
    (tmp_path / "www" / "new").mkdir(parents=True)
    (tmp_path / "www" / "new" / "page.txt").write_text("new page")
    (tmp_path / "www" / "top.txt").write_text("top")
    return tmp_path / "www"


def test_default_restarts_from_the_first_host(ocsi_client, www):
    srv = ocsi_client(EXTS + f'<host><rewrite regexp="old/(.*)" url="new/\\1"/><static dir="{www}"/></host>')
    r = srv.get("/old/page.txt")
    assert (r.status, r.body) == (200, b"new page")
    assert srv.get("/new/page.txt").body == b"new page"


def test_continue_inside_a_site_changes_what_follows(ocsi_client, www):
    srv = ocsi_client(EXTS + f'<host><site path="s"><rewrite regexp="alias" url="s/page.txt" continue="continue"/>'
                             f'<static dir="{www}/new"/></site></host>')
    r = srv.get("/s/alias")
    assert (r.status, r.body) == (200, b"new page")  # Ocsigen 5.0.1 kept the old sub-path: 404


def test_continue_out_of_the_site_starts_again_from_the_top(ocsi_client, www):
    srv = ocsi_client(EXTS + f'<host><site path="s"><rewrite regexp="up" url="top.txt" continue="true"/></site>'
                             f'<static dir="{www}"/></host>')
    assert srv.get("/s/up").body == b"top"


def test_the_query_is_part_of_the_subject_and_the_result(ocsi_client, www):
    srv = ocsi_client(EXTS + f'<host><rewrite regexp="q\\?f=(.*)" url="new/\\1"/><static dir="{www}"/></host>')
    assert srv.get("/q?f=page.txt").body == b"new page"


def test_no_match_passes_on(ocsi_client, www):
    srv = ocsi_client(EXTS + f'<host><rewrite regexp="nomatch" url="x"/><static dir="{www}"/></host>')
    assert srv.get("/top.txt").body == b"top"  # Ocsigen 5.0.1: 500 for every request


def test_a_loop_is_a_clean_500_and_one_error_line(ocsi_server, www):
    srv = ocsi_server(EXTS + '<host><rewrite regexp="(.*)" url="\\1"/></host>')
    r = srv.get("/loop")
    assert (r.status, r.body) == (500, b"Error: Internal Server Error")
    errors = srv.wait_log("errors", "loops")
    assert errors.count("loops: more than 10 passes") == 1 and "Traceback" not in errors


def test_a_result_that_cannot_be_requested_is_a_500(ocsi_server, www):
    srv = ocsi_server(EXTS + '<host><rewrite regexp="(.*)" url="../../\\1"/></host>')
    assert srv.get("/x").status == 500
    assert "cannot be requested" in srv.wait_log("errors", "cannot be requested")


@pytest.mark.parametrize("element, message", [
    ('<rewrite url="x"/>', "missing attribute 'regexp'"),
    ('<rewrite regexp="a"/>', "url attribute expected for <rewrite>"),
    ('<rewrite regexp="(" url="x"/>', "bad regular expression"),
    ('<rewrite regexp="a" url="\\1"/>', "refers to group 1"),
    ('<rewrite regexp="a" url="x" dest="y"/>', "not both"),
])
def test_errors_are_located(ocsi_memory, element, message):
    error = assert_config_error(ocsi_memory, EXTS + "<host>\n" + element + "</host>", "", line=2)
    assert message in str(error).replace("Missing", "missing")
