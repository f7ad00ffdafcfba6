"""Test specs: YAML in, a checked `Spec` out (docs/specs.md has the schema).

Every field has a default, so `{name: x}` is a whole spec. A wrong field is an error that
names it, what it must be, and what it was; an unknown field names the known ones.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checker.txn.models import MODELS
from harness.etcd_v3 import CAS_GUARDS
from harness.workload import API_READS, FIXED_OPTIONS, WORKLOADS
from nemesis import NEMESES, make_nemesis

SYSTEM_NAMES = ("store", "etcd")
BACKENDS = ("docker", "local", "ssh")
SCHEDULES = ("interval", "random", "list")
COLLECT_DATA = ("invalid", "always", "never")  # when the nodes' data directories are kept
SUBNET_PREFIX = 24  # each run's own network (harness/docker.py)
MAX_SPEC_CHARS = 1 << 20  # a spec file is read whole: never more than this


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class WorkloadSpec:
    name: str = "register"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepSpec:
    at: float
    f: str
    value: Any = None


@dataclass(frozen=True)
class ScheduleSpec:
    kind: str = "interval"
    fault: float = 5.0  # seconds a fault lasts
    heal: float = 10.0  # seconds of health before each fault
    steps: tuple[StepSpec, ...] = ()  # kind: list


@dataclass(frozen=True)
class NemesisSpec:
    faults: tuple[str, ...] = ()
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per fault
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)


@dataclass(frozen=True)
class CheckerSpec:
    time_limit: float = 120.0
    memory_limit_mb: float = 4096.0


@dataclass(frozen=True)
class SshSpec:
    """How the ssh backend reaches its hosts (docs/real-machines.md)."""

    hosts: tuple[str, ...] = ()
    user: str = "root"
    port: int = 22
    identity: str | None = None  # a private key file; None: the SSH agent and ~/.ssh's keys
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    strict_host_keys: bool = True  # false: host keys unchecked, said loudly in the run
    root: str = "/var/lib/splitbrain"  # on each host: the venv and the runs' directories


@dataclass(frozen=True)
class Spec:
    name: str = "test"
    system: str = "store"
    system_options: dict[str, Any] = field(default_factory=dict)
    client: str | None = None  # module:Class, instead of the system's own client
    backend: str = "docker"
    nodes: int = 5
    concurrency: int = 10
    time_limit: float = 60.0
    seed: int | None = None
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    nemesis: NemesisSpec = field(default_factory=NemesisSpec)
    checker: CheckerSpec = field(default_factory=CheckerSpec)
    subnet_pool: str = "10.97.0.0/16"
    results: str = "results"
    collect_data: str = "invalid"  # the nodes' data into the results: not valid / always / never
    ssh: SshSpec = field(default_factory=SshSpec)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_seed(self) -> Spec:
        """This spec with its seed fixed (drawn now when none was given)."""
        if self.seed is not None:
            return self
        return dataclasses.replace(self, seed=random.SystemRandom().randrange(1, 2**31))


def _shown(value: Any, limit: int = 60) -> str:
    """The value as an error message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _where(path: str, name: str) -> str:
    return f"{path}: field {name!r}"


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise SpecError(f"{where}: expected {what}, got {_shown(value)}")
    if not isinstance(value, kind):
        raise SpecError(f"{where}: expected {what}, got {_shown(value)}")
    return value


def _positive_int(value: Any, where: str) -> int:
    _expect(value, int, where, "a positive integer")
    if value <= 0:
        raise SpecError(f"{where}: expected a positive integer, got {_shown(value)}")
    return int(value)


def _positive_number(value: Any, where: str) -> float:
    _expect(value, (int, float), where, "a positive number")
    if value <= 0:
        raise SpecError(f"{where}: expected a positive number, got {_shown(value)}")
    return float(value)


def _one_of(value: Any, allowed: tuple[str, ...], where: str, extra: str = "") -> str:
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(
            f"{where}: expected one of {', '.join(allowed)}{extra}, got {_shown(value)}"
        )
    return value


def _mapping(value: Any, where: str, known: tuple[str, ...] | None = None) -> dict[str, Any]:
    if value is None:
        return {}
    _expect(value, Mapping, where, "a mapping")
    if known is not None:
        for name in value:
            if name not in known:
                raise SpecError(f"{where}: unknown field {_shown(name)}; known: {', '.join(known)}")
    return dict(value)


