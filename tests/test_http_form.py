"""Request parameters as etcd (Go's net/http) reads them, and the request-to-command
mapping of etcd's v2 applier; no sockets here."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.http.form import (
    FormError,
    NotUTF8,
    is_form_type,
    parse_bool,
    parse_query,
    parse_uint,
    unescape,
)
from store.http.keys import KeyRequest, parse_key_request, to_command
from store.http.request import Request
from store.v2.errors import EtcdError


def form(raw: bytes) -> tuple[dict[str, list[str]], str | None]:
    f: dict[str, list[str]] = {}
    return f, parse_query(raw, f)


def test_parse_query_follows_go() -> None:
    assert form(b"a=1&b=2&a=3") == ({"a": ["1", "3"], "b": ["2"]}, None)
    assert form(b"&&=x&novalue&k=") == ({"": ["x"], "novalue": [""], "k": [""]}, None)
    assert form(b"v=a+b%20c%2B") == ({"v": ["a b c+"]}, None)
    # the first error is reported; the good pairs are still kept
    assert form(b"a=1;b=2&c=3&d=%zz&e=%") == (
        {"c": ["3"]}, "invalid semicolon separator in query")
    assert form(b"d=%zzz&e=4") == ({"e": ["4"]}, 'invalid URL escape "%zz"')
    assert form(b"d=%4") == ({}, 'invalid URL escape "%4"')
    assert form(b"d=%\xff") == ({}, 'invalid URL escape "%\\xff"')


def test_unescape_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(NotUTF8):
        unescape(b"%ff")
    with pytest.raises(FormError):
        unescape(b"%g0")
    assert unescape(b"a+b", plus=False) == "a+b"  # a path keeps its plus signs
    assert unescape(b"%5C%5Cx41%25") == "\\\\x41%"


@given(st.text())
def test_unescape_inverts_form_encoding(s: str) -> None:
    assert unescape(urllib.parse.quote_plus(s).encode()) == s
    assert unescape(urllib.parse.quote(s, safe="/\\+").encode(), plus=False) == s


def test_bools_and_uints_are_strconv() -> None:
    for t in ("1", "t", "T", "TRUE", "true", "True"):
        assert parse_bool(t) is True
    for f in ("0", "f", "F", "FALSE", "false", "False"):
        assert parse_bool(f) is False
    for bad in ("", "yes", "tRue", " true"):
        with pytest.raises(ValueError):
            parse_bool(bad)
    assert parse_uint("0") == 0 and parse_uint("18446744073709551615") == 2**64 - 1
    for bad in ("", "-1", "+1", " 1", "1_000", "١٢", "18446744073709551616", "0x10"):
        with pytest.raises(ValueError):
            parse_uint(bad)


def test_form_content_type() -> None:
    assert is_form_type(b"application/x-www-form-urlencoded")
    assert is_form_type(b"Application/X-WWW-Form-Urlencoded ; charset=utf-8")
    assert not is_form_type(b"")
    assert not is_form_type(b"multipart/form-data; boundary=x")


def request(method: str, query: str = "", body: str = "") -> Request:
    ctype = b"application/x-www-form-urlencoded" if body else b""
    return Request(method, "/v2/keys/k", query.encode(), body.encode(), ctype, "1.1", b"")


def parsed(method: str, query: str = "", body: str = "") -> KeyRequest:
    return parse_key_request(request(method, query, body), "/k")


def test_body_values_come_before_query_values() -> None:
    assert parsed("PUT", "value=q", "value=b").value == "b"
    assert parsed("POST", "value=q", "value=b").value == "b"
    assert parsed("DELETE", "prevValue=q", "prevValue=b").prev_value == "q"  # body not read
    assert parsed("PUT", "prevValue=", "prevValue=b").prev_value == "b"  # present, not empty


def test_checks_run_in_etcds_order() -> None:
    with pytest.raises(EtcdError) as e:
        parsed("PUT", "recursive=x&prevIndex=x&ttl=x")
    assert e.value.code == 203  # prevIndex is checked first
    with pytest.raises(EtcdError) as e:
        parsed("PUT", "ttl=x&prevExist=x")
    assert e.value.code == 202
    with pytest.raises(EtcdError) as e:
        parsed("PUT", "wait=true&prevValue=")
    assert (e.value.code, e.value.cause) == (209, '"wait" can only be used with GET requests')
    assert parsed("PUT", "ttl=").ttl is None  # an empty ttl is no ttl


@pytest.mark.parametrize(
    ("method", "query", "op"),
    [
        ("PUT", "", "set"),
        ("PUT", "prevIndex=0", "set"),
        ("PUT", "prevValue=a", "cas"),
        ("PUT", "prevIndex=3", "cas"),
        ("PUT", "prevExist=true", "update"),
        ("PUT", "prevExist=true&prevValue=a", "cas"),
        ("PUT", "prevExist=true&prevIndex=2", "cas"),
        ("PUT", "prevExist=false", "create"),
        ("PUT", "prevExist=false&prevValue=a", "create"),
        ("POST", "", "post"),
        ("POST", "prevValue=a", "post"),
        ("DELETE", "", "delete"),
        ("DELETE", "recursive=true", "delete"),
        ("DELETE", "prevValue=a", "cad"),
        ("DELETE", "prevIndex=4", "cad"),
    ],
)
def test_requests_map_to_etcds_store_calls(method: str, query: str, op: str) -> None:
    cmd = to_command(parsed(method, query), 1_796_000_000.5)
    assert cmd.op == op
    assert cmd.time == 1_796_000_000.5 and cmd.expiration is None


def test_ttl_and_refresh_become_an_absolute_expiration() -> None:
    cmd = to_command(parsed("PUT", "ttl=30&refresh=true&prevExist=true"), 1_796_000_000.25)
    assert (cmd.op, cmd.refresh, cmd.expiration) == ("update", True, 1_796_000_030.25)
    with pytest.raises(EtcdError) as e:
        parsed("PUT", "ttl=9223372037")  # beyond Go's int64 nanoseconds
    assert e.value.code == 202
