"""Installable by name: wheels of ocsi and ocsi-ext-revproxy, installed into a fresh
virtualenv, and a configuration naming the extension proxies a request."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_wheels_install_into_a_fresh_virtualenv_and_proxy(tmp_path, backend, ocsi_process):
    # build from copies: setuptools leaves build/ and *.egg-info beside the sources
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "core", src / "ocsi" / "core", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / "ocsi" / name)
    shutil.copytree(ROOT / "plugins" / "revproxy", src / "revproxy", ignore=ignore)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--no-build-isolation", "-w", str(wheels), str(src / "ocsi"),
                            str(src / "revproxy")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    names = sorted(p.name.split("-")[0] for p in wheels.glob("*.whl"))
    assert names == ["ocsi", "ocsi_ext_revproxy"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                              "--no-deps", "--no-index", "--find-links", str(wheels), "ocsi-ext-revproxy",
                              "ocsi"], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    # then the libraries ocsi depends on, from this environment as a plain path entry: its
    # editable installs (ocsi from the source tree) are not activated there, and pip did not
    # see them when it installed the wheels
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run([str(python), "-c", "import ocsi, ocsi_ext_revproxy; "
                            "print(ocsi.__file__); print(ocsi_ext_revproxy.__file__)"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert all(w.startswith(purelib) for w in where), where  # the wheels, not the source tree
    b = backend()
    srv = ocsi_process('<extension findlib-package="ocsigenserver.ext.revproxy"/>'
                       f'<host><revproxy suburl="(.*)" dest="{b.url}/\\1"/></host>', python=str(python))
    r = srv.get("/echo/from-wheels")
    assert r.status == 200 and json.loads(r.body)["target"] == "/echo/from-wheels"
    assert srv.stop() == 0
