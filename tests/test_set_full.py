"""set-full and the statistics on small histories written out by hand."""

from __future__ import annotations

from typing import Any

from checker.history import NEMESIS, UNOBSERVED, Op
from checker.set_full import check_set_full
from checker.stats import compute


class History:
    """Ops in order, each at the next millisecond."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def add(self, process: Any, type_: str, f: str, value: Any = UNOBSERVED, key: Any = "s",
            at_ms: int | None = None) -> History:  # fmt: skip
        t = (at_ms if at_ms is not None else len(self.ops)) * 1_000_000
        self.ops.append(Op(len(self.ops), process, type_, f, value, key, t))  # type: ignore[arg-type]
        return self

    def call(
        self, process: Any, f: str, value: Any, result: Any = None, type_: str = "ok"
    ) -> History:
        self.add(process, "invoke", f, value)
        return self.add(process, type_, f, value if result is None else result)


def test_elements_seen_by_every_later_read_are_stable() -> None:
    h = History().call(0, "add", 1).call(1, "add", 2).call(0, "read", UNOBSERVED, [1, 2])
    result = check_set_full(h.ops)
    assert result.valid
    assert result.to_json()["stable"] == 2


def test_an_acknowledged_element_missing_from_every_later_read_is_lost() -> None:
    h = History().call(0, "add", 1).call(0, "add", 2)
    h.call(1, "read", UNOBSERVED, [1]).call(1, "read", UNOBSERVED, [1])
    result = check_set_full(h.ops)
    assert not result.valid
    assert result.keys[0].lost == [2]


def test_an_element_missed_then_seen_is_stale() -> None:
    h = History().call(0, "add", 1).call(1, "read", UNOBSERVED, []).call(1, "read", UNOBSERVED, [1])
    assert check_set_full(h.ops).keys[0].stale == [1]
    assert not check_set_full(h.ops).valid
    assert check_set_full(h.ops, linearizable=False).valid


def test_an_element_nobody_added_is_unexpected_and_an_undecided_add_may_be_absent() -> None:
    h = History().call(0, "add", 1, type_="info").call(1, "read", UNOBSERVED, [7])
    result = check_set_full(h.ops)
    assert result.keys[0].unexpected == [7]
    assert result.keys[0].lost == [] and not result.valid


def test_an_element_with_no_read_after_it_is_never_read() -> None:
    h = History().call(0, "read", UNOBSERVED, []).call(0, "add", 1)
    result = check_set_full(h.ops)
    assert result.valid and result.keys[0].never_read == 1


def test_stats_count_outcomes_and_measure_the_gap_after_a_fault() -> None:
    h = History()
    h.add(0, "invoke", "write", 1, "k", at_ms=0).add(0, "ok", "write", 1, "k", at_ms=10)
    h.add(NEMESIS, "info", "kill", "leader", None, at_ms=100)
    h.add(NEMESIS, "info", "kill", {"nodes": ["n1"]}, None, at_ms=110)
    h.add(0, "invoke", "write", 2, "k", at_ms=120).add(0, "info", "write", 2, "k", at_ms=1120)
    h.add(1, "invoke", "read", UNOBSERVED, "k", at_ms=1200)
    h.add(1, "ok", "read", 1, "k", at_ms=1610)
    h.add(NEMESIS, "info", "restart", UNOBSERVED, None, at_ms=2000)
    h.add(NEMESIS, "info", "restart", {"nodes": ["n1"]}, None, at_ms=2100)
    stats = compute(h.ops)
    assert stats.ops == {"read": {"ok": 1}, "write": {"ok": 1, "info": 1}}
    assert stats.availability == 2 / 3
    [fault] = stats.faults
    assert (fault.f, fault.start_s, fault.end_s) == ("kill", 0.1, 2.1)
    assert abs(fault.first_ok_after_s - 1.51) < 1e-9  # the read invoked after it, done at 1.61 s
    assert abs(fault.longest_ok_gap_s - 1.51) < 1e-9
    assert [n["f"] for n in stats.nemesis] == ["kill", "kill", "restart", "restart"]
