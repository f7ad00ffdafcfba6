"""Specs: defaults, the shipped specs, and errors that name the field at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec import Spec, SpecError, load, override, parse

ROOT = Path(__file__).resolve().parents[1]


def test_an_empty_spec_is_a_whole_spec() -> None:
    spec = parse({})
    assert spec == Spec()
    assert (spec.system, spec.backend, spec.nodes, spec.workload.name) == (
        "store", "docker", 5, "register"
    )  # fmt: skip


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_loads(path: Path) -> None:
    spec = load(path)
    assert spec.name == path.stem


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nodes": "five"}, "field 'nodes': expected a positive integer, got 'five'"),
        ({"nodes": 0}, "field 'nodes': expected a positive integer, got 0"),
        ({"nodes": True}, "field 'nodes': expected a positive integer, got True"),
        ({"sytem": "etcd"}, "unknown field 'sytem'; known: name, system"),
        ({"system": "mysql"}, "field 'system': expected one of store, etcd or module:Class"),
        ({"backend": "k8s"}, "field 'backend': expected one of docker, local, ssh, got 'k8s'"),
        ({"collect_data": "sometimes"},
         "field 'collect_data': expected one of invalid, always, never, got 'sometimes'"),
        ({"collect_data": True}, "field 'collect_data': expected one of invalid, always, never"),
        ({"workload": {"name": "queue"}}, "'workload'.name: expected one of register, set"),
        ({"workload": {"reads": "stale"}}, "'workload'.reads: expected one of quorum, local"),
        ({"workload": {"name": "append", "reads": "quorum"}},
         "'workload'.reads: expected one of linearizable, serializable (the v3 API's read "
         "modes), got 'quorum'"),
        ({"workload": {"name": "register", "api": "v3", "reads": "local"}},
         "'workload'.reads: expected one of linearizable, serializable"),
        ({"workload": {"name": "register", "api": "v4"}},
         "'workload'.api: expected one of v2, v3, got 'v4'"),
        ({"workload": {"name": "register", "cas_guard": "revision"}},
         "'workload'.cas_guard: only with api: v3"),
        ({"workload": {"name": "register", "api": "v3", "cas_guard": "index"}},
         "'workload'.cas_guard: expected one of value, revision, got 'index'"),
        ({"workload": {"name": "wr", "consistency_models": ["serialisable"]}},
         "'workload'.consistency_models: expected one of strict-serializable"),
        ({"workload": {"name": "wr", "consistency_models": []}},
         "'workload'.consistency_models: expected at least one consistency model"),
        ({"workload": {"name": "append", "min_length": 5}},
         "'workload'.min_length: 5 is more than max_length (4)"),
        ({"workload": {"name": "append", "read_ratio": 1.5}},
         "'workload'.read_ratio: expected a number between 0 and 1, got 1.5"),
        ({"workload": {"name": "append", "key_count": 0}},
         "'workload'.key_count: expected a positive integer, got 0"),
        ({"workload": {"name": "append", "api": "v2"}}, "unknown field 'api'; known: key_count"),
        ({"system_options": {"api": "v2"}, "workload": {"name": "append"}},
         "field 'system_options'.api: the append workload speaks v3, got 'v2'"),
        ({"workload": {"ops_per_kye": 3}}, "'ops_per_kye'; known: reads, rate, timeout"),
        ({"workload": {"ops_per_key": -1}}, "ops_per_key: expected a positive integer"),
        ({"nemesis": {"faults": ["explode"]}}, "'nemesis'.faults: expected one of none, kill"),
        ({"nemesis": {"faults": "kill", "schedule": {"fault": "soon"}}},
         "'nemesis'.schedule.fault: expected a positive number, got 'soon'"),
        ({"nemesis": {"kill": {"targets": ["leader"]}}},
         "'nemesis'.kill: options for a fault not in"),
        ({"checker": {"time_limit": 0}}, "'checker'.time_limit: expected a positive number"),
        ({"client": "mine"}, "field 'client': expected module:Class, got 'mine'"),
        ({"nemesis": {"faults": ["kill"], "kill": {"targets": ["everyone"]}}},
         "'nemesis': kill: unknown target 'everyone'"),
        ({"nemesis": {"faults": ["kill"], "kill": {"victims": 2}}},
         "'nemesis': nemesis.kill: bad options"),
        ({"nemesis": {"faults": ["kill"], "schedule": {"kind": "list", "steps": [
            {"at": 1, "f": "partition", "value": "halves"}]}}},
         "steps[0].f: expected one of kill, restart, got 'partition'"),
        ([1, 2], "expected a mapping"),
        ({"subnet_pool": "10.0.0.0/30", "nodes": 3},
         "field 'subnet_pool': 10.0.0.0/30 leaves room for 1 node(s) in a run's /30, and "
         "the spec has 3"),
        ({"subnet_pool": "10.0.0.0/33"}, "field 'subnet_pool': expected an IPv4 network"),
        ({"subnet_pool": "10.97.0.0/16", "nodes": 300},
         "leaves room for 253 node(s) in a run's /24, and the spec has 300"),
        ({"nemesis": {"faults": ["kill"], "kill": {"signal": "SIGFOO"}}},
         "nemesis.kill.signal: expected one of SIGKILL, SIGTERM, SIGINT, SIGQUIT, SIGABRT, "
         "SIGHUP, got 'SIGFOO'"),
        ({"nemesis": {"faults": ["kill"], "schedule": {"kind": "list", "steps": [
            {"at": 1, "f": "kill", "value": "leader"}, {"at": 10, "f": "restart"},
            {"at": 5, "f": "kill", "value": "leader"}]}}},
         "'nemesis'.schedule.steps[2].at: 5 s comes before the step above it (10 s)"),
    ],
)  # fmt: skip
def test_a_wrong_field_is_named_with_what_it_must_be(data: object, message: str) -> None:
    with pytest.raises(SpecError) as e:
        parse(data, "spec.yaml")
    assert message in str(e.value)
    assert str(e.value).startswith("spec.yaml")


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nnodes: [3\n")
    with pytest.raises(SpecError, match=r"broken\.yaml:\d+: not valid YAML"):
        load(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing yet\n", "{}\n"])
def test_an_empty_spec_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "blank.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=r"^\S*blank\.yaml: empty spec"):
        load(path)
    path.write_text("name: x\n")
    assert load(path) == Spec(name="x")


def test_a_spec_file_of_random_bytes_is_refused_in_one_line(tmp_path: Path) -> None:
    import random

    seed = 19
    path = tmp_path / "noise.yaml"
    path.write_bytes(random.Random(seed).randbytes(4096))
    with pytest.raises(SpecError, match=r"noise\.yaml: not UTF-8 text") as e:
        load(path)
    assert "\n" not in str(e.value), f"seed {seed}"
    path.write_bytes(b"name: a\x00b\n")  # UTF-8, but not YAML
    with pytest.raises(SpecError, match=r"noise\.yaml: not valid YAML: unacceptable") as e:
        load(path)
    assert "\n" not in str(e.value)


def test_a_huge_wrong_value_is_shown_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "scalar.yaml"
    path.write_text("x" * 100_000 + "\n")
    cut = r"expected a mapping, got 'xxx.*\(100,002 characters\)$"
    with pytest.raises(SpecError, match=cut) as e:
        load(path)
    assert len(str(e.value)) < 200
    path.write_text("name: x\nnemesis: {faults: [kill], kill: {signal: " + "S" * 10_000 + "}}\n")
    with pytest.raises(SpecError, match=r"nemesis\.kill\.signal") as e:
        load(path)
    assert len(str(e.value)) < 300


def test_a_spec_file_past_the_bound_is_refused_unread() -> None:
    from harness.spec import MAX_SPEC_CHARS

    with pytest.raises(SpecError, match=r"^/dev/zero: longer than 1,048,576 characters"):
        load("/dev/zero")  # endless: read no further than the bound
    assert MAX_SPEC_CHARS == 1 << 20


def test_the_subnet_pool_bounds_docker_clusters_only() -> None:
    assert parse({"backend": "local", "nodes": 300}).nodes == 300
    assert parse({"backend": "local", "nodes": 7, "subnet_pool": "10.0.0.0/30"}).nodes == 7
    with pytest.raises(SpecError, match="field 'subnet_pool': expected an IPv4 network"):
        parse({"backend": "local", "subnet_pool": "nope"})
    with pytest.raises(SpecError, match="room for 5 node"):
        override(parse({"backend": "local", "nodes": 7, "subnet_pool": "10.0.0.0/29"}),
                 backend="docker")
    assert parse({"nodes": 5, "subnet_pool": "10.0.0.0/29"}).nodes == 5


def test_the_kill_signals_allowed_are_accepted() -> None:
    from nemesis.kill import SIGNALS

    for sig in SIGNALS:
        spec = parse({"nemesis": {"faults": ["kill"], "kill": {"signal": sig}}})
        assert spec.nemesis.options["kill"]["signal"] == sig


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nothere\.yaml"):
        load(tmp_path / "nothere.yaml")


def test_command_line_values_override_and_are_checked() -> None:
    spec = parse({"nemesis": {"faults": ["kill"], "kill": {"targets": ["leader"]}}})
    changed = override(spec, system="etcd", nodes=3, faults=[], seed=9)
    assert (changed.system, changed.nodes, changed.nemesis.faults, changed.seed) == (
        "etcd", 3, (), 9
    )  # fmt: skip
    assert changed.nemesis.options == {}
    with pytest.raises(SpecError, match="command line: field 'nodes'"):
        override(spec, nodes=-2)
    steps = {"kind": "list", "steps": [{"at": 1, "f": "kill", "value": "leader"}]}
    listed = parse({"nemesis": {"faults": ["kill"], "schedule": steps}})
    assert override(listed, seed=3).nemesis == listed.nemesis
    assert override(spec, seed=3).nemesis == spec.nemesis


def test_a_spec_without_a_seed_gets_one_and_keeps_it() -> None:
    spec = parse({}).with_seed()
    assert isinstance(spec.seed, int)
    assert spec.with_seed() == spec


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_a_resolved_spec_reads_back_as_itself(path: Path) -> None:
    from harness.spec import document

    spec = load(path).with_seed()
    assert parse(document(spec.to_json())) == spec
    steps = {"kind": "list", "steps": [{"at": 1, "f": "kill", "value": "leader"}]}
    listed = parse({"nemesis": {"faults": ["kill"], "schedule": steps}})
    assert parse(document(listed.to_json())) == listed


def test_register_writers_are_checked_when_the_spec_is_read() -> None:
    with pytest.raises(SpecError, match=r"'workload'\.writers: 5 leaves no reader among the 5"):
        parse({"concurrency": 5, "workload": {"writers": 5}})
    with pytest.raises(SpecError, match=r"'workload'\.writers: expected a whole number >= 0"):
        parse({"workload": {"writers": -1}})
    assert parse({"workload": {"writers": 1, "group_size": 5}}).workload.options["writers"] == 1
