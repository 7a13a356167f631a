"""Configuration parsing: document shape, directives, hosts, sites, located errors."""

import pytest

from ocsi._config.errors import ConfigError, ExtensionLoadError, ExtensionNotFound, XMLSyntaxError
from ocsi._extensions.loader import new_plugin_manager
from ocsi.runtime import build_configuration


def build(write_conf, text, name="ocsi.conf"):
    return build_configuration(new_plugin_manager(), write_conf(text, name))


def test_minimal_defaults(write_conf):
    c = build(write_conf, "<ocsigen><server></server></ocsigen>")
    s = c.settings
    assert [(p.address, p.port) for p in s.ports] == [(None, 80)]
    assert s.maxretries == 10 and s.maxconnected == 350 and s.maxrequestbodysize == 8_000_000
    assert c.hosts == []


def test_directives(write_conf):
    c = build(write_conf, """<ocsigen><server>
      <port>8080</port><port>*:8081</port><port>127.0.0.1:8082</port><port>[::1]:8083</port>
      <port>[::]:8084</port>
      <logdir>/tmp</logdir><datadir>/tmp</datadir><user>nobody</user><group>nogroup</group>
      <commandpipe>/tmp/x.cmd</commandpipe><charset>latin1</charset><uploaddir>/tmp</uploaddir>
      <maxuploadfilesize>2MB</maxuploadfilesize><maxrequestbodysize>10KiB</maxrequestbodysize>
      <debugmode/><usedefaulthostname/><disablepartialrequests/><respectpipeline/>
      <maxconnected>5</maxconnected><timeout>7</timeout><clienttimeout>8</clienttimeout>
      <servertimeout>9</servertimeout><keepalivetimeout>3</keepalivetimeout>
      <shutdowntimeout>notimeout</shutdowntimeout><netbuffersize>8192</netbuffersize>
      <filebuffersize>8192</filebuffersize><minthreads>1</minthreads><maxthreads>2</maxthreads>
      <maxdetachedcomputationsqueued>3</maxdetachedcomputationsqueued><maxretries>4</maxretries>
      <accesslogformat>combined</accesslogformat>
    </server></ocsigen>""")
    s = c.settings
    assert [(p.address, p.port) for p in s.ports] == [
        (None, 8080), ("0.0.0.0", 8081), ("127.0.0.1", 8082), ("::1", 8083), ("::", 8084)]
    assert s.maxuploadfilesize == 2_000_000 and s.maxrequestbodysize == 10240
    assert s.debugmode and s.usedefaulthostname and s.maxconnected == 5 and s.timeout == 8
    assert s.keepalivetimeout == 3 and s.shutdowntimeout is None and s.maxretries == 4
    assert s.charset == "latin1" and s.accesslogformat == "combined"
    assert (s.user, s.group, s.logdir, s.datadir) == ("nobody", "nogroup", "/tmp", "/tmp")
    assert s.commandpipe == "/tmp/x.cmd" and s.uploaddir == "/tmp"
    assert (s.minthreads, s.maxthreads, s.maxdetachedcomputationsqueued) == (1, 2, 3)


def test_unknown_server_element_is_located(write_conf):
    with pytest.raises(ConfigError) as e:
        build(write_conf, "<ocsigen>\n<server>\n  <statc/>\n</server></ocsigen>")
    msg = str(e.value)
    assert msg.startswith(f"{e.value.where}:")
    assert e.value.where.endswith("ocsi.conf:3:3")
    assert "unknown element <statc> in <server>" in msg and "known here:" in msg
    assert e.value.exit_code == 50


def test_xml_syntax_error_is_located(write_conf):
    with pytest.raises(XMLSyntaxError) as e:
        build(write_conf, "<ocsigen>\n<server>\n<port>80</port\n</server></ocsigen>")
    assert e.value.exit_code == 51
    assert ":3:" in e.value.where or ":4:" in e.value.where