def _workload_options(name: str, options: dict[str, Any], where: str) -> dict[str, Any]:
    cls = WORKLOADS[name]
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.name.startswith("_")}
    settable = [n for n in fields if n not in FIXED_OPTIONS]
    api = options.get("api", getattr(cls, "api", "v2"))
    if "api" in options:
        api = _one_of(api, tuple(API_READS), f"{where}.api")
    for key, value in options.items():
        if key not in settable:
            raise SpecError(f"{where}: unknown field {_shown(key)}; known: {', '.join(settable)}")
        default = fields[key].default
        here = f"{where}.{key}"
        if key == "reads":
            _one_of(value, API_READS[api], here, f" (the {api} API's read modes)")
        elif key == "cas_guard":
            _one_of(value, CAS_GUARDS, here)
            if api != "v3":
                raise SpecError(f"{here}: only with api: v3 (a v2 cas compares the value)")
        elif key == "consistency_models":
            models = [value] if isinstance(value, str) else value
            _expect(models, list, here, "a list of consistency model names")
            if not models:
                raise SpecError(f"{here}: expected at least one consistency model")
            for model in models:
                _one_of(model, tuple(MODELS), here)
        elif key == "writers":
            _expect(value, int, here, "a whole number >= 0")
            if isinstance(value, bool) or value < 0:
                raise SpecError(f"{here}: expected a whole number >= 0, got {_shown(value)}")
        elif isinstance(default, bool):
            _expect(value, bool, here, "true or false")
        elif isinstance(default, float):
            _expect(value, (int, float), here, "a number")
            if value < 0 or (key == "read_ratio" and value > 1):
                bound = "between 0 and 1" if key == "read_ratio" else ">= 0"
                raise SpecError(f"{here}: expected a number {bound}, got {_shown(value)}")
        elif isinstance(default, int) or key == "group_size":
            _positive_int(value, here)
    low = options.get("min_length", fields["min_length"].default if "min_length" in fields
                      else 0)
    high = options.get("max_length", fields["max_length"].default if "max_length" in fields
                       else low)
    if low > high:
        raise SpecError(f"{where}.min_length: {low} is more than max_length ({high})")
    return options


def parse(data: Any, path: str = "<spec>") -> Spec:
    top = _mapping(data, path, tuple(f.name for f in dataclasses.fields(Spec)))
    spec: dict[str, Any] = {}
    w = lambda name: _where(path, name)  # noqa: E731
    if "name" in top:
        spec["name"] = _expect(top["name"], str, w("name"), "a string")
        if not spec["name"] or "/" in spec["name"] or spec["name"].startswith("."):
            raise SpecError(
                f"{w('name')}: expected a name usable as a folder, got {_shown(spec['name'])}"
            )
    if "system" in top:
        system = _expect(top["system"], str, w("system"), "store, etcd or module:Class")
        if system not in SYSTEM_NAMES and ":" not in system:
            _one_of(system, SYSTEM_NAMES, w("system"), " or module:Class")
        spec["system"] = system
    if "system_options" in top:
        spec["system_options"] = _mapping(top["system_options"], w("system_options"))
    if top.get("client") is not None:
        client = _expect(top["client"], str, w("client"), "module:Class")
        if ":" not in client:
            raise SpecError(f"{w('client')}: expected module:Class, got {_shown(client)}")
        spec["client"] = client
    if "backend" in top:
        spec["backend"] = _one_of(top["backend"], BACKENDS, w("backend"))
    for name in ("nodes", "concurrency"):
        if name in top:
            spec[name] = _positive_int(top[name], w(name))
    if "time_limit" in top:
        spec["time_limit"] = _positive_number(top["time_limit"], w("time_limit"))
    if top.get("seed") is not None:
        spec["seed"] = _expect(top["seed"], int, w("seed"), "an integer")
    for name in ("subnet_pool", "results"):
        if name in top:
            spec[name] = _expect(top[name], str, w(name), "a string")
    if "collect_data" in top:
        spec["collect_data"] = _one_of(top["collect_data"], COLLECT_DATA, w("collect_data"))
    if "subnet_pool" in top or spec.get("backend", Spec.backend) == "docker":
        docker = spec.get("backend", Spec.backend) == "docker"
        _subnet_pool(spec.get("subnet_pool", Spec.subnet_pool),
                     spec.get("nodes", Spec.nodes) if docker else 0, w("subnet_pool"))
    if "workload" in top:
        raw = _mapping(top["workload"], w("workload"))
        name = _one_of(raw.pop("name", "register"), tuple(WORKLOADS), f"{w('workload')}.name")
        spec["workload"] = WorkloadSpec(name, _workload_options(name, raw, w("workload")))
    _same_api(spec, w("system_options"))
    if "workload" in spec and spec["workload"].options.get("writers"):
        options = spec["workload"].options
        size = options.get("group_size") or spec.get("concurrency", Spec.concurrency)
        if options["writers"] >= size:
            raise SpecError(f"{w('workload')}.writers: {options['writers']} leaves no reader "
                            f"among the {size} workers on a key (group_size, or concurrency)")
    if "ssh" in top or spec.get("backend") == "ssh":
        spec["ssh"] = _ssh(top.get("ssh"), w("ssh"))
        if spec.get("backend") == "ssh":
            hosts = len(spec["ssh"].hosts)
            if not hosts:
                raise SpecError(f"{w('ssh')}.hosts: the ssh backend needs hosts (or --hosts)")
            if spec.setdefault("nodes", hosts) != hosts:
                raise SpecError(f"{w('nodes')}: {spec['nodes']} nodes on {hosts} ssh hosts; "
                                "one node per host (leave nodes out)")
    if "nemesis" in top:
        spec["nemesis"] = _nemesis(top["nemesis"], w("nemesis"))
    if "checker" in top:
        raw = _mapping(top["checker"], w("checker"), ("time_limit", "memory_limit_mb"))
        spec["checker"] = CheckerSpec(
            **{k: _positive_number(v, f"{w('checker')}.{k}") for k, v in raw.items()}
        )
    return Spec(**spec)


