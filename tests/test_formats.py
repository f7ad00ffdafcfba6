"""Reading histories: native JSONL, EDN, Jepsen log lines; bad input names file and line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from checker import UNOBSERVED, HistoryError, check_file, pair
from checker.formats import detect, read_ops
from tests.conftest import require_corpus


def ops_of(text: str, fmt: str = "auto", name: str = "h") -> list:
    _used, ops = read_ops(io.StringIO(text), name, fmt)
    return list(ops)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_jsonl_fields_and_unobserved_versus_null() -> None:
    ops = ops_of(
        '{"index": 0, "process": 0, "type": "invoke", "f": "read", "key": "a", "time": 5}\n'
        '{"index": 1, "process": 0, "type": "ok", "f": "read", "key": "a", "value": null}\n'
        '\n'
        '{"index": 2, "process": "nemesis", "type": "info", "f": "start", "value": "cut"}\n'
    )
    assert [o.index for o in ops] == [0, 1, 2]
    assert ops[0].value is UNOBSERVED and ops[0].time == 5 and ops[0].key == "a"
    assert ops[1].value is None
    assert ops[2].process == "nemesis"
    (read,) = list(pair(ops))
    assert read.value is None and read.outcome == "ok" and (read.invoked, read.completed) == (0, 1)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('{"process": 0, "type": "invoke", "f": "read"}\n{"process": 0, "type": "ok"', 2,
         "not a JSON object"),
        ('{"process": 0, "type": "done", "f": "read"}\n', 1, "'type'"),
        ('{"process": 1.5, "type": "invoke", "f": "read"}\n', 1, "'process'"),
        ('{"process": 0, "type": "invoke"}\n', 1, "'f'"),
        ('{"process": 0, "type": "invoke", "f": "w", "time": "soon"}\n', 1, "'time'"),
        ('[1, 2]\n', 1, "must be a map"),
    ],
)
def test_jsonl_bad_lines_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(HistoryError) as e:
        ops_of(text, name="bad.jsonl")
    assert e.value.source == "bad.jsonl" and e.value.line == line
    assert words in str(e.value) and f"bad.jsonl:{line}" in str(e.value)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('{"process": 0, "type": "ok", "f": "read", "value": 1}\n', 1, "has no invocation"),
        ('{"process": 0, "type": "invoke", "f": "read"}\n'
         '{"process": 0, "type": "invoke", "f": "write", "value": 2}\n', 2, "has not completed"),
        ('{"process": 0, "type": "invoke", "f": "read"}\n'
         '{"process": 0, "type": "ok", "f": "write", "value": 2}\n', 2, "invoked read"),
        ('{"index": 4, "process": 0, "type": "invoke", "f": "read"}\n'
         '{"index": 4, "process": 0, "type": "ok", "f": "read", "value": 2}\n', 2, "index 4"),
    ],
)
def test_pairing_errors_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, "h.jsonl", text)
    with pytest.raises(HistoryError) as e:
        check_file(path, model="register")
    assert (e.value.source, e.value.line) == (path, line)
    assert words in str(e.value)


def test_info_frees_the_process_and_stays_indeterminate() -> None:
    ops = ops_of(
        '{"process": 0, "type": "invoke", "f": "write", "value": 1}\n'
        '{"process": 0, "type": "info", "f": "write", "error": "timeout"}\n'
        '{"process": 0, "type": "invoke", "f": "read"}\n'
    )
    write_, read = sorted(pair(ops), key=lambda o: o.invoked)
    assert write_.outcome == "info" and write_.completed is None and write_.value == 1
    assert write_.error == "timeout"
    assert read.outcome == "info" and read.completed is None  # never completed


EDN_VECTOR = """; a comment
[{:process 0, :type :invoke, :f :write, :value 1}
 {:process 0 :type :ok :f :write :value 1} ; trailing comment
 {:process :nemesis, :type :info, :f :start,
  :value "Cut off [:n3 #[:n4 :n5]] ; not a comment"}
 {:process 1, :type :invoke, :f :cas, :value [1 2], :time 12}
 {:process 1, :type :fail, :f :cas, :value [1 2], :error :timed-out}]
