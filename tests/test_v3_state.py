"""The v3 state machine (store/v3) against a reference model (tests/v3_model.py),
by hypothesis stateful testing; and its pieces: the Raft-log encoding, snapshots,
auto-compaction, Go's base64 and JSON errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from store import member_snapshot
from store.v2.command import Command
from store.v2.store import V2Store
from store.v3 import command, errors, gateway, rules, snapshot
from store.v3.autocompact import AutoCompaction, AutoCompactor
from store.v3.gobase64 import CorruptInput
from store.v3.gobase64 import decode as b64decode
from store.v3.goscan import GoSyntaxError, first_value_end
from store.v3.gosort import go_sort
from store.v3.messages import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)
from store.v3.state import V3Store
from tests.v3_model import Model

KEYS = [b"a", b"ab", b"b", b"c", b"d"]
ENDS = [b"", b"", b"b", b"c", b"e", b"\x00"]
VALUES = [b"", b"1", b"2", b"x"]

keys = st.sampled_from(KEYS)
ends = st.sampled_from(ENDS)
puts = st.builds(PutRequest, key=keys, value=st.sampled_from(VALUES), prev_kv=st.booleans())
deletes = st.builds(DeleteRangeRequest, key=keys, range_end=ends, prev_kv=st.booleans())
ranges = st.builds(RangeRequest, key=keys, range_end=ends, limit=st.integers(0, 3),
                   count_only=st.booleans())
compares = st.builds(
    Compare, result=st.sampled_from(list(CompareResult)),
    target=st.sampled_from([CompareTarget.VERSION, CompareTarget.CREATE, CompareTarget.MOD,
                            CompareTarget.VALUE]),
    key=keys, range_end=st.sampled_from([b"", b"", b"c", b"\x00"]),
    version=st.integers(0, 3), create_revision=st.integers(0, 8), mod_revision=st.integers(0, 8),
    value=st.sampled_from(VALUES),
)  # fmt: skip
txn_ranges = st.builds(RangeRequest, key=keys, range_end=ends, limit=st.integers(0, 3),
                       revision=st.sampled_from([0, 0, 0, 1, 3, 6, 9, 40]),
                       count_only=st.booleans(), keys_only=st.booleans())
flat_ops = st.one_of(st.builds(RequestOp, range=txn_ranges), st.builds(RequestOp, put=puts),
                     st.builds(RequestOp, delete_range=deletes))
ops = st.one_of(
    flat_ops, flat_ops, flat_ops,
    st.builds(RequestOp, txn=st.builds(
        TxnRequest, compare=st.lists(compares, max_size=2).map(tuple),
        success=st.lists(flat_ops, max_size=3).map(tuple),
        failure=st.lists(flat_ops, max_size=2).map(tuple))),
)  # fmt: skip


class V3Machine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = V3Store()
        self.model = Model()

    def _both(self, store_resp: object, model_resp: object) -> None:
        assert store_resp == model_resp

    @rule(r=puts)
    def put(self, r: PutRequest) -> None:
        self._both(self.store.apply(r), self.model.put(r))

    @rule(r=deletes)
    def delete(self, r: DeleteRangeRequest) -> None:
        self._both(self.store.apply(r), self.model.delete(r))

    @rule(r=ranges, back=st.integers(0, 6))
    def range(self, r: RangeRequest, back: int) -> None:
        at = RangeRequest(r.key, r.range_end, r.limit, max(0, self.model.rev - back),
                          count_only=r.count_only)
        try:
            got: object = self.store.range(at)
        except errors.V3Error as e:
            got = e
        self._both(got, self.model.read(at))

    @rule(back=st.integers(-1, 5))
    def compact(self, back: int) -> None:
        r = CompactionRequest(self.model.rev - back)
        self._both(self.store.apply(r), self.model.compact(r))

    @rule(cs=st.lists(compares, max_size=2), success=st.lists(ops, max_size=4),
          failure=st.lists(ops, max_size=3))
    def txn(self, cs: list[Compare], success: list[RequestOp], failure: list[RequestOp]) -> None:
        t = TxnRequest(tuple(cs), tuple(success), tuple(failure))
        try:
            rules.check_txn(t)
        except errors.V3Error as e:
            assert e == errors.duplicate_key()
            return
        self._both(self.store.apply(t), self.model.txn(t))

    @invariant()
    def a_snapshot_restores_every_readable_revision(self) -> None:
        again = snapshot.load(snapshot.dump(self.store))
        assert again.revision == self.store.revision
        assert again.compact_revision == self.store.compact_revision
        low = max(1, self.store.compact_revision)
        for rev in range(low, self.store.revision + 1):
            r = RangeRequest(b"\x00", b"\x00", revision=rev)
            assert again.range(r) == self.store.range(r)

TestV3AgainstModel = V3Machine.TestCase
TestV3AgainstModel.settings = settings(max_examples=150, stateful_step_count=30)


@pytest.mark.parametrize("req", [
    PutRequest(b"k\x00\xff", b"v", prev_kv=True, ignore_value=False),
    DeleteRangeRequest(b"a", b"\x00", prev_kv=True),
    CompactionRequest(7, physical=True),
    TxnRequest(
        (Compare(CompareResult.LESS, CompareTarget.MOD, b"a", b"b", mod_revision=3),
         Compare(CompareResult.EQUAL, CompareTarget.VALUE, b"a", value=b"")),
        (RequestOp(range=RangeRequest(b"a", b"z", limit=2, revision=4, keys_only=True)),
         RequestOp(txn=TxnRequest(success=(RequestOp(put=PutRequest(b"x", b"y")),)))),
        (RequestOp(delete_range=DeleteRangeRequest(b"q")), RequestOp()),
    ),
])  # fmt: skip
def test_a_write_survives_the_raft_log_encoding(req: object) -> None:
    cmd = command.V3Command(req, 42)  # type: ignore[arg-type]
    data = command.encode(cmd)
    assert command.is_v3(data)
    assert command.decode(data) == cmd


def test_a_v2_command_is_not_taken_for_a_v3_one() -> None:
    from store.v2.command import encode

    assert not command.is_v3(encode(Command("set", "/a", "1")))


def test_a_member_snapshot_holds_both_keyspaces_and_reads_an_old_v2_one() -> None:
    v2 = V2Store()
    v2.apply(Command("set", "/a", "v2", time=1.0))
    v3 = V3Store()
    v3.apply(PutRequest(b"a", b"v3"))
    v3.apply(PutRequest(b"a", b"v3b"))
    v3.apply(CompactionRequest(2))
    v2b, v3b = member_snapshot.load(member_snapshot.dump(v2, v3))
    assert v2b.snapshot() == v2.snapshot()
    assert v3b.revision == 3 and v3b.compact_revision == 2
    assert v3b.range(RangeRequest(b"a")).kvs[0].value == b"v3b"
    old2, old3 = member_snapshot.load(v2.snapshot())  # written before the v3 API
    assert old2.snapshot() == v2.snapshot() and old3.revision == 1


def test_the_revision_mode_compacts_every_five_minutes_keeping_the_retention() -> None:
    c = AutoCompactor(AutoCompaction.parse("revision", "10"))
    assert c.due(0.0, 100) is None  # the first interval starts
    assert c.due(299.0, 100) is None
    assert c.due(300.0, 100) == 90
    assert c.due(600.0, 100) is None  # nothing new to compact
    assert c.due(900.0, 150) == 140


def test_the_periodic_mode_compacts_to_the_revision_of_a_retention_ago() -> None:
    c = AutoCompactor(AutoCompaction.parse("periodic", "10m"))
    got = {}
    for t in range(0, 1801, 10):  # a revision a second
        target = c.due(float(t), 1 + t)
        if target is not None:
            got[t] = target
    assert got == {600: 1, 1200: 601, 1800: 1201}
    assert AutoCompaction.parse("periodic", "2").retention == 7200.0
    assert AutoCompaction.parse("periodic", "1h30m").retention == 5400.0
    assert AutoCompactor(AutoCompaction.parse("periodic", "0")).due(1e9, 5) is None


@pytest.mark.parametrize(("mode", "retention"), [("daily", "1"), ("periodic", "soon"),
                                                 ("revision", "1h")])
def test_bad_auto_compaction_flags_name_the_flag(mode: str, retention: str) -> None:
    with pytest.raises(ValueError, match="--auto-compaction"):
        AutoCompaction.parse(mode, retention)


@pytest.mark.parametrize(("text", "want"), [
    (b"YQ==", b"a"), (b"YWJj", b"abc"), (b"YW\nJj", b"abc"), (b"", b""),
    (b"YQ=", 3), (b"Y", 0), (b"Y!==", 1), (b"YQ==YQ==", 4), (b"_-8=", 0), (b"YQ=x", 2),
])  # fmt: skip
def test_base64_decodes_and_fails_as_go_does(text: bytes, want: bytes | int) -> None:
    if isinstance(want, bytes):
        assert b64decode(text) == want
    else:
        with pytest.raises(CorruptInput) as e:
            b64decode(text)
        assert e.value.offset == want


@pytest.mark.parametrize(("text", "want"), [
    (b'{"a":[1,{"b":null}]} x', 20), (b"  ", None), (b"5", 1),
    (b"{bad", "invalid character 'b' looking for beginning of object key string"),
    (b'{"a":1,}', "invalid character '}' looking for beginning of object key string"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b'{"a":-x}', "invalid character 'x' in numeric literal"),
    (b'{"a":1.}', "invalid character '}' after decimal point in numeric literal"),
    (b'{"a":nul', "unexpected EOF"),
])  # fmt: skip
def test_the_first_json_value_and_gos_syntax_errors(text: bytes, want: int | str | None) -> None:
    if isinstance(want, str):
        with pytest.raises(GoSyntaxError, match=want.replace("[", r"\[")):
            first_value_end(text)
    else:
        assert first_value_end(text) == want


@given(st.lists(st.tuples(st.integers(0, 5), st.integers()), max_size=300))
def test_gos_sort_sorts_and_keeps_every_element(items: list[tuple[int, int]]) -> None:
    got = list(items)
    go_sort(got, lambda x, y: x[0] < y[0])
    assert [k for k, _ in got] == sorted(k for k, _ in items)
    assert sorted(got) == sorted(items)


def test_the_gateway_reads_both_field_names_and_enum_names_or_numbers() -> None:
    body = json.dumps({"key": "YQ==", "rangeEnd": "Yg==", "sort_order": 2, "sortTarget": "MOD",
                       "limit": "3"}).encode()
    r = gateway.decode(body, gateway.parse_range)
    assert r == RangeRequest(b"a", b"b", 3, sort_order=2, sort_target=3)  # type: ignore[arg-type]
