"""``<acme>`` and ``<host acme="true">``: what is accepted, and each mistake located."""

from __future__ import annotations

import pytest

from ocsi._acme.config import LETS_ENCRYPT
from ocsi.certificates import new_authority
from ocsi._config.errors import ConfigError
from ocsi._extensions.loader import new_plugin_manager
from ocsi.runtime import build_configuration

PORTS = '<port>8080</port><port protocol="HTTPS">8443</port><datadir>/tmp/d</datadir>'
HOST = '<host hostfilter="www.example.org example.org:443" acme="true"/>'


def build(write_conf, inner: str):  # type: ignore[no-untyped-def]
    return build_configuration(new_plugin_manager(),
                               write_conf(f"<ocsigen><server>{inner}</server></ocsigen>"))


def error(write_conf, inner: str) -> ConfigError:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as e:
        build(write_conf, inner)
    return e.value


def test_defaults_and_host_names(write_conf):
    s = build(write_conf, f'{PORTS}<acme email="admin@example.org"/>{HOST}').settings
    assert s.acme is not None and s.acme.directory == LETS_ENCRYPT
    assert s.acme.challenges == ("tls-alpn-01", "http-01") and s.acme.ca is None
    assert s.acme.storage_dir(s.datadir) == "/tmp/d/acme"
    assert [h.names for h in s.acme_hosts] == [("www.example.org", "example.org")]
    assert s.host_certificates == []  # no <ssl> needed: the HTTPS port has ACME's certificates


def test_every_attribute(write_conf, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(new_authority()[0])
    s = build(write_conf, f'{PORTS}<acme email="a@b.org" directory="https://ca.test/dir" ca="{ca}" '
                          f'challenges="http-01" storage="/srv/acme" retry="5min" '
                          f'accept-terms="true"/>{HOST}').settings
    assert s.acme is not None
    assert (s.acme.directory, s.acme.ca, s.acme.challenges) == ("https://ca.test/dir", str(ca), ("http-01",))
    assert s.acme.storage_dir(None) == "/srv/acme" and s.acme.retry == 300


@pytest.mark.parametrize("inner, message", [
    (f'{PORTS}<acme email="nobody"/>', "is not an email address"),
    (f'{PORTS}<acme directory="http://ca.test/dir"/>', "is not an https:// URL"),
    (f'{PORTS}<acme ca="/nonexistent/ca.pem"/>', "cannot read ca="),
    (f'{PORTS}<acme challenges="dns-01"/>', "dns-01 challenge is not supported"),
    (f'{PORTS}<acme challenges="tls-alpn-01 tls-alpn-01"/>', "each once"),
    (f'{PORTS}<acme challenges="http-02"/>', "unknown challenge"),
    (f'{PORTS}<acme retry="0"/>', "at least 1 second"),
    (f'{PORTS}<acme/><acme/>', "only one <acme>"),
    (f'{PORTS}<acme nope="1"/>', "nope"),
    ('<port>8080</port><datadir>/tmp/d</datadir><acme/>', "needs an HTTPS <port>"),
    ('<port protocol="HTTPS">8443</port><datadir>/tmp/d</datadir><acme challenges="http-01"/>',
     "http-01 challenge needs an HTTP <port>"),
    ('<port>8080</port><port protocol="HTTPS">8443</port><acme/>', "somewhere to keep"),
    (f'{PORTS}{HOST}', 'needs an <acme> element'),
    (f'{PORTS}<acme/><host hostfilter="*.example.org" acme="true"/>', "wildcard"),
    (f'{PORTS}<acme/><host hostfilter="*" acme="true"/>', "wildcard"),
    (f'{PORTS}<acme/><host hostfilter="127.0.0.1" acme="true"/>', "only for DNS names"),
    (f'{PORTS}<acme/><host hostfilter="a.example.org" acme="maybe"/>', "not a boolean"),
    (f'{PORTS}<acme/><host hostfilter="a.example.org" acme="true" certificate="c" privatekey="k"/>',
     "either acme"),
    (f'{PORTS}<acme/>{HOST}<host hostfilter="example.org" acme="true"/>', "already has"),
])
def test_mistakes_are_located(write_conf, inner, message):
    e = error(write_conf, inner)
    assert message in str(e)
    assert "ocsi.conf:" in str(e)  # file:line


def test_check_command_validates_acme(write_conf, capsys):
    from ocsi.cli import main

    path = write_conf(f'<ocsigen><server>{PORTS}<acme email="x"/>{HOST}</server></ocsigen>')
    assert main(["-c", path, "--check"]) != 0
    assert "is not an email address" in capsys.readouterr().err
    path = write_conf(f'<ocsigen><server>{PORTS}<acme email="x@example.org"/>{HOST}</server></ocsigen>')
    assert main(["-c", path, "--check"]) == 0


def test_what_a_reload_compares(write_conf, tmp_path):
    """Where things are written does not count; settings, names, the CA file's content do."""
    from ocsi._acme.config import acme_identity

    ca = tmp_path / "ca.pem"
    ca.write_bytes(new_authority()[0])
    acme = f'<acme email="a@b.org" ca="{ca}"/>'
    first = acme_identity(build(write_conf, f"{PORTS}{acme}{HOST}").settings)
    assert acme_identity(build(write_conf, f"{PORTS}\n\n{acme}\n{HOST}").settings) == first
    other = HOST.replace("example.org example", "example.org other.example")
    assert acme_identity(build(write_conf, f"{PORTS}{acme}{other}").settings) != first
    assert acme_identity(build(write_conf, f"{PORTS}{acme.replace('a@b', 'c@b')}{HOST}").settings) != first
    ca.write_bytes(new_authority()[0])
    assert acme_identity(build(write_conf, f"{PORTS}{acme}{HOST}").settings) != first
    assert acme_identity(build(write_conf, "<port>8080</port>").settings) == ()


def test_one_cluster_database_per_configuration():
    """What an extension publishes (ocsipersist-pgsql does) with a located second one."""
    from ocsi import ClusterDatabase, LoadContext
    from ocsi._config.settings import ServerSettings

    settings = ServerSettings()
    LoadContext(settings, "a.conf:3").publish_cluster_database({"host": "db", "port": 5432},
                                                              "db:5432/ocsipersist")
    assert settings.cluster_database == ClusterDatabase({"host": "db", "port": 5432},
                                                        "db:5432/ocsipersist", "a.conf:3")
    with pytest.raises(ConfigError) as e:
        LoadContext(settings, "a.conf:9").publish_cluster_database({}, "other:5432/x")
    assert e.value.where == "a.conf:9" and "db:5432/ocsipersist was given at a.conf:3" in str(e.value)
