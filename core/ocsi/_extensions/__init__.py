"""Private: not part of the extension API."""
