"""Static files as a browser gets them: over HTTP/2, compressed in each coding, listed, seeked
in, only over HTTPS (``redirect-to-https``, HSTS), and behind Basic authentication. One server
for the module, one more per content coding (deflatemod's offer is the extension's), and one
whose certificate the browser must refuse."""

from __future__ import annotations

import struct
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from ocsi.testing import RunningServer, self_signed

from .conftest import Browser, Served, log_lines

WORDS = " ".join(f"word{i % 50}" for i in range(4000))  # 35 kB of text that compresses well
WORDS_PAGE = f"<!doctype html><title>words</title><p id=words>{WORDS}</p>"
SECONDS = 240  # a WAV of 240 s, 8 kHz, 16-bit mono: 3.8 MB, more than one read ahead


def _wav(path: Path) -> None:
    """A sound a browser plays and seeks in, made here (a 440 Hz square wave)."""
    period = b"".join(struct.pack("<h", 8000 if i < 9 else -8000) for i in range(18))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(period * (SECONDS * 8000 // 18))


@pytest.fixture(scope="module")
def site(https_server: Callable[..., Served], tmp_path_factory: pytest.TempPathFactory) -> Served:
    www = tmp_path_factory.mktemp("www")
    (www / "index.html").write_text("<!doctype html><title>home</title><p id=home>Home page</p>")
    (www / "words.html").write_text(WORDS_PAGE)
    (www / "files").mkdir()
    for name in ("a&b.txt", "notes.txt"):
        (www / "files" / name).write_text(name)
    (www / "files" / "sub").mkdir()
    _wav(www / "tone.wav")
    (www / "private").mkdir()
    (www / "private" / "index.html").write_text("<!doctype html><title>private</title><p>Members only</p>")
    (www / "private" / "notes.txt").write_text("the notes")
    users = tmp_path_factory.mktemp("users") / "htpasswd"
    hashed = subprocess.run([sys.executable, "-m", "ocsi", "hash-password", "ada", "--cost", "4"],
                            input="lovelace\n", capture_output=True, text=True, check=True, timeout=60)
    users.write_text(hashed.stdout)
    return https_server(f"""
<extension findlib-package="ocsi-ext-staticmod"/>
<extension findlib-package="ocsi-ext-extendconfiguration"/>
<extension findlib-package="ocsi-ext-deflatemod"/>
<extension findlib-package="ocsi-ext-authbasic"/>
<host hostfilter="hsts.test" redirect-to-https="true" hsts="600"><static dir="{www}"/></host>
<host redirect-to-https="true">
  <listdirs value="true"/>
  <site path="noranges"><static dir="{www}" maxranges="0"/></site>
  <site path="private"><authbasic realm="Members"><htpasswd file="{users}"/></authbasic></site>
  <static dir="{www}"/>
  <deflate compress="only"><type>text/*</type></deflate>
</host>""", plain=True)


def test_a_page_over_http2(browser: Browser, site: Served) -> None:
    browser.get(site.url("/"))
    assert browser.text() == "Home page"
    assert browser.navigation()["nextHopProtocol"] == "h2"


@pytest.fixture(scope="module")
def coded(https_server: Callable[..., Served], site: Served,
          tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Served]:
    """``coded(coding)``: a server whose deflatemod offers only ``coding`` (the option is the
    extension's, one per server); zstd, the best Chromium asks for, is the main site's."""
    servers: dict[str, Served] = {"zstd": site}

    def start(coding: str) -> Served:
        if coding not in servers:
            www = tmp_path_factory.mktemp(coding)
            (www / "words.html").write_text(WORDS_PAGE)
            servers[coding] = https_server(f"""
<extension findlib-package="ocsi-ext-staticmod"/>
<extension findlib-package="ocsi-ext-deflatemod"><encodings value="{coding}"/></extension>
<host><static dir="{www}"/><deflate compress="only"><type>text/*</type></deflate></host>""")
        return servers[coding]

    return start


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip", "deflate"])
def test_a_compressed_page_is_decoded(browser: Browser, coded: Callable[[str], Served], coding: str) -> None:
    served = coded(coding)
    browser.get(served.url("/words.html"))
    assert browser.text() == WORDS
    nav = browser.navigation()
    assert nav["contentEncoding"] == coding
    assert nav["decodedBodySize"] > 10 * nav["encodedBodySize"] > 0
    # what the page fetches itself is decoded the same way
    got = browser.run("const r = await fetch('/words.html'); return [r.headers.get('vary'), await r.text()];")
    assert got[0] == "Accept-Encoding" and got[1] == WORDS_PAGE


def test_a_directory_listing_is_browsed(browser: Browser, site: Served) -> None:
    browser.get(site.url("/files/"))
    assert browser.driver.title == "Directory listing for /files/"
    links = browser.driver.find_elements("css selector", "li a")
    assert [a.text for a in links] == ["../", "a&b.txt", "notes.txt", "sub/"]
    links = links[1:]  # past the parent's link
    links[0].click()  # an escaped name, followed as a user would
    browser.wait_url(site.url("/files/a%26b.txt"))
    assert browser.text() == "a&b.txt"
    browser.driver.back()
    browser.driver.find_element("link text", "sub/").click()
    browser.wait_title("Directory listing for /files/sub/")
    assert browser.url == site.url("/files/sub/")


#: A <video> element given ``arguments[0]``: its duration and how far it can seek once its
#: metadata is in, then, when ``arguments[1]`` is a time, where it is after seeking there.
SEEK = """
    const v = document.createElement('video');
    v.preload = 'metadata';
    v.muted = true;
    document.body.append(v);
    const ready = new Promise((ok, ko) => {
        v.onloadedmetadata = ok;
        v.onerror = () => ko(v.error.message);
    });
    v.src = arguments[0];
    await ready;
    const state = {duration: v.duration, seekable: v.seekable.length && v.seekable.end(0)};
    if (arguments[1] !== null) {
        const seeked = new Promise(ok => { v.onseeked = ok; });
        v.currentTime = arguments[1];
        await seeked;
        Object.assign(state, {time: v.currentTime, ready: v.readyState});
    }
    v.remove();
    return state;"""


def test_a_range_fetched_and_a_sound_seeked(browser: Browser, site: Served) -> None:
    browser.get(site.url("/"))
    got = browser.run("""
        const r = await fetch('/tone.wav', {headers: {Range: 'bytes=44-143'}});
        return [r.status, r.headers.get('content-range'), (await r.arrayBuffer()).byteLength];""")
    size = (SECONDS * 8000 // 18) * 18 * 2 + 44
    assert got == [206, f"bytes 44-143/{size}", 100]
    before = len(log_lines(site.server, "/tone.wav ", 1))
    state = browser.run(SEEK, "/tone.wav", SECONDS - 10)
    assert state["duration"] == pytest.approx(SECONDS, abs=0.1)
    assert state["seekable"] == pytest.approx(SECONDS, abs=0.1)
    assert state["time"] == pytest.approx(SECONDS - 10, abs=0.1) and state["ready"] >= 2
    # each piece the element asked for came as a range (or as a revalidation of what it
    # had cached, 304), never the whole file
    media = log_lines(site.server, "/tone.wav ", before + 2)[before:]
    assert any(" 206 " in line for line in media), media
    assert all(" 206 " in line or " 304 " in line for line in media), media
    # the same sound where ranges are off: Chromium can play it but not seek in it
    state = browser.run(SEEK, "/noranges/tone.wav", None)
    assert state["duration"] == pytest.approx(SECONDS, abs=0.1) and state["seekable"] == 0


def test_plain_http_is_redirected_to_https(browser: Browser, site: Served) -> None:
    browser.get(site.plain_url("/words.html?x=1"))
    assert browser.url == site.url("/words.html?x=1") and browser.text() == WORDS
    assert browser.driver.execute_script("return window.isSecureContext") is True


def test_hsts_makes_the_browser_ask_for_https_itself(browser: Browser, site: Served) -> None:
    # plain HTTP sent to the HTTPS port: no page, until the browser knows the site is HTTPS-only
    unknown = site.url("/", name="hsts.test").replace("https:", "http:")
    browser.get(unknown)
    assert browser.text() != "Home page"
    browser.get(site.url("/", name="hsts.test"))
    assert browser.text() == "Home page"
    browser.get(unknown)
    assert browser.url == site.url("/", name="hsts.test") and browser.text() == "Home page"


def test_a_protected_page_with_credentials(browser: Browser, site: Served) -> None:
    browser.get(site.url("/private/"))
    assert "Members only" not in browser.text()
    assert browser.navigation()["responseStatus"] == 401
    browser.get(site.url("/private/").replace("https://", "https://ada:wrong@"))
    assert browser.navigation()["responseStatus"] == 401
    browser.get(site.url("/private/").replace("https://", "https://ada:lovelace@"))
    assert browser.text() == "Members only"
    # the browser sends what it was given again, unasked, for the rest of the protected space
    got = browser.run("const r = await fetch(arguments[0]); return [r.status, await r.text()];",
                      site.url("/private/notes.txt"))
    assert got == [200, "the notes"]


def test_a_certificate_from_elsewhere_is_refused(browser: Browser,
                                                 module_server: Callable[..., RunningServer],
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    # the trust the other tests rely on is the NSS database's: the same name signed by a key
    # it does not hold gets the browser's warning, not the page
    d = tmp_path_factory.mktemp("untrusted")
    cert, key = self_signed(("app.test",))
    (d / "c.pem").write_bytes(cert)
    (d / "k.pem").write_bytes(key)
    (d / "index.html").write_text("Home page")
    other = module_server(f"""<ocsigen><server><port protocol="HTTPS">127.0.0.1:{{port}}</port>
<ssl><certificate>{d}/c.pem</certificate><privatekey>{d}/k.pem</privatekey></ssl>
<logdir>{{tmp}}/log</logdir><extension findlib-package="ocsi-ext-staticmod"/>
<host><static dir="{d}"/></host></server></ocsigen>""", full=True)
    browser.get(f"https://app.test:{other.port}/")
    assert "NET::ERR_CERT_AUTHORITY_INVALID" in browser.text() and "Home page" not in browser.text()
