"""The Redis example (examples/redis/): a third-party system from an image built only
from its Debian package, tested without changing splitbrain. Short runs (10 s, 3 nodes)
of its two specs: replica reads are found not linearizable, the primary alone is valid.
Docker is needed: skipped without it, except under CI."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from harness.labels import owner_here
from harness.progress import Progress
from harness.results import EXIT_INVALID, EXIT_VALID
from harness.runner import run, wait_ready
from harness.spec import load, override
from tests.test_harness import assert_nothing_left, docker_client

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261205


@pytest.fixture(scope="module")
def docker() -> Any:
    return docker_client()


def short(name: str, tmp_path: Path, **changes: Any) -> Any:
    spec = load(ROOT / "examples" / "redis" / f"{name}.yaml")
    return override(spec, **{"time_limit": 10, "seed": SEED, "results": str(tmp_path), **changes})


def test_redis_reads_from_replicas_are_found_not_linearizable(docker: Any, tmp_path: Path) -> None:
    outcome = run(short("redis-replica-reads", tmp_path), Progress(quiet=True))
    results = json.loads((outcome.directory / "results.json").read_text())
    summary = f"seed {SEED}, results in {outcome.directory}"
    assert outcome.exit_code == EXIT_INVALID, f"{summary}: {json.dumps(results)[:3000]}"
    assert results["checkers"]["linearizable"]["valid"] is False
    assert results["image"]["tag"].startswith("splitbrain/debian-redis-server:"), summary
    assert results["system"]["version"].startswith("7."), summary
    assert_nothing_left(docker, outcome.results.run_id)


def test_redis_on_its_primary_alone_is_linearizable(docker: Any, tmp_path: Path) -> None:
    outcome = run(short("redis-primary", tmp_path), Progress(quiet=True))
    results = json.loads((outcome.directory / "results.json").read_text())
    summary = f"seed {SEED}, results in {outcome.directory}"
    assert outcome.exit_code == EXIT_VALID, f"{summary}: {json.dumps(results)[:3000]}"
    assert results["stats"]["ops"]["read"]["ok"] > 100, summary
    assert_nothing_left(docker, outcome.results.run_id)


def test_a_team_points_the_system_at_its_own_image_by_a_dockerfile(
    docker: Any, tmp_path: Path
) -> None:
    """The image from a directory with a Dockerfile (FROM an image present here, built with
    the legacy builder, nothing pulled), named in system_options."""
    from harness.image import ensure_debian

    base = ensure_debian(docker, ("redis-server",), lambda line: None)
    context = tmp_path / "team-redis"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base}\nLABEL team=redis-example\n")
    spec = short("redis-primary", tmp_path, time_limit=5,
                 system_options={"reads": "primary", "image": str(context)})  # fmt: skip
    outcome = run(spec, Progress(quiet=True))
    results = json.loads((outcome.directory / "results.json").read_text())
    assert outcome.exit_code == EXIT_VALID, json.dumps(results)[:3000]
    assert results["image"]["tag"] == "splitbrain/user-team-redis:latest"
    assert_nothing_left(docker, outcome.results.run_id)
    docker.images.remove("splitbrain/user-team-redis:latest")


def test_clock_faults_are_refused_where_the_image_has_no_libfaketime(docker: Any) -> None:
    from examples.redis.system import Redis
    from harness.docker import DockerCluster
    from harness.image import ensure_helper, ensure_node_image
    from nemesis.clock import Clock
    from nemesis.core import FaultRefused

    system = Redis()
    image = ensure_node_image(system.image, docker)
    helper = ensure_helper(docker)
    cluster = DockerCluster(system, 1, f"redis{random.Random().randrange(10**6)}", image.tag,
                            owner_here(), client=docker, helper_image=helper.tag)  # fmt: skip
    try:
        cluster.up()
        asyncio.run(wait_ready(system, cluster, 30))
        with pytest.raises(FaultRefused, match="need libfaketime in the nodes' image"):
            asyncio.run(Clock().setup(cluster))
    finally:
        cluster.down()
