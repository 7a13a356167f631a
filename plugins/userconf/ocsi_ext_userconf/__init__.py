"""ocsi-ext-userconf: per-user configuration files (Ocsigen's userconf) for ocsi. See README.md.

``<userconf regexp="R" conf="F" url="U" prefix="P" localpath="D"/>``: a request whose sub-path
matches ``R`` is served by the configuration in file ``F`` (typically in the user's home), as a
site at ``P`` below the current one, with the URL ``U``, its files confined to ``D``. The file
is read when it changes, not on every request, in a worker thread and only when it is a
regular file of its own of at most ``maxsize`` bytes (:mod:`.userfile`). What a user may write there is limited (no
proxy, no rewriting, no file outside ``D``, no regular expression that could hang the server),
and an error in it is that user's 500 and one error line, never the server's problem.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import re
from typing import TYPE_CHECKING, Any

import ocsi
from ocsi import (
    DO_NOTHING,
    ConfigError,
    Element,
    Found,
    GroupTemplate,
    ParseContext,
    Regex,
    Step,
    StopSite,
    SubChain,
    ValueFormatError,
    check_bounded_regex,
    parse_regex,
    parse_size,
    parse_xml,
)

from .userfile import DEFAULT_MAX_SIZE, UserFileError, read_user_file

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

__all__ = ["SAFE_ELEMENTS", "UserConf"]

log = logging.getLogger("ocsi.ext.userconf")

#: What a user's file may contain, at any depth: serving files, their presentation, access
#: rules, redirections, headers. Not there: <revproxy> (a user could make the server request
#: anything), <rewrite> (it restarts from the first host, outside the user's site),
#: <userconf>, <htpasswd> (it names a file), accesscontrol's <allow-forward-*> (trusting
#: forwarded addresses is the administrator's decision).
SAFE_ELEMENTS = frozenset({
    "site", "static",
    "followsymlinks", "listdirs", "defaultindex", "index", "hidefile", "forbidfile", "extension",
    "file", "regexp", "charset", "contenttype",
    "redirect", "outputfilter", "sethttpcode", "cors", "deflate", "type",
    "if", "then", "else", "and", "or", "not", "ip", "port", "ssl", "header", "method", "protocol",
    "path", "forbidden", "notfound", "nextsite", "nexthost", "stop", "iffound", "ifnotfound",
    "authbasic", "plain",
})
#: Attributes that hold regular expressions, checked with :func:`ocsi.check_bounded_regex`.
REGEX_ATTRIBUTES = ("regexp", "suburl", "fullurl", "code")

_USER = re.compile(r"\$u\(([^)]*)\)")


def expand_users(text: str) -> str | None:
    """``$u(name)`` → that user's home directory; ``None`` for an unknown user."""
    missing = False

    def home(m: re.Match[str]) -> str:
        nonlocal missing
        try:
            return pwd.getpwnam(m.group(1)).pw_dir
        except KeyError:
            missing = True
            return ""

    out = _USER.sub(home, text)
    return None if missing else out


def check_user_document(root: Element) -> None:
    """ConfigError (located) for what a user may not write."""
    def walk(el: Element) -> None:
        if el.tag not in SAFE_ELEMENTS:
            raise el.error(f"<{el.tag}> is not allowed in a user configuration",
                           hint="allowed: " + ", ".join(sorted(SAFE_ELEMENTS)))
        for name in REGEX_ATTRIBUTES:
            value = el.get(name)
            if value is not None:
                try:
                    check_bounded_regex(value)
                except ValueFormatError as exc:
                    raise el.error(f"attribute {name} of <{el.tag}>: {exc}") from None
        for child in el.children:
            walk(child)

    walk(root)


class _Parsed:
    __slots__ = ("stamp", "steps", "error")

    def __init__(self, stamp: tuple[int, int, int, int], steps: list[Step] | None,
                 error: str | None) -> None:
        self.stamp = stamp
        self.steps = steps
        self.error = error