def _ssh(value: Any, where: str) -> SshSpec:
    fields = tuple(f.name for f in dataclasses.fields(SshSpec))
    raw = _mapping(value, where, fields)
    hosts = raw.get("hosts", [])
    if isinstance(hosts, str):
        hosts = [h.strip() for h in hosts.split(",") if h.strip()]
    _expect(hosts, list, f"{where}.hosts", "a list of host names or addresses")
    for host in hosts:
        _expect(host, str, f"{where}.hosts", "a list of host names or addresses")
    if len(set(hosts)) != len(hosts):
        raise SpecError(f"{where}.hosts: a host is named twice in {_shown(hosts)}")
    found: dict[str, Any] = {"hosts": tuple(hosts)}
    for name in ("user", "identity", "known_hosts", "root"):
        if raw.get(name) is not None:
            found[name] = _expect(raw[name], str, f"{where}.{name}", "a string")
    if "port" in raw:
        found["port"] = _positive_int(raw["port"], f"{where}.port")
    if "strict_host_keys" in raw:
        found["strict_host_keys"] = _expect(raw["strict_host_keys"], bool,
                                            f"{where}.strict_host_keys", "true or false")
    return SshSpec(**found)


def _same_api(spec: dict[str, Any], where: str) -> None:
    """A built-in system's `api`, when the spec sets it, must be the workload's."""
    api = spec.get("system_options", {}).get("api")
    if api is None:
        return
    workload = spec.get("workload", WorkloadSpec())
    cls = WORKLOADS[workload.name]
    wanted = workload.options.get("api", getattr(cls, "api", "v2"))
    if api != wanted:
        raise SpecError(f"{where}.api: the {workload.name} workload speaks {wanted}, got "
                        f"{_shown(api)}; leave it out (the workload's API is used)")


def _subnet_pool(pool: str, nodes: int, where: str) -> None:
    """The pool must be IPv4 and each run's subnet in it (a /SUBNET_PREFIX, or the pool
    itself when smaller) must hold a gateway and every node (`nodes`: 0 on a backend
    that uses no pool)."""
    try:
        network = ipaddress.IPv4Network(pool)
    except ValueError as e:
        raise SpecError(f"{where}: expected an IPv4 network such as 10.97.0.0/16, got "
                        f"{_shown(pool)} ({_shown(str(e))[1:-1]})") from None
    prefix = max(SUBNET_PREFIX, network.prefixlen)
    room = max(2 ** (32 - prefix) - 2, 0) - 1  # addresses for nodes: not the gateway's
    if room < nodes:
        raise SpecError(
            f"{where}: {pool} leaves room for {max(room, 0)} node(s) in a run's /{prefix}, "
            f"and the spec has {nodes}; give a larger pool (a /{SUBNET_PREFIX} or shorter "
            "prefix)"
        )


