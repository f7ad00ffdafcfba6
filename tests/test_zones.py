"""The zone procedure for unique-valued registers, against brute force."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker import Op, check_operations, make_model, pair
from checker.linearizable import partition
from checker.simulate import RegisterWorkload, register_history
from checker.zones import decide
from tests.brute import brute_force_linearizable
from tests.histories import assert_window_fails, interleaved

INITIAL = {"cas-register": 0, "register": 0, "etcd": None}


class _Unique:
    """Every write and cas writes a new value; with `timeouts`, most writes time out and
    most cas fail."""

    def __init__(self, model: str, timeouts: bool):
        self.model, self.timeouts = model, timeouts
        self.fresh = 1
        self.written: list[Any] = [INITIAL[model]]

    def invoke(self, draw: st.DrawFn) -> tuple[str, Any]:
        f = draw(st.sampled_from(["read", "write"] + (["cas"] if self.model != "register"
                                                      else [])))
        value: Any = None
        if f == "write":
            value = self.fresh
        elif f == "cas":
            old = draw(st.sampled_from([*self.written, self.fresh + 5]))
            if self.model == "etcd" and old is None:
                old = self.fresh + 5
            value = [old, self.fresh]
        if f != "read":
            self.written.append(self.fresh)
            self.fresh += 1
        return f, value

    def outcome(self, draw: st.DrawFn, f: str, value: Any) -> str:
        if f == "read":
            return draw(st.sampled_from(["ok"] if self.timeouts else ["ok", "info", "pending"]))
        outcomes = ["ok", "fail", "fail", "info", "info"] if self.timeouts else [
            "ok", "ok", "ok", "fail", "info", "pending"]
        return draw(st.sampled_from(outcomes))

    def completion(self, draw: st.DrawFn, f: str, value: Any, outcome: str) -> tuple[Any, Any]:
        if f == "read":
            value = draw(st.sampled_from([*self.written, self.fresh + 7]))
        return value, "compare-failed" if outcome == "fail" else None


@st.composite
def unique_history(draw: st.DrawFn, model: str, timeouts: bool = False) -> list[Op]:
    """Up to 12 operations by up to 4 processes; every write and cas writes a new value."""
    return interleaved(draw, _Unique(model, timeouts))


@pytest.mark.parametrize("timeouts", [False, True])
@pytest.mark.parametrize("model", sorted(INITIAL))
@settings(max_examples=400, derandomize=True)
@given(data=st.data())
def test_zones_agree_with_brute_force(model: str, timeouts: bool, data: st.DataObject) -> None:
    ops = data.draw(unique_history(model, timeouts))
    m = make_model(model, INITIAL[model])
    operations = list(pair(ops))
    expected = brute_force_linearizable(m, operations, m.init())
    parts = partition(m, operations)
    for entries in parts.values():
        verdict = decide(m, entries)
        if model != "etcd" or all(e.call.kind in ("read", "write", "cas") for e in entries):
            assert verdict is not None, f"history: {[o.to_json() for o in ops]}"
        if verdict is not None:
            assert verdict.valid is expected, f"history: {[o.to_json() for o in ops]}"
    assert check_operations(m, pair(ops), workers=1).valid is expected


@pytest.mark.parametrize("model", ["cas-register", "etcd"])
@pytest.mark.parametrize("inject", [None, "stale-read", "inversion"])
@pytest.mark.parametrize("seed", range(40))
def test_generated_small_histories_agree_with_brute_force(
    model: str, inject: str | None, seed: int
) -> None:
    """cas-register: the zone procedure; etcd (failed cas observe the state): zones when
    its witness fits them, else the search."""
    w = RegisterWorkload(ops=12, processes=3, p_timeout=0.5, inject=inject)
    first = seed
    for seed in range(first * 1000, first * 1000 + 1000):  # the first one that fits
        try:
            ops = register_history(seed, w)
            break
        except ValueError:
            continue
    m = make_model(model, 0)
    operations = list(pair(ops))
    expected = brute_force_linearizable(m, operations, m.init())
    assert expected is (inject is None), f"seed {seed}: the generator's promise"
    result = check_operations(m, pair(ops), workers=1)
    assert result.valid is expected, f"seed {seed}: {[o.to_json() for o in ops]}"
    if model == "cas-register":
        verdict = decide(m, next(iter(partition(m, operations).values())))
        assert verdict is not None and verdict.valid is expected, f"seed {seed}"


@pytest.mark.parametrize("model", ["cas-register", "etcd"])
@pytest.mark.parametrize("inject", [None, "inversion"])
@pytest.mark.parametrize("seed", range(5))
def test_generated_large_histories_are_decided(model: str, inject: str | None,
                                               seed: int) -> None:
    ops = register_history(seed, RegisterWorkload(ops=3000, processes=10, inject=inject))
    m = make_model(model, 0)
    result = check_operations(m, pair(ops), workers=1)
    assert result.valid is (inject is None), f"seed {seed}"
    if model == "cas-register":
        assert result.keys[0].method in ("zones", "refutation"), f"seed {seed}"
    if inject:
        ce = result.keys[0].counterexample
        assert ce is not None and ce.explanation, f"seed {seed}"
        # A small window around the operations the proof names, verified by a search.
        assert ce.window.initial == "any" and len(ce.window.ops) <= 60, f"seed {seed}"
        assert_window_fails(m, ce.window)


def test_repeated_values_fall_back_to_search() -> None:
    m = make_model("cas-register", 0)
    ops = [Op(0, 0, "invoke", "write", 1), Op(1, 0, "ok", "write", 1),
           Op(2, 0, "invoke", "write", 1), Op(3, 0, "ok", "write", 1)]
    assert decide(m, partition(m, pair(ops))[None]) is None
    assert check_operations(m, pair(ops), workers=1).keys[0].method == "search"


def test_unread_indeterminate_writes_are_dropped() -> None:
    """Thirty timed-out writes nobody read: irrelevant, whatever they did."""
    ops: list[Op] = []
    for p in range(30):
        ops.append(Op(len(ops), p, "invoke", "write", p + 1))
    for p in range(30):
        ops.append(Op(len(ops), p, "info", "write", p + 1))
    for f, v in (("write", 100), ("read", 100)):
        ops.append(Op(len(ops), 99, "invoke", f, v))
        ops.append(Op(len(ops), 99, "ok", f, v))
    m = make_model("cas-register", 0)
    verdict = decide(m, partition(m, pair(ops))[None])
    assert verdict is not None and verdict.valid is True and verdict.dropped == 30


def test_a_timed_out_write_nobody_read_can_explain_a_failed_cas() -> None:
    """The failed cas from 1 needs some other value after 1: only the timed-out write of
    2 (never read) can give it, just before; the search must still try it there."""
    ops = [Op(0, 0, "invoke", "write", 1), Op(1, 0, "ok", "write", 1),
           Op(2, 1, "invoke", "write", 2), Op(3, 1, "info", "write", 2),
           Op(4, 2, "invoke", "cas", [1, 3]), Op(5, 2, "fail", "cas", [1, 3],
                                                  error="compare-failed")]
    m = make_model("etcd")
    assert brute_force_linearizable(m, list(pair(ops)), m.init())
    assert check_operations(m, pair(ops), workers=1).valid is True
    # Without the timed-out write the failed cas has no explanation.
    rest = [o for o in ops if o.process != 1]
    rest = [Op(i, o.process, o.type, o.f, o.value, error=o.error) for i, o in enumerate(rest)]
    assert check_operations(m, pair(rest), workers=1).valid is False


_PRECONDITION_ERRORS = {"cas": "compare-failed", "create": "node-exists", "delete": "not-found"}


class _Excluding:
    """etcd operations, every written value new, with many failed cas (they exclude a
    value), failed creates (exclude absent) and failed deletes (read absent); reads may
    return absent."""

    def __init__(self, initial: Any):
        self.fresh = 1
        self.written: list[Any] = [initial]

    def invoke(self, draw: st.DrawFn) -> tuple[str, Any]:
        f = draw(st.sampled_from(["read", "write", "cas", "cas", "create", "delete"]))
        value: Any = None
        if f == "write":
            value = self.fresh
        elif f == "cas":
            value = [draw(st.sampled_from([*self.written, None, self.fresh + 5])), self.fresh]
        elif f == "create":
            value = self.fresh + 9  # it fails: never written
        if f in ("write", "cas"):
            self.written.append(self.fresh)
            self.fresh += 1
        return f, value

    def outcome(self, draw: st.DrawFn, f: str, value: Any) -> str:
        outcomes = {"create": ["fail", "fail", "info"], "delete": ["fail", "fail", "info"],
                    "cas": ["ok", "fail", "fail", "info", "pending"],
                    "write": ["ok", "ok", "info", "pending"]}.get(f, ["ok"])
        return draw(st.sampled_from(outcomes))

    def completion(self, draw: st.DrawFn, f: str, value: Any, outcome: str) -> tuple[Any, Any]:
        if f == "read":
            value = draw(st.sampled_from([*self.written, None, self.fresh + 7]))
        return value, _PRECONDITION_ERRORS.get(f) if outcome == "fail" else None


@st.composite
def etcd_history(draw: st.DrawFn, initial: Any) -> list[Op]:
    """Up to 12 etcd operations by up to 4 processes (see _Excluding)."""
    return interleaved(draw, _Excluding(initial))


@pytest.mark.parametrize("initial", [None, 0])
@settings(max_examples=1500, derandomize=True, deadline=None)
@given(data=st.data())
def test_zones_with_exclusions_agree_with_brute_force_and_search(
    initial: Any, data: st.DataObject
) -> None:
    """Failed cas, creates and deletes: when the zone procedure concludes, it agrees with
    brute force; the search (which it may leave the key to) always does."""
    ops = data.draw(etcd_history(initial))
    m = make_model("etcd", initial)
    operations = list(pair(ops))
    expected = brute_force_linearizable(m, operations, m.init())
    shown = f"initial {initial!r}, history: {[o.to_json() for o in ops]}"
    for entries in partition(m, operations).values():
        verdict = decide(m, entries)
        if verdict is not None:
            assert verdict.valid is expected, shown
            assert all(e.call.kind not in ("cas-failed", "create-failed")
                       for e in (entries[i] for i in verdict.kept)), shown
    result = check_operations(m, pair(ops), workers=1)
    assert result.valid is expected, shown


@pytest.mark.parametrize("inject", [None, "stale-read", "inversion"])
def test_small_etcd_histories_with_failed_cas_are_mostly_decided_by_zones(
    inject: str | None,
) -> None:
    """Simulated etcd histories (failed cas observe the state): the zone procedure agrees
    with brute force whenever it concludes, and it concludes on most valid ones."""
    w = RegisterWorkload(ops=12, processes=3, p_timeout=0.5, inject=inject)
    m = make_model("etcd", 0)
    concluded = tried = 0
    for seed in range(300):
        try:
            ops = register_history(seed, w)
        except ValueError:
            continue
        operations = list(pair(ops))
        expected = brute_force_linearizable(m, operations, m.init())
        assert expected is (inject is None), f"seed {seed}: the generator's promise"
        verdict = decide(m, next(iter(partition(m, operations).values())))
        tried += 1
        if verdict is not None:
            concluded += 1
            assert verdict.valid is expected, f"seed {seed}: {[o.to_json() for o in ops]}"
    if inject is None:
        assert concluded >= 0.9 * tried, f"zones concluded on {concluded} of {tried}"


@pytest.mark.parametrize("inject", [None, "inversion"])
@pytest.mark.parametrize("seed", range(3))
def test_large_etcd_histories_are_decided_by_zones(inject: str | None, seed: int) -> None:
    ops = register_history(seed, RegisterWorkload(ops=2000, inject=inject))
    m = make_model("etcd", 0)
    entries = next(iter(partition(m, list(pair(ops))).values()))
    assert any(e.call.kind == "cas-failed" for e in entries), f"seed {seed}"
    result = check_operations(m, pair(ops), workers=1)
    assert result.valid is (inject is None), f"seed {seed}"
    assert result.keys[0].method == "zones", f"seed {seed}"
    if inject:
        assert result.keys[0].counterexample.explanation, f"seed {seed}"


def _sequential(*calls: tuple[str, Any, str]) -> list[Op]:
    """One process, one operation after another: (f, value, outcome)."""
    ops: list[Op] = []
    error = {"cas": "compare-failed", "create": "node-exists", "delete": "not-found"}
    for f, value, outcome in calls:
        ops.append(Op(len(ops), 0, "invoke", f, value))
        ops.append(Op(len(ops), 0, outcome, f, value,
                      error=error.get(f) if outcome == "fail" else None))
    return ops


def test_a_failed_cas_that_no_witness_explains_is_left_to_the_search() -> None:
    """write 1, then a cas from 1 fails with nothing else written: not linearizable, but
    the zone procedure only knows its witness failed, so the search decides."""
    m = make_model("etcd", 0)
    ops = _sequential(("write", 1, "ok"), ("cas", [1, 2], "fail"))
    assert decide(m, partition(m, pair(ops))[None]) is None
    result = check_operations(m, pair(ops), workers=1)
    assert result.valid is False and result.keys[0].method in ("search", "refutation")


def test_failed_cas_creates_and_deletes_decided_by_zones() -> None:
    m = make_model("etcd", None)
    ops = _sequential(("delete", None, "fail"), ("write", 1, "ok"), ("create", 5, "fail"),
                      ("cas", [7, 2], "fail"), ("cas", [None, 3], "fail"),
                      ("cas", [1, 4], "ok"), ("cas", [1, 6], "fail"), ("read", 4, "ok"))
    verdict = decide(m, partition(m, pair(ops))[None])
    assert verdict is not None and verdict.valid is True
    # A failed delete reads absent: after the write it cannot happen.
    bad = _sequential(("write", 1, "ok"), ("delete", None, "fail"))
    verdict = decide(m, partition(m, pair(bad))[None])
    assert verdict is not None and verdict.valid is False
    result = check_operations(m, pair(bad), workers=1)
    assert result.valid is False and result.keys[0].counterexample.explanation


def test_zone_counterexample_with_failed_cas_around() -> None:
    """An invalid verdict leaves the failed cas out of `kept`; the counterexample works.
    Value 2 is read while 1 must hold (1 is read later): no refutation sees it."""
    m = make_model("etcd", 0)
    ops = [Op(0, 0, "invoke", "write", 1), Op(1, 0, "ok", "write", 1),
           Op(2, 1, "invoke", "write", 2), Op(3, 2, "invoke", "read", None),
           Op(4, 3, "invoke", "cas", [0, 9]), Op(5, 2, "ok", "read", 2),
           Op(6, 3, "fail", "cas", [0, 9], error="compare-failed"),
           Op(7, 2, "invoke", "read", None), Op(8, 2, "ok", "read", 1),
           Op(9, 1, "ok", "write", 2)]
    entries = partition(m, pair(ops))[None]
    verdict = decide(m, entries)
    assert verdict is not None and verdict.valid is False
    assert all(entries[i].call.kind != "cas-failed" for i in verdict.kept)
    result = check_operations(m, pair(ops), workers=1)
    assert result.keys[0].method == "zones"
    assert result.valid is False and result.keys[0].counterexample.explanation


def test_a_timed_out_write_nobody_read_ends_a_value_for_a_failed_cas() -> None:
    """The failed cas from 1 needs another value after 1: the zone procedure lends it
    the timed-out write of 2 (never read, so dropped from the kept operations)."""
    ops = [Op(0, 0, "invoke", "write", 1), Op(1, 0, "ok", "write", 1),
           Op(2, 1, "invoke", "write", 2), Op(3, 1, "info", "write", 2),
           Op(4, 2, "invoke", "cas", [1, 3]), Op(5, 2, "fail", "cas", [1, 3],
                                                  error="compare-failed")]
    m = make_model("etcd")
    verdict = decide(m, partition(m, pair(ops))[None])
    assert verdict is not None and verdict.valid is True and verdict.dropped == 1
    # Invoked after the failed cas completed, it cannot.
    late = [ops[0], ops[1], ops[4], ops[5], Op(4, 1, "invoke", "write", 2),
            Op(5, 1, "info", "write", 2)]
    late = [Op(i, o.process, o.type, o.f, o.value, error=o.error) for i, o in enumerate(late)]
    assert decide(m, partition(m, pair(late))[None]) is None
    assert check_operations(m, pair(late), workers=1).valid is False


@pytest.mark.parametrize("model", ["cas-register", "etcd"])
def test_a_stale_read_after_a_cas_is_the_operation_named(model: str) -> None:
    """A cas 1→2 completes, then a read invoked later still returns 1 (overlapping
    nothing): the read comes too late, so the verdict names the read, not the cas."""
    ops = [Op(0, 0, "invoke", "write", 1), Op(1, 0, "ok", "write", 1),
           Op(2, 1, "invoke", "read", None), Op(3, 1, "ok", "read", 1),
           Op(4, 2, "invoke", "cas", [1, 2]), Op(5, 2, "ok", "cas", [1, 2]),
           Op(6, 3, "invoke", "read", None), Op(7, 3, "ok", "read", 1)]
    m = make_model(model, 0)
    entries = partition(m, pair(ops))[None]
    verdict = decide(m, entries)
    assert verdict is not None and verdict.valid is False
    assert verdict.culprit is not None
    named = entries[verdict.culprit]
    assert (named.invoked, named.call.kind) == (6, "read"), verdict.why


def test_a_read_of_a_value_not_yet_written_is_the_operation_named() -> None:
    """A read returns 2 and completes before the write of 2 is invoked: the read saw the
    future, so it is the one named."""
    ops = [Op(0, 1, "invoke", "read", None), Op(1, 1, "ok", "read", 2),
           Op(2, 0, "invoke", "write", 2), Op(3, 0, "ok", "write", 2)]
    m = make_model("cas-register", 0)
    entries = partition(m, pair(ops))[None]
    verdict = decide(m, entries)
    assert verdict is not None and verdict.valid is False and verdict.culprit is not None
    assert entries[verdict.culprit].invoked == 0, verdict.why
