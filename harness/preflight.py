"""What a spec names must exist before a run makes anything (docs/specs.md).

`harness.spec` checks a spec's fields; this builds what they name, without starting
anything: the system (a built-in, or a user's `module:Class` imported and constructed
with `system_options`), the client class, the workload and the nemesis. A spec that
fails here is refused with a SpecError naming the field, before the results folder
exists (so `latest` does not move to a run that never was).
"""

from __future__ import annotations

import random

from cluster.capabilities import missing
from harness.spec import Spec, SpecError
from harness.system import BadSystem, load_class, make_system
from harness.workload import make_workload
from nemesis import make_nemesis


def preflight(spec: Spec, where: str = "spec") -> None:
    """SpecError, naming `where` and the field, if anything the spec names cannot be built."""
    try:
        make_system(spec.system, spec.system_options)
    except BadSystem as e:
        raise SpecError(f"{where}: field 'system': {e}") from None
    except Exception as e:  # a user's class that fails in its own way
        raise SpecError(f"{where}: field 'system': {spec.system!r} could not be built: "
                        f"{type(e).__name__}: {e}") from None
    if spec.client is not None:
        try:
            load_class(spec.client, "client")
        except BadSystem as e:
            raise SpecError(f"{where}: field 'client': {e}") from None
    try:
        make_workload(spec.workload.name, spec.concurrency, spec.workload.options)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: field 'workload': {e}") from None
    try:
        nemesis = make_nemesis(spec.nemesis.faults, spec.nemesis.options, random.Random(0))
    except ValueError as e:
        raise SpecError(f"{where}: field 'nemesis': {e}") from None
    lacking = missing(backend_class(spec.backend), nemesis.needs)
    if lacking:
        faults = spec.nemesis.faults
        raise SpecError(
            f"{where}: field 'nemesis': the {spec.backend} backend cannot do what "
            f"{', '.join(faults)} {'needs' if len(faults) == 1 else 'need'}: "
            f"{', '.join(lacking)} (docs/nemesis.md)"
        )


def backend_class(backend: str) -> type:
    if backend == "ssh":
        from harness.ssh import SshCluster

        return SshCluster
    if backend == "local":
        from harness.local import LocalCluster

        return LocalCluster
    from harness.docker import DockerCluster

    return DockerCluster
