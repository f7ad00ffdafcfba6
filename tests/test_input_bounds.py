"""Hostile history files: `splitbrain check` answers one line naming the file, the line
and the bound, exit 3, no traceback, and never holds more than one bounded line."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from checker.formats import read_ops
from checker.formats.bounds import MAX_DEPTH, MAX_DIGITS, MAX_LINE_CHARS, bounded_lines
from checker.history import HistoryError

SPLITBRAIN = Path(sys.executable).parent / "splitbrain"
DIGITS = "7" * 100_000
DEEP = "[" * 100_000 + "]" * 100_000

# Two good operations, then the bad one on line 3: the line number must be the bad one's.
GOOD = {
    "jsonl": '{"index":0,"process":0,"type":"invoke","f":"write","value":1}\n'
             '{"index":1,"process":0,"type":"ok","f":"write","value":1}\n',
    "edn": "{:index 0 :process 0 :type :invoke :f :write :value 1}\n"
           "{:index 1 :process 0 :type :ok :f :write :value 1}\n",
    "jepsen-log": "INFO  jepsen.util - 0\t:invoke\t:write\t1\n"
                  "INFO  jepsen.util - 0\t:ok\t:write\t1\n",
}  # fmt: skip
BAD = {
    "jsonl": '{{"index":2,"process":1,"type":"invoke","f":"write","value":{}}}\n',
    "edn": "{{:index 2 :process 1 :type :invoke :f :write :value {}}}\n",
    "jepsen-log": "INFO  jepsen.util - 1\t:invoke\t:write\t{}\n",
}


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SPLITBRAIN), "check", str(path)], capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], where: str, words: str) -> None:
    assert done.returncode == 3, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"splitbrain check: {where}: "), lines[0]
    assert words in lines[0], lines[0]


@pytest.mark.parametrize("fmt", sorted(GOOD))
@pytest.mark.parametrize(
    ("value", "words"),
    [(DIGITS, "a number of 100,000 digits"), (DEEP, f"nested more than {MAX_DEPTH} deep")],
    ids=["digits", "nesting"],
)  # fmt: skip
def test_a_huge_number_or_deep_nesting_is_named_with_file_and_line(
    tmp_path: Path, fmt: str, value: str, words: str
) -> None:
    path = tmp_path / {"jsonl": "h.jsonl", "edn": "h.edn", "jepsen-log": "h.log"}[fmt]
    path.write_text(GOOD[fmt] + BAD[fmt].format(value))
    assert_one_line_error(check(path), f"{path}:3", words)


def test_the_bounds_themselves_are_accepted(tmp_path: Path) -> None:
    value = "[" * (MAX_DEPTH - 1) + "9" * MAX_DIGITS + "]" * (MAX_DEPTH - 1)
    path = tmp_path / "edge.jsonl"
    path.write_text(GOOD["jsonl"] + BAD["jsonl"].format(value)
                    + '{"index":3,"process":1,"type":"ok","f":"write"}\n')
    done = check(path)
    assert done.returncode in (0, 1), done  # read and checked: a verdict, not bad input
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "edn", "jepsen-log", "auto"])
def test_a_giant_line_is_refused_having_read_only_the_bound(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "giant.jsonl"
    with path.open("w") as out:
        out.write(GOOD["jsonl"])
        out.write('{"index":2,"process":1,"type":"invoke","f":"write","value":"')
        for _ in range(16):  # 16 times the bound, on line 3
            out.write("x" * MAX_LINE_CHARS)
        out.write('"}\n')
    with path.open(encoding="utf-8") as stream:
        with pytest.raises(HistoryError) as e:
            _, ops = read_ops(stream, str(path), fmt)
            list(ops)
        # What was read of the file: the bound and a buffer's worth, not the line.
        assert stream.buffer.tell() < len(GOOD["jsonl"]) + 2 * MAX_LINE_CHARS
    assert (e.value.line, e.value.source) == (3, str(path))
    assert f"longer than {MAX_LINE_CHARS:,} characters" in str(e.value)
    assert_one_line_error(check(path), f"{path}:3", f"longer than {MAX_LINE_CHARS:,}")


def test_a_line_of_exactly_the_bound_is_read_whole() -> None:
    lines = ["a" * MAX_LINE_CHARS + "\n", "b\n", "c" * MAX_LINE_CHARS]
    assert list(bounded_lines(io.StringIO("".join(lines)), "s")) == lines
    with pytest.raises(HistoryError, match=r"^s:2: line longer"):
        list(bounded_lines(io.StringIO("b\n" + "c" * (MAX_LINE_CHARS + 1)), "s"))


def test_an_edn_form_spread_over_many_lines_is_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "long-form.edn"
    row = "1 " * 1000 + "\n"
    with path.open("w") as out:
        out.write(GOOD["edn"] + "{:index 2 :process 1 :type :invoke :f :write :value [\n")
        for _ in range(MAX_LINE_CHARS // len(row) + 2):
            out.write(row)
        out.write("]}\n")
    assert_one_line_error(check(path), f"{path}:3", "a form longer than")


def test_random_bytes_are_refused_as_not_text(tmp_path: Path) -> None:
    import random

    seed = 19
    path = tmp_path / "noise.jsonl"
    path.write_bytes(random.Random(seed).randbytes(4096))
    done = check(path)
    assert_one_line_error(done, str(path), "not UTF-8 text")


@pytest.mark.parametrize(
    "value", [DIGITS, "[" * 10_000 + "]" * 10_000], ids=["digits", "nesting"]
)  # an argument is at most 128 KiB
def test_an_initial_value_past_the_bounds_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(GOOD["jsonl"])
    done = subprocess.run([str(SPLITBRAIN), "check", "--init", value, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert_one_line_error(done, "--init", "the bound")


def test_a_long_wrong_field_is_shown_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(GOOD["jsonl"] + '{"index":2,"process":1,"type":"' + "x" * 500_000
                    + '","f":"write"}\n')
    assert_one_line_error(check(path), f"{path}:3", "(500,002 characters)")
    assert len(check(path).stderr) < 300
