"""The document of a one-line command (:class:`ocsi.apps.OneLiner`) and the options they share."""

from __future__ import annotations

import argparse

import pytest

from ocsi import ConfigError
from ocsi.apps import OneLiner, listen_arguments
from ocsi._config.xml import describe_lines, parse_bytes


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    listen_arguments(p)
    return p.parse_args(list(argv))


def test_listen_defaults_and_aliases():
    doc = OneLiner.from_arguments("ocsi x", _parse())
    assert (doc.host, doc.port) == ("127.0.0.1", 8080)
    assert doc.listen_origin == "the default --host 127.0.0.1 --port 8080"
    doc = OneLiner.from_arguments("ocsi x", _parse("-P", "9000", "--bind", "::1"))
    assert (doc.host, doc.port, doc.listen_origin) == ("::1", 9000, "--host ::1 --port 9000")
    assert "<port>[::1]:9000</port>" in doc.document()
    assert OneLiner.from_arguments("ocsi x", _parse("--host", "localhost")).host in ("127.0.0.1", "::1")
    assert OneLiner.from_arguments("ocsi x", _parse("--port", "81")).listen_origin == "--port 81"


@pytest.mark.parametrize("argv", [["--port", "0"], ["--port", "65536"], ["--port", "http"],
                                  ["--host", "no-such-host.invalid"]])
def test_bad_listen_options(argv, capsys):
    with pytest.raises(SystemExit) as e:
        _parse(*argv)
    assert e.value.code == 2 and argv[0] in capsys.readouterr().err


def test_document_and_origins():
    doc = OneLiner("ocsi demo", port=9000, origin="--port 9000")
    doc.findlib("/srv/app", origin="--app-dir /srv/app")
    doc.extension("ocsi-ext-a", origin="ocsi demo")
    doc.extension("ocsi-ext-a", origin="twice")  # once per name
    doc.step("thing", {"x": 'a"b<'}, origin="--thing")
    doc.step("box", origin="--box", inner="<in/>")
    lines = doc.document().splitlines()
    assert lines[2] == "    <port>127.0.0.1:9000</port>"
    assert lines[3] == '    <findlib path="/srv/app"/>'
    assert lines[4] == '    <extension findlib-package="ocsi-ext-a"/>'
    assert lines[6:8] == ["      <thing x='a\"b&lt;'/>", "      <box><in/></box>"]
    assert doc.origins() == {3: "--port 9000", 4: "--app-dir /srv/app", 5: "ocsi demo",
                             7: "--thing", 8: "--box"}


def test_errors_in_a_generated_document_name_what_was_typed():
    doc = OneLiner("ocsi where-test", origin="--port 1")
    doc.step("thing", origin="--thing yes")
    describe_lines(doc.command, doc.origins())
    root = parse_bytes(doc.document().encode(), doc.command)
    server = root.children[0]
    port, host = server.children[0], server.children[1]
    assert port.where == "--port 1"
    assert host.where == "ocsi where-test"  # a line the user did not choose
    err = host.children[0].error("no good")
    assert isinstance(err, ConfigError) and str(err) == "--thing yes: no good"
