"""No module of the core is over 500 lines: past that a module holds more than one concept, and
is split along a seam (one concept per file, named after what it holds) before it grows more."""

from __future__ import annotations

from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core" / "ocsi"
MAX_LINES = 500


def test_no_core_module_is_over_500_lines() -> None:
    sizes = {path.relative_to(CORE.parent).as_posix():
             len(path.read_text(encoding="utf-8").splitlines())
             for path in sorted(CORE.rglob("*.py"))}
    assert len(sizes) > 50  # the walk found the core
    over = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them along a seam): {over}"