"""


def test_edn_vector_keywords_comments_and_strings() -> None:
    ops = ops_of(EDN_VECTOR)
    assert [(o.process, o.type, o.f) for o in ops] == [
        (0, "invoke", "write"), (0, "ok", "write"), ("nemesis", "info", "start"),
        (1, "invoke", "cas"), (1, "fail", "cas"),
    ]
    assert ops[2].value.endswith("; not a comment")
    assert ops[3].value == [1, 2] and ops[3].time == 12 and ops[4].error == "timed-out"
    assert [o.line for o in ops] == [2, 3, 4, 6, 7]


def test_edn_list_one_map_per_line_and_jepsen_records() -> None:
    listed = ops_of("({:process 0 :type :invoke :f :read}\n {:process 0 :type :ok :f :read "
                    ":value 3})")
    per_line = ops_of('{:process 0, :type :invoke, :f :get, :key "k", :value nil}\n'
                      '{:process 0, :type :ok, :f :get, :key "k", :value "x"}\n')
    records = ops_of("[#jepsen.history.Op{:index 0, :time 1, :type :invoke, :process 0, "
                     ":f :read, :value nil}\n#jepsen.history.Op{:index 1, :time 2, :type :ok, "
                     ":process 0, :f :read, :value 2}]")
    assert listed[1].value == 3
    assert per_line[1].key == "k" and per_line[1].value == "x" and per_line[0].value is None
    assert [(o.index, o.value) for o in records] == [(0, None), (1, 2)]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[{:process 0 :type :invoke :f :read}\n {:process 0 :type :ok :f :read :value ~~}]\n",
         2, "not valid EDN"),
        ("[{:process 0 :type :invoke :f :read}\n {:process 0 :type :ok", 2, "unfinished"),
        ("[{:process 0 :type :invoke :f :read}\n 42]\n", 2, "must be a map"),
        ("[{:process 0 :type :invoke :f :read}]\n}\n", 2, "unbalanced"),
        ("[{:process 0 :type :invoke :f :read}\n {:process 0 :type :oops :f :read}]\n", 2,
         "'type'"),
    ],
)
def test_edn_bad_input_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(HistoryError) as e:
        ops_of(text, name="h.edn")
    assert (e.value.source, e.value.line) == ("h.edn", line)
    assert words in str(e.value)


def test_edn_independent_tuples_become_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "h.edn", """[
{:process 0, :type :invoke, :f :write, :value [:a 1]}
{:process 0, :type :ok, :f :write, :value [:a 1]}
{:process 1, :type :invoke, :f :read, :value [:b nil]}
{:process 1, :type :ok, :f :read, :value [:b 1]}
{:process 2, :type :invoke, :f :cas, :value [:a [1 2]]}
{:process 2, :type :ok, :f :cas, :value [:a [1 2]]}]""")
    result = check_file(path, model="cas-register", initial=0).result
    assert {k.key: k.valid for k in result.keys} == {"a": True, "b": False}


JEPSEN_LOG = """\
2017-03-13 09:45:31,427{GMT}\tINFO\t[jepsen worker 3] jepsen.core: Worker 3 starting
INFO  jepsen.util - 4\t:invoke\t:read\tnil
INFO  jepsen.util - 4\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:write\t1
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 2\t:invoke\t:cas\t[1 4]
INFO  jepsen.util - 1\t:ok\t:write\t1
INFO  jepsen.util - 2\t:fail\t:cas\t[1 4]
INFO  jepsen.util - 3\t:invoke\t:write\t2
INFO  jepsen.util - 3\t:info\t:write\t:timed-out
2017-03-13 09:45:31,427{GMT}\tINFO\t[jepsen worker 0] jepsen.util: 0\t:invoke\t:read\tnil
2017-03-13 09:45:32,427{GMT}\tINFO\t[jepsen worker 0] jepsen.util: 0\t:fail\t:read\t:timed-out
"""


def test_jepsen_log_lines(tmp_path: Path) -> None:
    ops = ops_of(JEPSEN_LOG)
    assert detect(JEPSEN_LOG.splitlines()) == "jepsen-log"
    assert len(ops) == 11
    assert ops[0].line == 2 and ops[0].value is UNOBSERVED and ops[1].value is None
    assert ops[3].process == "nemesis"
    assert ops[8].type == "info" and ops[8].value is UNOBSERVED and ops[8].error == "timed-out"
    assert ops[10].error == "timed-out"
    # The failed cas is an observation (the value was not 1 at some instant):
    # with the write of 1 completing before it, that is impossible.
    path = write(tmp_path, "etcd.log", JEPSEN_LOG)
    result = check_file(path)
    assert result.format == "jepsen-log" and result.result.model == "etcd"
    assert result.result.valid is True  # the cas may precede the write: they overlap
    strict = JEPSEN_LOG.replace("INFO  jepsen.util - 2\t:invoke\t:cas\t[1 4]\n", "").replace(
        "INFO  jepsen.util - 2\t:fail\t:cas\t[1 4]\n",
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[1 4]\nINFO  jepsen.util - 2\t:fail\t:cas\t[1 4]\n",
    )
    assert check_file(write(tmp_path, "strict.log", strict)).result.valid is False


def test_jepsen_log_malformed_op_line() -> None:
    with pytest.raises(HistoryError) as e:
        ops_of("INFO  jepsen.util - 3\t:invoke\n", fmt="jepsen-log", name="j.log")
    assert e.value.line == 1 and "process, type, f and value" in str(e.value)


def test_format_detection_and_unknown(tmp_path: Path) -> None:
    assert detect(['{"process": 0}']) == "jsonl"
    assert detect(["[{:process 0}"]) == "edn"
    assert detect(["", "; comment", "{:process 0}"]) == "edn"
    with pytest.raises(HistoryError, match="cannot tell the format"):
        check_file(write(tmp_path, "h.txt", "hello\n"))
    with pytest.raises(HistoryError, match="not UTF-8"):
        path = tmp_path / "bin.jsonl"
        path.write_bytes(b'{"process": 0, "type": "invoke", "f": "read"}\n\xff\xfe\n')
        check_file(str(path))
    with pytest.raises(HistoryError, match="No such file"):
        check_file(str(tmp_path / "missing.jsonl"))


EDN_FORMS = [
    "nil", "true", "false", "-3", "42", "1.5", "-2.5e3", "1e5", '"a\\"b\\\\c\\n"', '"x;y"',
    "[1 2 [3]]", "(1 2)", "{:a 1, :b nil}", "{}", "[]", ":kw", '{:value [:read "k" 1]}',
    '{:process 0, :type :invoke, :f :get, :key "0", :value nil}',
    # left to edn-format:
    ":ns/kw", "sym", "#{1 2}", "\\c", "1N", "1.5M", '"\\u0041"', "#inst \"2020-01-01\"",
    "{[1 2] 3}", "[1 ; comment\n 2]",
]


@pytest.mark.parametrize("text", EDN_FORMS)
def test_simple_edn_reader_agrees_with_edn_format(text: str) -> None:
    from checker.formats import edn_fast
    from checker.formats.edn import edn_format, plain

    try:
        expected = plain(edn_format().loads(text))
    except Exception:
        expected = "error"
    try:
        got = edn_fast.loads(text)
    except edn_fast.NotSimple:
        return  # edn-format reads it
    assert got == expected and type(got) is type(expected), text


def test_simple_edn_reader_agrees_on_the_corpus() -> None:
    from checker.formats import edn_fast
    from checker.formats.edn import edn_format, plain, split_forms

    root = require_corpus()
    forms = 0
    for path in sorted(root.rglob("*.edn"))[:40] + sorted(root.rglob("*.txt")):
        with path.open(encoding="utf-8") as stream:
            for k, (text, line) in enumerate(split_forms(stream, str(path))):
                if k >= 60:  # edn-format is slow; the first forms of each file will do
                    break
                forms += 1
                assert edn_fast.loads(text) == plain(edn_format().loads(text)), (path, line)
    assert forms > 1000


@pytest.mark.parametrize("text", [
    "{:process 0, :type :invoke, :f :read, :value nil}", "{:a 1:b 2}", "{:a [1 2]:b 2}",
    "{:a [1 2x]}", "{:a [1,2],:b 3}", '{:a "s", :b [1 "q" :k]}', "{:a -1.5, :b true}",
])
def test_flat_maps_agree_with_edn_format(text: str) -> None:
    test_simple_edn_reader_agrees_with_edn_format(text)
