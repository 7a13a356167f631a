"""Checks every backend must pass, for its own tests (the built-in ones and a third party's).

``await check_api()`` exercises every call of the API on the current backend; ``COUNTER`` is
the source of a small site extension (``<counter/>``: ``/hit`` is an atomic +1, ``/get?KEY``,
``/put?KEY=VALUE``) to write with ``ocsi.testing.write_extension`` for tests over sockets.
"""

from __future__ import annotations

from typing import Any

from .selection import current
from .tables import ref, table

COUNTER = '''
import json
import ocsi
from ocsi_ext_ocsipersist import table

hits = table("hits")


class Counter(ocsi.Step):
    async def handle(self, request, state):
        what = request.sub_path_str
        if what == "hit":
            n = await hits.update("n", lambda v: v + 1, default=0)
            return ocsi.Serve(ocsi.Response(200, [], str(n).encode()))
        if what == "get":
            value = await hits.get(request.query)
            return ocsi.Serve(ocsi.Response(200, [], json.dumps(value).encode()))
        if what == "put":
            key, _, value = (request.query or "").partition("=")
            await hits.set(key, value)
            return ocsi.Serve(ocsi.Response(204, [], b""))
        return ocsi.DO_NOTHING


@ocsi.hookimpl
def ocsi_elements():
    return {"counter": lambda el, ctx: Counter()}
'''


async def check_api() -> None:
    """Every call, on the current backend; raises AssertionError at the first difference."""
    t = table("conformance.things")
    await t.clear()
    assert await t.get("a") is None and await t.get("a", default=7) == 7
    await t.set("a", {"x": [1, "é"]})
    assert await t.get("a") == {"x": [1, "é"]}
    assert await t.update("n", lambda v: v + 5, default=10) == 15
    assert await t.update("n", lambda v: v * 2) == 30
    assert await t.length() == 2
    await t.delete("a")
    assert await t.get("a") is None and await t.length() == 1

    def boom(v: Any) -> Any:
        raise ValueError("no")
    try:
        await t.update("n", boom)
    except ValueError:
        pass
    else:
        raise AssertionError("a failing update must raise")
    assert await t.get("n") == 30  # unchanged, and the row is not left locked
    assert await t.update("n", lambda v: v + 1) == 31
    many = table("conformance.many")
    await many.clear()
    for i in range(1200):  # more than one page
        await many.set(f"k{i:05d}", i)
    await many.set("K-upper", -1)  # byte order: upper case first
    got = [(k, v) async for k, v in many.items()]
    assert got == [("K-upper", -1)] + [(f"k{i:05d}", i) for i in range(1200)], got[:3]
    assert [k async for k in many.keys()][:2] == ["K-upper", "k00000"]
    assert (await current().tables())["conformance.many"] == 1201
    await many.clear()
    assert await many.length() == 0 and await t.length() == 1
    hello = ref("conformance.hello", default=0)
    await table("ocsipersist.refs").delete("conformance.hello")
    assert await hello.get() == 0
    await hello.set(41)
    assert await hello.update(lambda v: v + 1) == 42
    assert await ref("conformance.hello").get() == 42
    try:
        await t.set("bad", object())
    except TypeError:
        pass
    else:
        raise AssertionError("values are JSON only")
