"""Configuration regular expressions (RE2, ``.`` matching a newline) and ``*`` wildcards."""

from __future__ import annotations

import re

import pytest
from ocsi import GroupTemplate, ValueFormatError, Wildcard, parse_regex


@pytest.mark.parametrize("subject", ["admin/secret\n", "admin\n/secret", "admin/\n", "admin\r\n/x",
                                     "admin/\x00", "admin/\udcff", "admin/é😀"])
def test_dot_matches_any_character_of_a_path(subject):
    assert parse_regex("admin.*").fullmatch(subject) is not None
    if subject.startswith("admin/"):
        assert parse_regex("admin/[^/]*").fullmatch(subject) is not None


def test_match_search_and_groups():
    rx = parse_regex("img/(.*)/([a-z]+)?(x)?")
    m = rx.fullmatch("img/2024/é/photo")
    assert m is not None and m.group(0) == "img/2024/é/photo"
    assert m.groups() == ("2024/é", "photo", None)
    assert rx.groups == 3 and rx.pattern == "img/(.*)/([a-z]+)?(x)?"
    assert parse_regex("ab").match("abc") is not None and parse_regex("ab").fullmatch("abc") is None
    assert parse_regex("b").search("abc") is not None and parse_regex("b").match("abc") is None
    assert parse_regex("A", ignore_case=True).fullmatch("a") is not None


@pytest.mark.parametrize("pattern, dest, subject", [
    (r"http://backend:8080/(.*)", r"https://example.org/\1", "http://backend:8080/login?next=/"),
    (r"(a)(b)?", r"[\1\2]", "xabyaz"),
    (r"x*", "-", "abxd"),
    (r"", "-", "aé😀b"),
    (r"é", r"\0e", "aébé"),
    (r"(\w+)@(\w+)", r"\2 at \1", "mail bob@example and al@host"),
])
def test_sub_gives_what_re_sub_gives(pattern, dest, subject):
    ours = parse_regex(pattern)
    theirs = re.compile(pattern)
    t = GroupTemplate(dest, ours.groups)
    assert ours.sub(t, subject) == theirs.sub(t, subject)  # type: ignore[arg-type]


@pytest.mark.parametrize("pattern, message", [
    ("(", "missing )"),
    ("(a)\\1", "back-references"),
    ("x(?=y)", "look-around"),
    ("(?<!a)b", "look-around"),
    ("a++", "possessive"),
    ("a\\Z", "\\z"),
    ("a{1001}", "a repetition counts at most 1000"),
    ("a\\Cb", "\\C (any byte) is not allowed"),
])
def test_what_the_engine_cannot_do_is_a_clear_error(pattern, message):
    with pytest.raises(ValueFormatError) as e:
        parse_regex(pattern)
    assert message in str(e.value) and repr(pattern) in str(e.value)


def test_a_pattern_too_large_for_its_memory_is_refused():
    with pytest.raises(ValueFormatError, match="pattern too large"):
        parse_regex("(?:.{0,1000})" * 50)


def test_pathological_patterns_are_matched_in_linear_time():
    # each would take a backtracking matcher hours; these return at once, without a deadline
    assert parse_regex("([a-z0-9]+)*-x").fullmatch("a" * 5000) is None
    assert parse_regex("a{0,25}" * 8 + "b").fullmatch("a" * 5000) is None
    assert parse_regex("(x+x+)+y").fullmatch("x" * 5000) is None
    assert not parse_regex("([a-z0-9]+)*-x").matches("a" * 5000)


def test_yes_no_questions_need_no_groups():
    rx = parse_regex("(a)(b)?")
    assert rx.matches("ab") and rx.matches("a") and not rx.matches("abc")
    assert rx.matches("abc", whole=False) and not rx.matches("xab", whole=False)
    assert parse_regex("admin.*").matches("admin\n") and parse_regex("x").matches("x")


