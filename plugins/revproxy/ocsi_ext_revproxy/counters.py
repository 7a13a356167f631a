"""revproxy's counters in the process's registry (``ocsi.STATS``), for ocsi-ext-metrics.

Labelled by destination as written in the configuration (``dest`` or an ``<upstream>``
template, ``\\1`` included), never by the URL a request expanded it to. Series are resolved
when a ``<revproxy>`` is built, so forwarding pays an attribute increment and an ``observe``.
Health is looked at when a scrape asks: 1 while the balancer has the destination up.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import ocsi

if TYPE_CHECKING:
    from .step import RevProxy

__all__ = ["ANSWERS", "CLASSES", "ERRORS", "LATENCY", "UP", "live"]

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
ANSWERS = ocsi.STATS.counter("ocsi_proxy_responses_total", "revproxy's answers from a "
                             "destination, by status class", ("destination", "code"))
ERRORS = ocsi.STATS.counter("ocsi_proxy_errors_total", "revproxy's failures to get an answer "
                            "from a destination (connect, timeout, no response)",
                            ("destination",))
LATENCY = ocsi.STATS.histogram("ocsi_proxy_response_seconds", "Time from asking a destination "
                               "to its response head", ("destination",))
UP = ocsi.STATS.gauge("ocsi_proxy_destination_up", "1 while the passive health checks find "
                      "the destination up, 0 while it is marked down", ("destination",),
                      merge="min")

#: The steps of the live configurations (a retired one goes with its runtime).
live: weakref.WeakSet[RevProxy] = weakref.WeakSet()


def _health() -> dict[str, dict[tuple[str, ...], float]]:
    up: dict[tuple[str, ...], float] = {}
    for step in list(live):
        for index, template in enumerate(step.rule.dests):
            key = (template.text,)
            state = 0.0 if step.balancer.is_down(index) else 1.0
            up[key] = min(up.get(key, 1.0), state)
    return {UP.name: up}


ocsi.STATS.add_sampler(_health)