@pytest.mark.parametrize("inner,needle", [
    ("<port>localhost:80</port>", "not a valid value"),
    ("<port protocol='FTP'>80</port>", "not HTTP or HTTPS"),
    ("<port protocol='HTTPS' h2c='true'>443</port>", 'h2c="true" is for plain HTTP ports'),
    ("<port h2c='maybe'>80</port>", 'not a boolean'),
    ("<httpparser>llhttp</httpparser>", 'not an HTTP parser (h11 or httptools)'),
    ("<maxrequestbodysize>lots</maxrequestbodysize>", "not a valid size"),
    ("<maxretries>x</maxretries>", "not a valid integer"),
    ("<minthreads>5</minthreads><maxthreads>2</maxthreads>", "maxthreads should be greater"),
    ("<debugmode x='1'/>", "unknown attribute 'x'"),
    ("<host><bogus/></host>", "unknown element <bogus> in <host>"),
    ("<host name='x'/>", "unknown attribute 'name' in <host>"),
    ("<host defaulthostname='a_b'/>", "incorrect hostname a_b"),
    ("<host><site/></host>", "missing path attribute in <site>"),
    ("<host><site path='a' foo='b'/></host>", "unknown attribute 'foo' in <site>"),
    ("<ssl><certificate>/x</certificate></ssl>", "SSL key is missing"),
    ("<port protocol='HTTPS'>443</port>", "HTTPS port declared without a certificate"),
    ("<syslog>bogus</syslog>", "unknown bogus facility"),
    ("<extension/>", "exactly one of findlib-package"),
    ("<extension name='a' module='b'/>", "exactly one of findlib-package"),
])
def test_errors(write_conf, inner, needle):
    with pytest.raises(ConfigError) as e:
        build(write_conf, f"<ocsigen><server>{inner}</server></ocsigen>")
    assert needle in str(e.value)
    assert "ocsi.conf:" in str(e.value)


def test_wrong_root(write_conf):
    with pytest.raises(ConfigError, match="root element must be <ocsigen>"):
        build(write_conf, "<config/>")
    with pytest.raises(ConfigError, match="must contain a <server>"):
        build(write_conf, "<ocsigen/>")


def test_hosts_and_sites(write_conf, exts_path):
    c = build(write_conf, f"""<ocsigen><server><port>8000</port>
      <findlib path="{exts_path}"/>
      <extension findlib-package="ocsi-ext-testbase"/>
      <charset>latin1</charset>
      <host hostfilter="a.com *.org:8000 [::1]:*" defaulthostname="main.example" charset="">
        <site path="/x/y/"><say text="hi"/></site>
        <say text="top"/>
      </host>
      <host><say text="any"/></host>
    </server></ocsigen>""")
    h1, h2 = c.hosts
    assert [p.text for p in h1.patterns] == ["a.com", "*.org:8000", "[::1]:*"]
    assert h1.matches("A.COM", 1) and h1.matches("foo.org", 8000) and not h1.matches("foo.org", 80)
    assert not h1.matches("b.com", 8000) and h1.matches(None, 5)
    assert h1.config.default_hostname == "main.example" and h1.config.charset is None
    assert h1.config.default_httpport == 8000
    assert h2.config.charset == "latin1"
    assert h1.steps[0].path == ("x", "y")
    assert c.extensions == ["ocsi-ext-testbase"]