@pytest.mark.parametrize("pattern", ["(.*)\\.html", "[^/]*", "a{1,3}b", "(a|b)*", "~([^/]*)(.*)",
                                     "img/.*\\.(png|jpg)", "(a+)+", "(ab|cd)*", ".*a.*b.*",
                                     "a{0,12}" * 8 + "b"])
def test_bounded_regexes_accepted(pattern):
    from ocsi import check_bounded_regex

    check_bounded_regex(pattern)


@pytest.mark.parametrize("pattern, message", [
    ("(a)\\1", "back-references"),
    ("x(?=y)", "look-around"),
    ("a" * 300, "longer than 256"),
    ("[^/]{0,100}", "RE2 instructions"),
    ("a{0,25}" * 8 + "b", "RE2 instructions"),
    ("(", "bad regular expression"),
])
def test_unbounded_regexes_refused(pattern, message):
    from ocsi import check_bounded_regex

    with pytest.raises(ValueFormatError, match=re.escape(message)):
        check_bounded_regex(pattern)


@pytest.mark.parametrize("pattern, separator, yes, no", [
    ("https://*.example.org", "/", ["https://a.example.org", "https://a.b.example.org",
                                    "https://.example.org"],
     ["https://example.org", "https://a/b.example.org", "http://a.example.org",
      "https://a.example.org.evil"]),
    ("https://*.*.example.org", "/", ["https://a.b.example.org", "https://a.b.c.example.org"],
     ["https://a.example.org", "https://" + "a." * 10000 + "example.com"]),
    ("*.example.*", "", ["www.example.org", "a.b.example.co.uk"], ["example.org", "www.example"]),
    ("a*b*c", "", ["abc", "aXbYc", "abbc", "acbc"], ["ab", "acb", "ac"]),
    ("*", "", ["", "anything"], []),
    ("x", "", ["x"], ["xx", ""]),
])
def test_wildcards(pattern, separator, yes, no):
    w = Wildcard(pattern, separator)
    assert all(w.matches(t) for t in yes)
    assert not any(w.matches(t) for t in no)


def test_many_stars_on_a_long_subject_are_linear():
    w = Wildcard("https://" + "*" * 16 + ".example.org", "/")
    assert not w.matches("https://" + "a" * 40)
    assert not w.matches("https://" + "a" * 100_000)
    assert w.matches("https://" + "a" * 100_000 + ".example.org")


PATTERNS = ["admin.*", "admin/(.*)", ".*curl.*", "(?i)AdMin.*", "a|b", "", "[0-9]+", "x{3,5}y",
            "40.", "é.*", "(?i)é", "a*", "(ab)*c", "[^/]*/x", ".", "\\.ht.*", "a$", "b?a+", "zz|a"]
SUBJECTS = ["", "a", "b", "admin", "Admin/x", "admin\n", "adm", "adminé", "images/a.png", "curl/8",
            "x curl y", "xxxxy", "xxy", "400", "40", "é", "É", "éa", "abab c", "ababc", "q/x", "/x",
            ".htaccess", "a.ht", "ba", "aaa", "zz", "\udcff", "😀", "\x00a"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_yes_no_answers_are_those_of_a_full_match(pattern):
    # matches() may answer "no" from RE2's bounds on a match without running it: never wrongly
    ours = parse_regex(pattern)
    theirs = re.compile(pattern, re.DOTALL)
    for s in SUBJECTS:
        assert ours.matches(s) == (theirs.fullmatch(s) is not None), (pattern, s)
        assert ours.matches(s, whole=False) == (theirs.match(s) is not None), (pattern, s)
        assert (ours.fullmatch(s) is not None) == ours.matches(s), (pattern, s)


def test_offsets_are_in_characters():
    m = parse_regex("(b+)(x)?").search("éaébbc")
    assert m is not None and (m.start(), m.end(), m.span(1)) == (3, 5, (3, 5))
    assert m.start(2) == -1 and m.string[m.start():m.end()] == m.group()
    ascii_m = parse_regex("c").search("abc")
    assert ascii_m is not None and ascii_m.span() == (2, 3)
