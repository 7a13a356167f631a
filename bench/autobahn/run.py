#!/usr/bin/env python3
"""Autobahn|Testsuite's fuzzing client against ocsi's WebSocket paths, in one command.

    .venv/bin/python bench/autobahn/run.py                 # every case, both paths (~10 min)
    .venv/bin/python bench/autobahn/run.py --cases 1.*,2.*,5.*,6.*,7.* --exclude 6.4.*
    .venv/bin/python bench/autobahn/run.py --install-only  # only make wstest's environment

Two targets are tested side by side:

* ``ocsi-asgi``: an ASGI echo application (``ws_echo.py``) in ``<asgi>``, so ocsi's WebSocket
  layer (plugins/asgi, frames by wsproto) is what answers;
* ``ocsi-revproxy``: a second ocsi whose ``<revproxy>`` forwards to the first, so the upgrade
  and the byte tunnel of plugins/revproxy are in the path as well.

``autobahntestsuite`` is Python 2 only. Its environment is made once, from PyPI, with a
Python 2.7 interpreter (``--python2``, ``$OCSI_PYTHON2``, ``python2.7`` on the path, or one
of pyenv's): ``virtualenv`` < 20.22 (the last to run on 2.7) is installed into a private
directory, then ``autobahntestsuite`` (it brings Twisted 19 and autobahn 0.10) into a
virtual environment under ``--venv`` (default ``~/.cache/ocsi/autobahn-py2``).

The report (HTML and ``index.json``) is written under ``--outdir``; a summary is printed as
markdown (``--markdown FILE`` writes it too). Exit status: 0 when no case is FAILED, 1 when
one is, 2 when wstest or a server could not run. Every step is bounded in time.

Stdlib only; run it with the Python that has ocsi installed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
WSTEST_VERSION = "25.10.1"
DEFAULT_VENV = Path.home() / ".cache" / "ocsi" / "autobahn-py2"
AGENTS = ("ocsi-asgi", "ocsi-revproxy")
# Outcomes from best to worst, as wstest names them.
ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]

BACKEND_CONF = """<ocsigen><server>
  <port>127.0.0.1:{port}</port>
  <logdir>{run}/backend-log</logdir>
  <commandpipe>{run}/backend-pipe</commandpipe>
  <findlib path="{here}"/>
  <extension findlib-package="ocsi-ext-asgi"/>
  <host hostfilter="*"><asgi app="ws_echo:app" fallthrough="false"/></host>
</server></ocsigen>
"""
PROXY_CONF = """<ocsigen><server>
  <port>127.0.0.1:{port}</port>
  <logdir>{run}/proxy-log</logdir>
  <commandpipe>{run}/proxy-pipe</commandpipe>
  <extension findlib-package="ocsi-ext-revproxy"/>
  <host hostfilter="*"><revproxy suburl="(.*)" dest="http://127.0.0.1:{backend}/\\1"/></host>