def test_charset_order_matters(write_conf, exts_path):
    c = build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
      <host/><charset>latin1</charset><host/></server></ocsigen>""")
    assert c.hosts[0].config.charset == "utf-8" and c.hosts[1].config.charset == "latin1"


def test_extconf_spliced_in_byte_order(write_conf, tmp_path, exts_path):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "b.conf").write_text("<ocsigen><server><host hostfilter='b'/></server></ocsigen>")
    (d / "a.conf").write_text("<ocsigen><server><host hostfilter='a'/></server></ocsigen>")
    (d / "B.conf").write_text("<ocsigen><server><host hostfilter='B'/></server></ocsigen>")
    (d / "x.myconf").write_text("<ocsigen><server><host hostfilter='x'/></server></ocsigen>")
    (d / "z.txt").write_text("<not xml")
    (d / "broken.conf").write_text("<ocsigen><server>")
    c = build(write_conf, f"""<ocsigen><server><host hostfilter="first"/>
      <extconf dir="{d}"/><host hostfilter="last"/></server></ocsigen>""")
    assert [h.name for h in c.hosts] == ["first", "B", "a", "b", "x", "last"]
    assert str(d) in c.dirs


def test_semantic_error_in_extconf_names_that_file(write_conf, tmp_path):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "a.conf").write_text("<ocsigen><server>\n<host><nope/></host></server></ocsigen>")
    with pytest.raises(ConfigError) as e:
        build(write_conf, f"<ocsigen><server><extconf dir='{d}'/></server></ocsigen>")
    assert "a.conf:2:" in e.value.where


def test_unknown_element_lists_known(write_conf, exts_path):
    with pytest.raises(ConfigError) as e:
        build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
          <extension findlib-package="ocsi-ext-testbase"/>
          <host><site path="a">
            <sya/></site></host></server></ocsigen>""")
    assert 'unknown element <sya> in <site path="a">' in str(e.value)
    assert "say" in e.value.hint and "site" in e.value.hint
    assert ":4:13" in e.value.where


def test_element_before_extension_hints(write_conf):
    with pytest.raises(ConfigError) as e:
        build(write_conf, "<ocsigen><server><host><static dir='/'/></host></server></ocsigen>")
    assert "no extension is loaded" in e.value.hint


# -- extensions ---------------------------------------------------------------------------------
def test_dependency_loaded_first_and_once(write_conf, exts_path):
    c = build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
      <extension findlib-package="ocsi-ext-testhello"><greeting value="Salut"/></extension>
      <extension findlib-package="ocsi-ext-testbase"/>
      <extension findlib-package="ocsi-ext-testhello"><greeting value="ignored"/></extension>
      <host><hello name="Léa"/></host></server></ocsigen>""")
    assert c.extensions == ["ocsi-ext-testbase", "ocsi-ext-testhello"]
    assert c.options["ocsi-ext-testhello"] == {"greeting": "Salut"}
    assert c.hosts[0].steps[0].text == "Salut, Léa!"


def test_ocsigen_names_map(write_conf, exts_path):
    for attr in ('findlib-package="ocsigenserver.ext.testbase"', 'name="testbase"',
                 'module="testbase.cmxs"', 'findlib-package="OCSI_EXT_TESTBASE"'):
        c = build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
          <extension {attr}/></server></ocsigen>""")
        assert c.extensions == ["ocsi-ext-testbase"], attr


def test_require_is_extension(write_conf, exts_path):
    c = build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
      <require findlib-package="ocsi-ext-testbase"/></server></ocsigen>""")
    assert c.extensions == ["ocsi-ext-testbase"]


def test_options_rejected_when_not_accepted(write_conf, exts_path):
    with pytest.raises(ConfigError, match="ocsi-ext-testbase does not accept options"):
        build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
          <extension findlib-package="ocsi-ext-testbase"><x/></extension></server></ocsigen>""")


def test_bad_option_located(write_conf, exts_path):
    with pytest.raises(ConfigError) as e:
        build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
          <extension findlib-package="ocsi-ext-testhello">
            <greting value="x"/></extension></server></ocsigen>""")
    assert "unknown option <greting>" in str(e.value) and ":3:13" in e.value.where


def test_missing_extension(write_conf):
    with pytest.raises(ExtensionNotFound) as e:
        build(write_conf, "<ocsigen><server>\n<extension findlib-package='ocsi-ext-nope'/></server></ocsigen>")
    assert "ocsi-ext-nope" in str(e.value) and e.value.exit_code == 53
    assert ":2:" in e.value.where and "findlib path" in e.value.hint


def test_missing_dependency_named(write_conf, exts_path):
    with pytest.raises(ExtensionNotFound) as e:
        build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
          <extension findlib-package="ocsi-ext-needsmissing"/></server></ocsigen>""")
    assert "ocsi-ext-notinstalled" in str(e.value) and "ocsi-ext-needsmissing" in str(e.value)


