import pytest

from ocsi._config.values import ValueFormatError, parse_duration, parse_int, parse_size


@pytest.mark.parametrize("text,expected", [
    ("2MB", 2_000_000), ("2M", 2 * 1024**2), ("2MiB", 2 * 1024**2), ("2Mo", 2_000_000),
    ("10k", 10240), ("10kB", 10_000), ("10KB", 10_000), ("10KiB", 10240), ("10 MB", 10_000_000),
    ("1G", 1024**3), ("1GB", 10**9), ("1TiB", 1024**4), ("1Tio", 1024**4), ("123", 123),
    ("123B", 123), ("123o", 123), ("infinity", None), ("", None), (" 5 ", 5),
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["abc", "10XB", "-5", "1.5M", "10 M B"])
def test_bad_sizes(text):
    with pytest.raises(ValueFormatError):
        parse_size(text)


@pytest.mark.parametrize("text,expected", [("10", 10), ("0x10", 16), ("0o10", 8), ("0b11", 3),
                                           ("1_000", 1000), ("-3", -3), ("+4", 4), ("010", 10)])
def test_ints(text, expected):
    assert parse_int(text) == expected


def test_bad_int():
    with pytest.raises(ValueFormatError):
        parse_int("ten")


@pytest.mark.parametrize("text,expected", [("30", 30.0), ("2.5", 2.5), ("500ms", 0.5),
                                           ("5min", 300.0), ("2h", 7200.0), ("3s", 3.0)])
def test_durations(text, expected):
    assert parse_duration(text) == expected


def test_notimeout():
    assert parse_duration("notimeout", allow_none=True) is None
    with pytest.raises(ValueFormatError):
        parse_duration("notimeout")
