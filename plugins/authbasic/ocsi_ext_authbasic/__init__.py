"""ocsi-ext-authbasic: HTTP Basic authentication (Ocsigen's authbasic) for ocsi. See README.md.

``<authbasic realm="R">`` with one method inside: ``<plain login password/>`` (Ocsigen's),
``<htpasswd file/>`` (hashed passwords), or one another extension registered with
:func:`register_method`. From Python::

    from ocsi_ext_authbasic import authbasic, Htpasswd
    steps = [site("admin", authbasic("Admin", Htpasswd("/etc/ocsi/admin.htpasswd")), static(...))]
"""

from __future__ import annotations

import ocsi

from .credentials import challenge, parse_basic
from .methods import METHODS, Htpasswd, Method, Plain, register_method, verify_hash
from .step import AuthBasic, Limiter

__all__ = ["AuthBasic", "Htpasswd", "Limiter", "Method", "Plain", "authbasic", "challenge",
           "parse_basic", "register_method", "verify_hash"]


def authbasic(realm: str, method: Method) -> AuthBasic:
    return AuthBasic(realm, method)


@ocsi.documents(ocsi.ElementDoc(
    "authbasic", "asks for a login and password (401 with WWW-Authenticate) before the steps after it; "
    "exactly one method inside",
    attributes=[ocsi.AttributeDoc("realm", "the realm the browser shows", required=True)],
    children=[
        ocsi.ElementDoc("plain", "one login, its password written in the configuration", attributes=[
            ocsi.AttributeDoc("login", "the user name", required=True),
            ocsi.AttributeDoc("password", "the password, in clear", required=True)]),
        ocsi.ElementDoc("htpasswd", "users and hashed passwords (bcrypt, argon2, SHA-crypt, apr1) "
                        "from a file read again when it changes; make lines with `ocsi hash-password`",
                        attributes=[ocsi.AttributeDoc("file", "the htpasswd file", required=True)]),
    ]))
def parse_authbasic(el: ocsi.Element, ctx: ocsi.ParseContext) -> ocsi.Step:
    el.check(attributes=["realm"], children=None)
    realm = el.require("realm", hint='e.g. <authbasic realm="Admin"><plain login="L" password="P"/></authbasic>')
    if len(el.children) != 1:
        raise el.error("Bad syntax for tag authbasic",
                       hint="one method inside: <plain login password/> or <htpasswd file/>")
    child = el.children[0]
    parser = METHODS.get(child.tag)
    if parser is None:
        raise child.error(f"unknown authentication method <{child.tag}>",
                          hint="known: " + ", ".join(f"<{t}>" for t in sorted(METHODS)))
    return AuthBasic(realm, parser(child, ctx))


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"authbasic": parse_authbasic}