def test_cycle_named(write_conf, exts_path):
    with pytest.raises(ExtensionLoadError) as e:
        build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
          <extension findlib-package="ocsi-ext-cyclea"/></server></ocsigen>""")
    assert "ocsi-ext-cyclea -> ocsi-ext-cycleb -> ocsi-ext-cyclea" in str(e.value)


def test_unknown_hook_refused(write_conf, exts_path):
    with pytest.raises(ExtensionLoadError, match="unknown hook"):
        build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
          <extension findlib-package="ocsi-ext-badhook"/></server></ocsigen>""")


def test_element_clash_names_both(write_conf, exts_path):
    with pytest.raises(ConfigError) as e:
        build(write_conf, f"""<ocsigen><server><findlib path="{exts_path}"/>
          <extension findlib-package="ocsi-ext-testhello"/>
          <extension findlib-package="ocsi-ext-testclash"/>
          <host><hello/></host></server></ocsigen>""")
    assert "ocsi-ext-testhello" in str(e.value) and "ocsi-ext-testclash" in str(e.value)


def test_only_named_extensions_are_enabled(write_conf, exts_path):
    """An extension loaded by an earlier configuration is not usable by one that omits it."""
    pm = new_plugin_manager()
    build_configuration(pm, write_conf(f"""<ocsigen><server><findlib path="{exts_path}"/>
        <extension findlib-package="ocsi-ext-testbase"/></server></ocsigen>"""))
    with pytest.raises(ConfigError, match="unknown element <say>"):
        build_configuration(pm, write_conf(f"""<ocsigen><server><findlib path="{exts_path}"/>
            <host><say text="x"/></host></server></ocsigen>""", "b.conf"))


def test_library_reimported_each_build(write_conf, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mysite.py").write_text(
        "import ocsi\nVERSION = 1\n"
        "@ocsi.hookimpl\ndef ocsi_elements():\n    return {'mine': lambda el, ctx: ocsi.FunctionStep(None)}\n")
    pm = new_plugin_manager()
    text = f"""<ocsigen><server><findlib path="{lib}"/><library module="mysite"/>
        <host><mine/></host></server></ocsigen>"""
    build_configuration(pm, write_conf(text))
    import sys
    assert sys.modules["mysite"].VERSION == 1
    (lib / "mysite.py").write_text((lib / "mysite.py").read_text().replace("VERSION = 1", "VERSION = 22"))
    c = build_configuration(pm, write_conf(text))
    assert sys.modules["mysite"].VERSION == 22
    assert c.libraries == ["mysite"] and str(lib / "mysite.py") in c.files


def test_library_import_errors_hint_only_when_not_found(write_conf, tmp_path):
    """Where modules are looked for is worth saying for a module not found, not for one found
    but broken: its own message locates the fault."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "brokensite.py").write_text("def broken(:\n")
    pm = new_plugin_manager()
    with pytest.raises(ConfigError) as e:
        build_configuration(pm, write_conf(f'<ocsigen><server><findlib path="{lib}"/>'
                                           '<library module="brokensite"/></server></ocsigen>'))
    assert "SyntaxError" in str(e.value) and "brokensite.py, line 1" in str(e.value)
    assert e.value.hint is None
    with pytest.raises(ConfigError) as e:
        build_configuration(pm, write_conf('<ocsigen><server><library module="nosuchsite"/>'
                                           '</server></ocsigen>'))
    assert "ModuleNotFoundError" in str(e.value) and "<findlib path>" in (e.value.hint or "")
