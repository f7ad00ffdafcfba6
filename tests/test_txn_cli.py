"""`splitbrain check --workload append|wr`: verdicts, explanations, JSON, EDN, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from checker.formats import write_jsonl
from checker.txn.simulate import TxnWorkload, simulate
from harness.cli import main

STALE = [  # process 1 reads key 3 as empty after process 0's append of 5 completed
    '{"index":0,"process":0,"type":"invoke","f":"txn","value":[["append",3,5]]}',
    '{"index":1,"process":0,"type":"ok","f":"txn","value":[["append",3,5]]}',
    '{"index":2,"process":1,"type":"invoke","f":"txn","value":[["r",3,null]]}',
    '{"index":3,"process":1,"type":"ok","f":"txn","value":[["r",3,[]]]}',
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("kind", ["append", "wr"])
def test_valid_history_exits_0(kind: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    ops = simulate(TxnWorkload(kind=kind, txns=300), seed=7)  # type: ignore[arg-type]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(write_jsonl(op) for op in ops))
    code, out, _ = run(capsys, "check", "--workload", kind, str(path))
    assert code == 0, out
    assert f"{path}: valid for strict-serializable ({kind}, 300 transactions" in out


def test_stale_read_exits_1_with_the_cycle_explained(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "stale.jsonl", STALE)
    code, out, _ = run(capsys, "check", "--workload", "append", path)
    assert code == 1
    assert "INVALID for strict-serializable" in out
    assert "G-single-realtime" in out
    assert "T1 < T2 because T1 completed (line 2) before T2 began (line 3)" in out
    assert "T1 = ok txn by process 0 (lines 1-2): [[append 3 5]]" in out
    assert "not strong-snapshot-isolation (nor strict-serializable)" in out

    code, out, _ = run(capsys, "check", "--workload", "append", "--json", path)
    result = json.loads(out)
    assert code == 1 and result["valid"] is False and result["verdict"] == "invalid"
    assert result["anomaly_types"] == ["G-single-realtime"]
    [anomaly] = result["anomalies"]
    assert [s["rel"] for s in anomaly["cycle"]] == ["realtime", "rw"]
    assert [t["invoke_line"] for t in anomaly["txns"]] == [1, 3]

    code, out, _ = run(capsys, "check", "--workload", "append",
                       "--consistency-models", "serializable", path)
    assert code == 0, out  # serializability allows reading the past


def test_edn_history_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "history.edn", [
        "[{:type :invoke, :f :txn, :value [[:append 1 2] [:r 1 nil]], :process 0, :time 1, "
        ":index 0}",
        " {:type :ok, :f :txn, :value [[:append 1 2] [:r 1 [2]]], :process 0, :time 2, "
        ":index 1}",
        " {:type :invoke, :f :txn, :value [[:r 1 nil]], :process 1, :time 3, :index 2}",
        " {:type :ok, :f :txn, :value [[:r 1 [2 2]]], :process 1, :time 4, :index 3}]",
    ])
    junit = tmp_path / "junit.xml"
    code, out, _ = run(capsys, "check", "--workload", "append", "--junit", str(junit), path)
    assert code == 1, out
    assert "duplicate-elements" in out and "holds element 2 more than once" in out
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and "duplicate-elements" in failure.get("message", "")


@pytest.mark.parametrize(("line", "message"), [
    ('{"index":0,"process":0,"type":"invoke","f":"txn","value":[["append",1]]}',
     "bad.jsonl:1: micro-operation ['append', 1]: must be a list [f, key, value]"),
    ('{"index":0,"process":0,"type":"invoke","f":"txn","value":[["w",1,2]]}',
     "bad.jsonl:1: micro-operation ['w', 1, 2]: f must be 'r' or 'append' in the append"),
    ('{"index":0,"process":0,"type":"invoke","f":"read","value":null}',
     "bad.jsonl:1: expected f 'txn' in the append workload, got 'read'"),
    ('{"index":0,"process":0,"type":"invoke","f":"txn","value":5}',
     "bad.jsonl:1: a transaction's value must be a list of micro-operations, got 5"),
])
def test_malformed_transaction_exits_3_naming_the_line(
        line: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.jsonl", [line])
    code, _, err = run(capsys, "check", "--workload", "append", path)
    assert code == 3
    assert message in err


def test_read_of_a_list_that_is_not_one_names_the_completion_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.jsonl", [
        '{"index":0,"process":0,"type":"invoke","f":"txn","value":[["r",1,null]]}',
        '{"index":1,"process":0,"type":"ok","f":"txn","value":[["r",1,7]]}',
    ])
    code, _, err = run(capsys, "check", "--workload", "append", path)
    assert code == 3
    assert "bad.jsonl:2: micro-operation ['r', 1, 7]: a read of a list must be null" in err


def test_unreadable_files_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = run(capsys, "check", "--workload", "wr", str(binary))
    assert code == 3 and "binary.jsonl: not UTF-8 text" in err
    code, _, err = run(capsys, "check", "--workload", "wr", str(tmp_path / "missing.jsonl"))
    assert code == 3 and "missing.jsonl: cannot read: No such file" in err


def test_unknown_consistency_model_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "stale.jsonl", STALE)
    code, _, err = run(capsys, "check", "--workload", "append", "--consistency-models",
                       "serializable,snapshot-isolaton", path)
    assert code == 3 and "unknown consistency model 'snapshot-isolaton'" in err
    code, _, err = run(capsys, "check", "--consistency-models", "serializable", path)
    assert code == 3 and "--consistency-models needs --workload" in err
    code, _, err = run(capsys, "check", "--workload", "append", "--model", "register", path)
    assert code == 3 and "--model and --init are for linearizability" in err


def test_out_of_time_is_unknown_unless_a_forbidden_anomaly_is_found(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "skew.jsonl", [  # write skew: a G2-item cycle
        '{"index":0,"process":0,"type":"invoke","f":"txn","value":[["append",1,1],["r",2,null]]}',
        '{"index":1,"process":1,"type":"invoke","f":"txn","value":[["append",2,1],["r",1,null]]}',
        '{"index":2,"process":0,"type":"ok","f":"txn","value":[["append",1,1],["r",2,[]]]}',
        '{"index":3,"process":1,"type":"ok","f":"txn","value":[["append",2,1],["r",1,[]]]}',
    ])
    weak = ("check", "--workload", "append", "--consistency-models", "read-committed")
    code, out, _ = run(capsys, *weak, path)
    assert code == 0, out  # read committed allows write skew
    code, out, _ = run(capsys, *weak, "--time-limit", "1e-9", path)
    assert code == 2, out  # the search that would rule out G1c never ran
    assert "incomplete:" in out
    code, out, _ = run(capsys, "check", "--workload", "append", "--time-limit", "1e-9", path)
    assert code == 1, out  # any cycle at all is enough against strict serializability
