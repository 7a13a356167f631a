"""Part of a dependency cycle (never loaded)."""
