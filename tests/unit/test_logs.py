"""Access line formats: Ocsigen's layout, Apache's combined, and no forged lines."""

import re
import time

from ocsi._http.access import AccessRecord
from ocsi.accesslog import combined_line, ocsigen_line


def record(**kw):
    base = dict(time=time.time(), client="10.0.0.1", method="GET", target="/a%20b?x=1",
                version="1.1", host="example.org:8080", user_agent="curl/8", referer=None,
                forwarded_for=None, status=200, bytes_sent=12, duration=0.001, request=None,
                port=8080, secure=False)
    base.update(kw)
    return AccessRecord(**base)


def test_ocsigen_line():
    line = ocsigen_line(record())
    assert re.match(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d: ocsigen:access: connection for example\.org "
                    r"from 10\.0\.0\.1 \(curl/8\): /a%20b 200 12\n$", line), line


def test_ocsigen_line_without_host_and_with_xff():
    line = ocsigen_line(record(host=None, forwarded_for="1.2.3.4"))
    assert "connection for <host not specified in the request> from 10.0.0.1 (curl/8) " \
           "X-Forwarded-For: 1.2.3.4: /a%20b" in line


def test_ipv6_host_keeps_brackets():
    assert "connection for [::1] from" in ocsigen_line(record(host="[::1]:8080"))


def test_combined_line():
    line = combined_line(record(referer="http://r/"))
    assert re.match(r'^example\.org:8080 10\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                    r'"GET /a%20b\?x=1 HTTP/1\.1" 200 12 "http://r/" "curl/8"\n$', line), line


def test_control_characters_cannot_forge_lines():
    line = ocsigen_line(record(user_agent="x\nNov 22 10:00:00: ocsigen:access: fake", host="h\r"))
    assert line.count("\n") == 1 and "\\n" in line and "\\r" in line
    line = combined_line(record(referer="a\x1b[31mred"))
    assert "\x1b" not in line and line.count("\n") == 1


def test_unparsed_request_line():
    line = combined_line(record(method=None, target=None, version=None, status=400))
    assert '"-" 400' in line


def test_access_log_on_a_full_disk_drops_lines_and_says_when_it_recovers(tmp_path, caplog):
    import logging
    import os

    from ocsi.accesslog import AccessLog

    log = AccessLog(str(tmp_path / "access.log"), console=False)
    good = os.dup(log.fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log.fd)  # the disk fills up under the open descriptor
    caplog.set_level(logging.WARNING)
    for i in range(5):
        log.write(record(target=f"/lost{i}"))
        log.flush()
    assert log.lost == 5 and not log._lines
    assert [r.getMessage() for r in caplog.records].count(
        f"cannot write {tmp_path}/access.log (No space left on device): access lines are lost "
        "until it can be written again") == 1
    os.dup2(good, log.fd)  # space again
    log.write(record(target="/back"))
    log.flush()
    assert log.lost == 0
    assert f"{tmp_path}/access.log is written again; 5 access lines were lost" in caplog.text
    text = (tmp_path / "access.log").read_text()
    assert "/back" in text and "/lost" not in text
    log.close()
    os.close(good)
    os.close(full)
