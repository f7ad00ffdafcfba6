"""The models' semantics, on histories small enough to reason about by hand."""

from __future__ import annotations

import pytest

from tests.histories import _, check, history


def test_knossos_nil_read_matches_any_state_but_etcd_null_means_absent() -> None:
    h = history((0, "invoke", "write", 1), (0, "ok", "write", 1),
                (1, "invoke", "read", _), (1, "ok", "read", None))
    assert check("cas-register", h, 0).valid is True
    assert check("etcd", h).valid is False


def test_register_stale_read_is_invalid_and_explained() -> None:
    h = history((0, "invoke", "write", 1), (0, "ok", "write", 1),
                (0, "invoke", "write", 2), (0, "ok", "write", 2),
                (1, "invoke", "read", _), (1, "ok", "read", 1))
    result = check("register", h, 0)
    assert result.valid is False
    ce = result.keys[0].counterexample
    assert ce.op.description == "read 1"
    assert "write 2" in ce.explanation


def test_concurrent_write_may_be_seen_or_not() -> None:
    h = history((0, "invoke", "write", 1), (1, "invoke", "read", _), (1, "ok", "read", 1),
                (2, "invoke", "read", _), (2, "ok", "read", 0), (0, "ok", "write", 1))
    # read 0 after read 1, both inside the write: 1 then 0 is impossible.
    assert check("cas-register", h, 0).valid is False
    h2 = history((0, "invoke", "write", 1), (2, "invoke", "read", _), (2, "ok", "read", 0),
                 (1, "invoke", "read", _), (1, "ok", "read", 1), (0, "ok", "write", 1))
    assert check("cas-register", h2, 0).valid is True


def test_cas_register_fail_never_happened_info_may_have() -> None:
    failed = history((0, "invoke", "cas", [0, 5]), (0, "fail", "cas", [0, 5]),
                     (1, "invoke", "read", _), (1, "ok", "read", 5))
    assert check("cas-register", failed, 0).valid is False
    crashed = history((0, "invoke", "cas", [0, 5]), (0, "info", "cas", _, "timeout"),
                      (1, "invoke", "read", _), (1, "ok", "read", 5),
                      (1, "invoke", "read", _), (1, "ok", "read", 5))
    assert check("cas-register", crashed, 0).valid is True
    never = history((0, "invoke", "write", 5), (0, "info", "write", _),
                    (1, "invoke", "read", _), (1, "ok", "read", 0))
    assert check("cas-register", never, 0).valid is True
    once = history((0, "invoke", "write", 5), (0, "info", "write", _),
                   (1, "invoke", "read", _), (1, "ok", "read", 5),
                   (1, "invoke", "write", 0), (1, "ok", "write", 0),
                   (1, "invoke", "read", _), (1, "ok", "read", 5))
    assert check("cas-register", once, 0).valid is False  # it took effect once, not twice


@pytest.mark.parametrize(
    ("error", "valid"),
    [(None, False), ("compare-failed", False), (101, False), ({"errorCode": 101}, False),
     ("connection-refused", True), ("timeout", True)],
)
def test_etcd_failed_cas_is_an_observation_only_when_the_compare_failed(
    error: object, valid: bool
) -> None:
    # The value is 1 for the whole cas: a failed compare against 1 is impossible,
    # a request the server never answered or refused says nothing.
    h = history((0, "invoke", "write", 1), (0, "ok", "write", 1),
                (1, "invoke", "cas", [1, 2]), (1, "fail", "cas", [1, 2], error),
                (0, "invoke", "read", _), (0, "ok", "read", 1))
    assert check("etcd", h).valid is valid


def test_etcd_create_and_delete() -> None:
    ok = history((0, "invoke", "create", "a"), (0, "ok", "create", "a"),
                 (1, "invoke", "create", "b"), (1, "fail", "create", "b", 105),
                 (0, "invoke", "delete", _), (0, "ok", "delete", _),
                 (1, "invoke", "delete", _), (1, "fail", "delete", _, "key-not-found"),
                 (1, "invoke", "read", _), (1, "ok", "read", None))
    assert check("etcd", ok).valid is True
    double = history((0, "invoke", "create", "a"), (0, "ok", "create", "a"),
                     (1, "invoke", "create", "b"), (1, "ok", "create", "b"))
    assert check("etcd", double).valid is False


def test_kv_append_and_put() -> None:
    h = history((0, "invoke", "append", "x"), (0, "ok", "append", "x"),
                (1, "invoke", "append", "y"), (1, "ok", "append", "y"),
                (2, "invoke", "get", _), (2, "ok", "get", "xy"),
                (0, "invoke", "put", "z"), (0, "ok", "put", "z"),
                (2, "invoke", "get", _), (2, "ok", "get", "z"))
    assert check("kv-append", h, "").valid is True
    swapped = [*h[:5], h[5].__class__(5, 2, "ok", "get", "yx")]
    assert check("kv-append", swapped, "").valid is False


def test_mutex_double_acquire() -> None:
    h = history((0, "invoke", "acquire", _), (0, "ok", "acquire", _),
                (1, "invoke", "acquire", _), (1, "ok", "acquire", _))
    assert check("mutex", h).valid is False
    released = history((0, "invoke", "acquire", _), (0, "ok", "acquire", _),
                       (0, "invoke", "release", _), (1, "invoke", "acquire", _),
                       (1, "ok", "acquire", _), (0, "ok", "release", _))
    assert check("mutex", released).valid is True


def test_multi_register_txn_is_atomic() -> None:
    h = history((0, "invoke", "txn", [["write", "x", 1], ["write", "y", 1]]),
                (1, "invoke", "txn", [["read", "x", None], ["read", "y", None]]),
                (1, "ok", "txn", [["read", "x", 1], ["read", "y", 0]]),
                (0, "ok", "txn", [["write", "x", 1], ["write", "y", 1]]))
    assert check("multi-register", h, {"x": 0, "y": 0}).valid is False
    fine = [*h[:2], h[2].__class__(2, 1, "ok", "txn", [["read", "x", 1], ["read", "y", 1]]),
            h[3]]
    assert check("multi-register", fine, {"x": 0, "y": 0}).valid is True


def test_unknown_operation_for_model_is_bad_input() -> None:
    from checker import HistoryError

    with pytest.raises(HistoryError, match="has no operation 'frob'"):
        check("register", history((0, "invoke", "frob", 1), (0, "ok", "frob", 1)))


def test_counterexample_is_typed_and_its_json_says_the_same() -> None:
    from tests.histories import _, check, history

    ops = history((0, "invoke", "write", 1), (0, "ok", "write", 1),
                  (1, "invoke", "read", _), (1, "ok", "read", 2))
    ce = check("cas-register", ops, 0).keys[0].counterexample
    assert ce is not None
    assert ce.op.description == "read 2" and ce.op.process == 1
    assert (ce.op.invoked, ce.op.completed) == (2, 3)
    out = ce.to_json()
    assert out["explanation"] == ce.explanation
    assert out["op"]["description"] == "read 2" and out["op"]["invoke_index"] == 2
    assert [op["description"] for op in out["window"]["ops"]] == [
        op.description for op in ce.window.ops]
    path = ce.partial_linearizations[0]
    assert out["partial_linearizations"][0]["steps"][-1]["state"] == path.steps[-1].state