def _nemesis(value: Any, where: str) -> NemesisSpec:
    known = ("faults", "schedule", *(n for n in NEMESES if n != "none"))
    raw = _mapping(value, where, known)
    faults = raw.get("faults", [])
    if isinstance(faults, str):
        faults = [faults]
    _expect(faults, list, f"{where}.faults", "a list of fault names")
    for fault in faults:
        _one_of(fault, tuple(NEMESES), f"{where}.faults")
    faults = [f for f in faults if f != "none"]
    options = {f: _mapping(raw.get(f), f"{where}.{f}") for f in faults}
    for name in raw:
        if name in NEMESES and name not in faults:
            raise SpecError(f"{where}.{name}: options for a fault not in {where}.faults")
    schedule = ScheduleSpec()
    if "schedule" in raw:
        here = f"{where}.schedule"
        s = _mapping(raw["schedule"], here, ("kind", "fault", "heal", "steps"))
        kind = _one_of(s.get("kind", "interval"), SCHEDULES, f"{here}.kind")
        steps: list[StepSpec] = []
        if kind == "list":
            raw_steps = s.get("steps")
            _expect(raw_steps, list, f"{here}.steps", "a list of {at, f, value} steps")
            for i, step in enumerate(raw_steps):
                at = f"{here}.steps[{i}]"
                step = _mapping(step, at, ("at", "f", "value"))
                if "at" not in step or "f" not in step:
                    raise SpecError(f"{at}: needs 'at' (seconds) and 'f' (an operation)")
                if step["at"] != 0:
                    _positive_number(step["at"], f"{at}.at")
                if steps and step["at"] < steps[-1].at:
                    raise SpecError(
                        f"{at}.at: {step['at']:g} s comes before the step above it "
                        f"({steps[-1].at:g} s); list the steps in time order"
                    )
                _expect(step["f"], str, f"{at}.f", "a nemesis operation name")
                steps.append(StepSpec(float(step["at"]), step["f"], step.get("value")))
        elif "steps" in s:
            raise SpecError(f"{here}.steps: only for kind: list")
        schedule = ScheduleSpec(
            kind=kind,
            fault=_positive_number(s.get("fault", schedule.fault), f"{here}.fault"),
            heal=_positive_number(s.get("heal", schedule.heal), f"{here}.heal"),
            steps=tuple(steps),
        )
    try:
        nemesis = make_nemesis(faults, options, random.Random(0))
    except ValueError as e:
        raise SpecError(f"{where}: {e}") from None
    for i, step in enumerate(schedule.steps):
        if step.f not in nemesis.fs:
            raise SpecError(
                f"{where}.schedule.steps[{i}].f: expected one of "
                f"{', '.join(sorted(nemesis.fs)) or 'nothing (no faults)'}, "
                f"got {_shown(step.f)}"
            )
    return NemesisSpec(tuple(faults), options, schedule)


def load(path: str | Path) -> Spec:
    path = str(path)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read(MAX_SPEC_CHARS + 1)
        if len(text) > MAX_SPEC_CHARS:
            raise SpecError(f"{path}: longer than {MAX_SPEC_CHARS:,} characters, the bound on "
                            "a spec; is it a spec?")
        data = yaml.safe_load(text)
    except OSError as e:
        raise SpecError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise SpecError(f"{path}: not a spec: nested too deeply") from None
    if data is None or data == {}:
        raise SpecError(f"{path}: empty spec (the smallest spec is one line: `name: x`)")
    spec = parse(data, path)
    if "name" not in data:
        spec = dataclasses.replace(spec, name=Path(path).stem)
    return spec


def document(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved spec (`Spec.to_json()`, results.json's `spec`) in the form a spec file
    takes (docs/specs.md): workload and fault options beside their names."""
    data = dict(resolved)
    ssh = resolved.get("ssh")
    if ssh is not None:
        data["ssh"] = {**ssh, "hosts": list(ssh.get("hosts") or [])}
        if resolved.get("backend") != "ssh" and data["ssh"] == document_ssh(SshSpec()):
            del data["ssh"]  # nothing said of SSH: a Docker or local spec stays as it was
    workload = resolved.get("workload") or {}
    data["workload"] = {"name": workload.get("name"), **(workload.get("options") or {})}
    nemesis = resolved.get("nemesis") or {}
    schedule = dict(nemesis.get("schedule") or {})
    if schedule.get("steps"):
        schedule["steps"] = [dict(step) for step in schedule["steps"]]
    else:
        schedule.pop("steps", None)
    data["nemesis"] = {
        "faults": list(nemesis.get("faults") or []),
        **({"schedule": schedule} if schedule else {}),
        **(nemesis.get("options") or {}),
    }
    return data


def document_ssh(ssh: SshSpec) -> dict[str, Any]:
    return {**dataclasses.asdict(ssh), "hosts": list(ssh.hosts)}


def override(spec: Spec, **changes: Any) -> Spec:
    """The spec with command-line values applied (None: not given), checked as in a file."""
    data = document(spec.to_json())
    for name, value in changes.items():
        if value is None:
            continue
        if name == "hosts":  # a list, or as on the command line: h1,h2,h3
            if isinstance(value, str):
                value = [h.strip() for h in value.split(",") if h.strip()]
            data["ssh"] = {**data.get("ssh", {}), "hosts": list(value)}
            if changes.get("nodes") is None:
                data["nodes"] = len(value)
        elif name == "faults":
            data["nemesis"]["faults"] = value
            for fault in list(data["nemesis"]):
                if fault in NEMESES and fault not in value:
                    del data["nemesis"][fault]
        else:
            data[name] = value
    return parse(data, "command line")