</server></ocsigen>
"""


def find_python2(given: str | None) -> str | None:
    """A Python 2.7 interpreter, or None."""
    candidates = [given, os.environ.get("OCSI_PYTHON2"), shutil.which("python2.7")]
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv}/versions/2.7*/bin/python2.7"), reverse=True)
    for c in candidates:
        if c and Path(c).exists():
            out = subprocess.run([c, "-c", "import sys; print(sys.version_info[:2] == (2, 7))"],
                                 capture_output=True, text=True, timeout=30)
            if out.stdout.strip() == "True":
                return c
    return None


def ensure_wstest(venv: Path, python2: str | None) -> Path:
    """The path of ``wstest``, installing it into ``venv`` when it is not there."""
    wstest = venv / "bin" / "wstest"
    if wstest.exists():
        return wstest
    py2 = find_python2(python2)
    if py2 is None:
        raise SystemExit("autobahn: no Python 2.7 interpreter (give --python2 or $OCSI_PYTHON2; "
                         "pyenv can build one: pyenv install 2.7.18)")
    tools = venv.parent / (venv.name + "-virtualenv")
    print("autobahn: installing virtualenv for", py2, flush=True)
    quiet([py2, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(tools),
           "virtualenv<20.22"], timeout=600)
    quiet([py2, "-m", "virtualenv", "-q", str(venv)], timeout=300, env={**os.environ, "PYTHONPATH": str(tools)})
    print(f"autobahn: installing autobahntestsuite=={WSTEST_VERSION} into {venv}", flush=True)
    quiet([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
           f"autobahntestsuite=={WSTEST_VERSION}"], timeout=900)
    return wstest


def quiet(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> None:
    """Run an install step; its output (pip's Python 2 warnings) is shown only if it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise subprocess.CalledProcessError(done.returncode, cmd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_ocsi(conf: str, port: int, run: Path, name: str) -> subprocess.Popen[bytes]:
    (run / f"{name}-log").mkdir()
    path = run / f"{name}.conf"
    path.write_text(conf)
    log = (run / f"{name}.out").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "ocsi", "-c", str(path)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise SystemExit(f"autobahn: {name} did not start; see {run}/{name}.out")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def case_key(case: str) -> tuple[int, ...]:
    return tuple(int(p) for p in case.split("."))


def summarise(index: dict[str, dict[str, dict[str, object]]]) -> tuple[str, bool]:
    """Markdown: a table of outcomes per agent, then every case that is not OK with why.
    The boolean is true when a case FAILED (protocol or close behaviour)."""
    lines = ["| target | cases | " + " | ".join(ORDER) + " |",
             "|---|---:|" + "---:|" * len(ORDER)]
    failed = False
    notes: list[str] = []
    for agent in sorted(index):
        cases = index[agent]
        counts: Counter[str] = Counter()
        for case, res in sorted(cases.items(), key=lambda kv: case_key(kv[0])):
            worst = max(str(res["behavior"]), str(res["behaviorClose"]),
                        key=lambda b: ORDER.index(b) if b in ORDER else len(ORDER))
            counts[worst] += 1
            if worst == "FAILED":
                failed = True
            if worst != "OK":
                notes.append(f"- {agent} {case}: {res['behavior']} (close {res['behaviorClose']}, "
                             f"code {res.get('remoteCloseCode')})")
        lines.append(f"| {agent} | {len(cases)} | " + " | ".join(str(counts[o]) for o in ORDER) + " |")
    return "\n".join(lines + ([""] + notes if notes else [])), failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="*", help="comma-separated case patterns (default: all)")
    ap.add_argument("--exclude", default="", help="comma-separated case patterns to leave out")
    ap.add_argument("--agents", default=",".join(AGENTS), help="ocsi-asgi, ocsi-revproxy or both")
    ap.add_argument("--venv", type=Path, default=Path(os.environ.get("OCSI_AUTOBAHN_VENV", DEFAULT_VENV)))
    ap.add_argument("--python2", help="a Python 2.7 interpreter for wstest's environment")
    ap.add_argument("--outdir", type=Path, help="where the report goes (default: a new temporary directory)")
    ap.add_argument("--markdown", type=Path, help="also write the summary to this file")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds wstest may run (default 1800)")
    ap.add_argument("--install-only", action="store_true", help="make wstest's environment and stop")
    args = ap.parse_args()

    try:
        wstest = ensure_wstest(args.venv, args.python2)
    except subprocess.SubprocessError as exc:
        print(f"autobahn: installing wstest failed: {exc}", file=sys.stderr)
        return 2
    if args.install_only:
        print(f"autobahn: {wstest}")
        return 0

    run = Path(tempfile.mkdtemp(prefix="ocsi-autobahn-"))
    outdir = args.outdir or run / "reports"
    backend_port, proxy_port = free_port(), free_port()
    urls = {"ocsi-asgi": f"ws://127.0.0.1:{backend_port}/",
            "ocsi-revproxy": f"ws://127.0.0.1:{proxy_port}/"}
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    spec = {
        "outdir": str(outdir),
        "servers": [{"agent": a, "url": urls[a]} for a in agents],
        "cases": [c.strip() for c in args.cases.split(",") if c.strip()],
        "exclude-cases": [c.strip() for c in args.exclude.split(",") if c.strip()],
        "exclude-agent-cases": {},
    }
    (run / "fuzzingclient.json").write_text(json.dumps(spec, indent=2))
    procs = []
    try:
        procs.append(start_ocsi(BACKEND_CONF.format(port=backend_port, run=run, here=HERE),
                                backend_port, run, "backend"))
        procs.append(start_ocsi(PROXY_CONF.format(port=proxy_port, run=run, backend=backend_port),
                                proxy_port, run, "proxy"))
        print(f"autobahn: wstest fuzzingclient, cases {spec['cases']} less {spec['exclude-cases']}, "
              f"report in {outdir}", flush=True)
        started = time.monotonic()
        with (run / "wstest.out").open("wb") as out:
            try:
                subprocess.run([str(wstest), "-m", "fuzzingclient", "-s", str(run / "fuzzingclient.json")],
                               cwd=run, stdout=out, stderr=subprocess.STDOUT, timeout=args.timeout,
                               check=False)
            except subprocess.TimeoutExpired:
                print(f"autobahn: wstest did not finish in {args.timeout:.0f} s", file=sys.stderr)
                return 2
        elapsed = time.monotonic() - started
    finally:
        for p in reversed(procs):
            stop(p)
    try:
        index = json.loads((outdir / "index.json").read_text())
    except (OSError, ValueError):
        print(f"autobahn: no report; see {run}/wstest.out", file=sys.stderr)
        return 2
    summary, failed = summarise(index)
    summary += f"\n\n{sum(len(v) for v in index.values())} case runs in {elapsed:.0f} s; report: {outdir}/index.html\n"
    print(summary)
    if args.markdown:
        args.markdown.write_text(summary)
    errors = [line for name in ("backend", "proxy") for line in
              (run / f"{name}-log" / "errors.log").read_text(errors="replace").splitlines()
              if (run / f"{name}-log" / "errors.log").exists()]
    if errors:
        print(f"autobahn: {len(errors)} lines in the servers' errors.log, e.g. {errors[0][:200]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