class UserConf(Step):
    def __init__(self, regex: Regex, conf: GroupTemplate, url: GroupTemplate,
                 prefix: GroupTemplate, localpath: GroupTemplate, ctx: ParseContext,
                 where: str = "?", max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.regex = regex
        self.conf = conf
        self.url = url
        self.prefix = prefix
        self.localpath = localpath
        self.ctx = ctx
        self.where = where
        self.max_size = max_size
        self._files: dict[str, _Parsed] = {}
        self._pending: dict[str, tuple[tuple[int, int, int, int], asyncio.Future[_Parsed]]] = {}
        self._retired: list[Step] = []

    async def cleanup(self) -> None:
        if self._pending:  # reads under way end first (bounded: a regular file, maxsize bytes)
            await asyncio.gather(*(t for _, t in self._pending.values()), return_exceptions=True)
        steps = self._retired + [s for p in self._files.values() for s in (p.steps or ())]
        self._retired, self._files = [], {}
        for step in steps:
            for s in _walk(step):
                try:
                    await s.cleanup()
                except Exception:  # noqa: BLE001 - cleanup must go on
                    log.exception("cleanup of a user configuration step failed")

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        m = self.regex.fullmatch(request.sub_path_str)
        if m is None:
            return DO_NOTHING
        conf = expand_users(self.conf.expand(m))
        localpath = expand_users(self.localpath.expand(m))
        if conf is None or localpath is None:
            return DO_NOTHING  # no such user
        prefix = [s for s in self.prefix.expand(m).split("/") if s]
        site_path = request.site_path + tuple(prefix)
        parsed = await self._load(conf, localpath, site_path, request)
        if parsed is None:
            return DO_NOTHING  # no (readable) file: not concerned
        if parsed.steps is None:
            return StopSite(500)
        url = self.url.expand(m)
        target = "/" + "/".join([*request.raw_segments[:request.depth], *prefix,
                                 url.lstrip("/")])
        try:
            inner = request.with_target(target)
        except ValueError:
            return StopSite(404)
        inner.depth = request.depth + len(prefix)
        inner.site_path = site_path
        return SubChain(parsed.steps, request=inner)

    async def _load(self, conf: str, localpath: str, site_path: tuple[str, ...],
                    request: Request) -> _Parsed | None:
        try:
            st = os.stat(conf)
        except OSError:
            return None
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        known = self._files.get(conf)
        if known is not None and known.stamp == stamp:
            return known
        pending = self._pending.get(conf)
        if pending is None or pending[0] != stamp:
            # one read per change, however many requests arrive while it runs (one error
            # line for a bad file); shielded, so a client that leaves does not cancel it
            task = asyncio.ensure_future(self._parse(conf, localpath, site_path, stamp, request))
            pending = self._pending[conf] = (stamp, task)
            task.add_done_callback(lambda t: self._loaded(conf, t))
        return await asyncio.shield(pending[1])

    def _loaded(self, conf: str, task: asyncio.Future[_Parsed]) -> None:
        pending = self._pending.get(conf)
        if pending is not None and pending[1] is task:
            del self._pending[conf]
        if task.cancelled() or task.exception() is not None:
            return
        known = self._files.get(conf)
        if known is not None and known.steps:
            self._retired += known.steps  # requests in flight may still use them
        self._files[conf] = task.result()

    async def _parse(self, conf: str, localpath: str, site_path: tuple[str, ...],
                     stamp: tuple[int, int, int, int], request: Request) -> _Parsed:
        try:
            data = await asyncio.to_thread(read_user_file, conf, self.max_size)
            root = parse_xml(data, conf)  # the configuration's own reader: safe, located
            check_user_document(root)
            steps = self.ctx.for_user(os.path.normpath(localpath), site_path).parse_steps([root])
            for step in steps:
                for s in _walk(step):
                    await s.provision()
        except UserFileError as exc:
            log.error("Refused userconf configuration file for url %s: %s", request.target, exc)
            return _Parsed(stamp, None, str(exc))
        except (ConfigError, OSError) as exc:
            kind = ("Unauthorized option" if "not allowed" in str(exc) or "refers" in str(exc)
                    else "Syntax error")
            log.error("%s in userconf configuration file for url %s: %s", kind, request.target, exc)
            return _Parsed(stamp, None, str(exc))
        log.info("user configuration %s read: %d step(s)", conf, len(steps))
        return _Parsed(stamp, steps, None)


def _walk(step: Step) -> list[Step]:
    out = [step]
    for child in step.children():
        out += _walk(child)
    return out


@ocsi.documents(ocsi.ElementDoc(
    "userconf", r"lets users configure a site from a file of theirs, confined to their directory; "
    r"in conf, url, prefix and localpath \1…\9 are the groups of regexp and $u(name) a home directory",
    attributes=[
        ocsi.AttributeDoc("regexp", "anchored pattern on the decoded sub-path", required=True),
        ocsi.AttributeDoc("conf", "the user's configuration file", required=True),
        ocsi.AttributeDoc("url", "the URL the user's configuration sees", required=True),
        ocsi.AttributeDoc("prefix", "where the user's site is, below the current one (~bob)",
                          required=True),
        ocsi.AttributeDoc("localpath", "the directory the user's files must stay in", required=True),
        ocsi.AttributeDoc("maxsize", "the largest user's file read (a size, not infinity)",
                          "`64KiB`"),
    ]))
def parse_userconf(el: Element, ctx: ParseContext) -> Step:
    names = ["regexp", "conf", "url", "prefix", "localpath"]
    el.check(attributes=[*names, "maxsize"])
    default: int | None = DEFAULT_MAX_SIZE
    max_size = el.attr_value("maxsize", parse_size, default)
    if max_size is None:
        raise el.error("maxsize must be a size, not unlimited", hint='e.g. maxsize="64KiB"')
    missing = [n for n in names if not el.has(n)]
    if missing:
        raise el.error("Missing attributes for <userconf>", hint="missing: " + ", ".join(missing))
    try:
        regex = parse_regex(el.require("regexp"))
    except ValueFormatError as exc:
        raise el.error(str(exc)) from None
    try:
        templates: dict[str, Any] = {n: GroupTemplate(el.require(n), regex.groups)
                                     for n in names[1:]}
    except ValueError as exc:
        raise el.error(str(exc)) from None
    return UserConf(regex, templates["conf"], templates["url"], templates["prefix"],
                    templates["localpath"], ctx, el.where, max_size)


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"userconf": parse_userconf}
