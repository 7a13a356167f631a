"""``ocsi cert status [-c FILE]``: each ACME name set of a configuration, its certificate's
issuer and expiry, the next renewal, the last error.

It reads the configuration and the storage directory only (no running server needed, nothing
asked of the CA). The exit status is 1 when a host has no usable certificate, so that a
monitoring check can run it.

Private: not part of the extension API.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

from .._config.errors import ConfigError
from .store import AcmeStore


def _when(ts: datetime.datetime, now: datetime.datetime) -> str:
    delta = ts - now
    days = delta.total_seconds() / 86400
    ago = f"in {days:.1f} days" if delta.total_seconds() >= 0 else f"{-days:.1f} days ago"
    return f"{ts:%Y-%m-%d %H:%M} UTC ({ago})"


def main(argv: list[str]) -> int:
    from ..cli import DEFAULT_CONFIG
    from .._extensions.loader import new_plugin_manager
    from ..runtime import build_configuration

    p = argparse.ArgumentParser(prog="ocsi cert status",
                                description="The certificates obtained from the ACME CA for "
                                            'the <host acme="true"> of a configuration.')
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")
    ns = p.parse_args(argv)
    try:
        settings = build_configuration(new_plugin_manager(), ns.config).settings
    except ConfigError as exc:
        print(f"ocsi: {exc}", file=sys.stderr)
        return exc.exit_code
    if settings.acme is None or not settings.acme_hosts:
        print(f'{ns.config}: no <host acme="true">: no automatic certificate')
        return 0
    store = AcmeStore(settings.acme.storage_dir(settings.datadir))
    now = datetime.datetime.now(datetime.timezone.utc)
    missing = 0
    print(f"CA: {settings.acme.directory}\nstorage: {os.path.abspath(store.root)}")
    for host in settings.acme_hosts:
        stored = store.certificate(host.names)
        state = store.state(host.names)
        print(f"\n{' '.join(host.names)}  ({host.where})")
        if stored is None or stored.not_after <= now:
            missing += 1
            print("  certificate: none yet" if stored is None else
                  f"  certificate: EXPIRED {_when(stored.not_after, now)}")
        if stored is not None:
            print(f"  issuer: {stored.issuer}")
            print(f"  expires: {_when(stored.not_after, now)}")
        window = state.extra.get("renewal_window")
        if isinstance(window, list) and len(window) == 2:
            start, end = (datetime.datetime.fromtimestamp(t, datetime.timezone.utc) for t in window)
            print(f"  renewal window (ARI): {start:%Y-%m-%d %H:%M} to {_when(end, now)}")
        elif state.extra.get("renewal_info") == "not offered":
            print("  renewal window: the CA offers no ARI, a third of the lifetime before expiry")
        elif str(state.extra.get("renewal_info", "")).startswith("unavailable"):
            print(f"  renewal window: {state.extra['renewal_info']} (a third of the lifetime "
                  "before expiry meanwhile)")
        nxt = state.extra.get("next_attempt")
        if nxt is not None:
            print(f"  next renewal: {_when(datetime.datetime.fromtimestamp(nxt, datetime.timezone.utc), now)}")
        if state.last_attempt is not None:
            last = datetime.datetime.fromtimestamp(state.last_attempt, datetime.timezone.utc)
            print(f"  last attempt: {_when(last, now)}")
        print(f"  last error: {state.last_error or 'none'}"
              + (f" ({state.failures} failure(s) in a row)" if state.failures else ""))
    return 1 if missing else 0
