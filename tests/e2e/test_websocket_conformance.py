"""Autobahn|Testsuite's fuzzing client against ocsi's WebSocket paths (bench/autobahn/run.py).

A bounded subset: framing (1.*, 2.*), reserved bits and opcodes (3.*, 4.*), fragmentation (5.*),
UTF-8 validation (6.*), close handling and codes (7.*), small and large messages (9.1.1, 9.1.2,
9.2.1, 9.2.2) and auto-fragmentation (10.*), against the ASGI echo directly and through
revproxy. The cases left out wait a second each on purpose (5.19, 5.20, 6.4.*) or need
permessage-deflate (12.*, 13.*, which ocsi does not offer); the full run is
``bench/autobahn/run.py`` without options.

Every case must be OK, except those below, each with why. The test is skipped when wstest's
Python 2.7 environment is not installed (``bench/autobahn/run.py --install-only``; .ci/run
does it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "autobahn" / "run.py"
VENV = Path(os.environ.get("OCSI_AUTOBAHN_VENV", Path.home() / ".cache" / "ocsi" / "autobahn-py2"))
CASES = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.1.1,9.1.2,9.2.1,9.2.2,10.*"
EXCLUDE = "5.19,5.20,6.4.*"

#: Frames sent in one write: wsproto reads the whole buffer and fails the connection (1002, as
#: it must) at the bad frame before the application's echo of the valid message before it has
#: been written. Autobahn wants that echo first and calls the outcome NON-STRICT; whether the
#: echo wins the race depends on timing, so OK is accepted too.
ECHO_RACE = {"3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.1.5", "4.2.3", "4.2.4", "4.2.5", "5.15"}
#: Autobahn's own informational cases: 7.1.6 (a close right after a 256 KiB message: ocsi
#: answers the close before echoing the message), 7.13.1 and 7.13.2 (close codes 5000 and 65536,
#: undefined by RFC 6455: ocsi fails the connection with 1002).
INFORMATIONAL = {"7.1.6", "7.13.1", "7.13.2"}


def allowed(case: str) -> set[str]:
    if case in ECHO_RACE:
        return {"OK", "NON-STRICT"}
    if case in INFORMATIONAL:
        return {"OK", "INFORMATIONAL"}
    return {"OK"}


@pytest.mark.skipif(not (VENV / "bin" / "wstest").exists(),
                    reason=f"wstest is not installed in {VENV} (bench/autobahn/run.py --install-only)")
def test_autobahn_fuzzing_client_subset(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(RUN), "--venv", str(VENV), "--cases", CASES, "--exclude", EXCLUDE,
                          "--outdir", str(tmp_path / "reports"), "--timeout", "300"],
                         capture_output=True, text=True, timeout=400)
    assert out.returncode in (0, 1), out.stdout + out.stderr
    index = json.loads((tmp_path / "reports" / "index.json").read_text())
    assert set(index) == {"ocsi-asgi", "ocsi-revproxy"}
    wrong = []
    for agent, cases in index.items():
        assert len(cases) >= 230, (agent, len(cases))
        for case, result in cases.items():
            outcome = {result["behavior"], result["behaviorClose"]}
            if not outcome <= allowed(case):
                wrong.append(f"{agent} {case}: {result['behavior']} / close {result['behaviorClose']}")
    assert not wrong, wrong
