"""``ocsi new-extension``: what it writes installs with ``pip install -e`` into a fresh
virtualenv, passes its own tests there, and serves when a configuration names it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ocsi.scaffold import new_extension


def _fresh_venv(tmp_path: Path) -> Path:
    """A virtualenv that sees this one's packages (ocsi, pytest…) but installs into its own."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "ocsi-dev.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_the_template_passes_its_own_tests_once_installed(tmp_path, ocsi_process):
    out = subprocess.run([sys.executable, "-m", "ocsi", "new-extension", "hello-world",
                          str(tmp_path / "ext")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert " -m pip install -e " in out.stdout and " -m pytest " in out.stdout  # runnable as printed
    python = _fresh_venv(tmp_path)
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                          "--no-deps", "--no-build-isolation", "-e", str(tmp_path / "ext")],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    # not importable here: it was installed into the other virtualenv only
    assert subprocess.run([sys.executable, "-c", "import ocsi_ext_hello_world"],
                          capture_output=True).returncode != 0
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=tmp_path / "ext", capture_output=True, text=True, timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "7 passed" in tests.stdout
    # and ocsi, run by that interpreter, finds it by distribution name
    srv = ocsi_process('<extension findlib-package="ocsi-ext-hello-world"/>'
                       '<host><hello-world text="from a third party"/></host>', python=str(python))
    r = srv.get("/")
    assert (r.status, r.body) == (200, b"from a third party")
    assert srv.stop() == 0


def test_listed_by_ocsi_extensions_once_installed(tmp_path):
    new_extension("listed", tmp_path / "ext")
    python = _fresh_venv(tmp_path)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-build-isolation", "-e", str(tmp_path / "ext")],
                   check=True, capture_output=True)
    out = subprocess.run([str(python), "-m", "ocsi", "extensions"], capture_output=True, text=True)
    assert "ocsi-ext-listed 0.1.0" in out.stdout
    assert "elements: <listed>" in out.stdout
    assert "<listed text>  answers every request with a text" in out.stdout


@pytest.mark.parametrize("name", ["Hello", "9lives", "a--b", "with space", "x/y", ""])
def test_bad_names_are_refused(tmp_path, name):
    out = subprocess.run([sys.executable, "-m", "ocsi", "new-extension", name, str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "is not an extension name" in out.stderr
    assert not (tmp_path / "x").exists()


def test_a_directory_in_use_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    out = subprocess.run([sys.executable, "-m", "ocsi", "new-extension", "ok", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "exists and is not empty" in out.stderr
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["keep.txt"]
