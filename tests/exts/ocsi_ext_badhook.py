"""Implements a hook that does not exist: loading must fail by name."""
import ocsi


@ocsi.hookimpl
def ocsi_no_such_hook():
    return None
