"""Depends on an extension that is not installed (see its METADATA)."""
