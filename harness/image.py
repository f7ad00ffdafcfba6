"""Node and helper images, built offline and cached by content hash.

No registry can be reached, so nothing is pulled. Every image is tagged with the hash of
what went into it, so an unchanged input is never built twice:

- Debian images, `splitbrain/debian-<name>:<hash>`: a bookworm root file system made by
  `mmdebstrap` (the `essential` variant plus the packages asked for, with their
  dependencies) and `docker import`ed; no Python, no shell tools beyond Debian's
  essential set. etcd's nodes run `debian(etcd-server)`, the Redis example's
  `debian(redis-server)`. The hash covers the suite, the packages and the mirror.
- `splitbrain/node:<hash>`: our store's image, built from this checkout: the Debian
  image it shares with the helper (Python, libfaketime for clock faults, iptables)
  plus this project and its dependencies, installed offline into `/opt/splitbrain`
  from wheels built on the host (`pip wheel`, pinned to the versions installed in
  this venv). Its hash covers the base, the store's sources, pyproject.toml and the
  pinned versions.
- `splitbrain/helper:<hash>`: the helper ("sidecar") a Docker cluster runs beside every
  node, in the node's network namespace: iptables and the NFQUEUE delayer
  (nemesis/delayer.py with NetfilterQueue), so that network faults need nothing inside
  the system's own image (docs/nemesis.md).
- A system's own image (harness.system.NodeImage): one present in the local Docker, or a
  directory with a Dockerfile, built with the legacy builder and nothing pulled.

Progress goes to a callback (the CLI prints it); nothing is hidden.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from harness.labels import CHECKOUT, LABEL
from harness.system import NodeImage

ROOT = Path(__file__).resolve().parents[1]
SUITE = "bookworm"
# One base for our store's image and the helper's (one mmdebstrap on a fresh machine):
# Python for the store and the delayer, libfaketime for the clock nemesis, iptables,
# iproute2 and libnetfilter-queue1 for the helper's network faults.
PYTHON_PACKAGES = (
    "python3", "python3-venv", "libfaketime", "ca-certificates",
    "iptables", "iproute2", "libnetfilter-queue1",
)  # fmt: skip
# Python packages only the helper needs, built into wheels on the host (NetfilterQueue
# has no wheel on PyPI: `make install` brings gcc and libnetfilter-queue-dev to build one).
HELPER_REQUIREMENTS = ("NetfilterQueue==1.1.0",)
HELPER_PYTHON = "/opt/splitbrain/bin/python"
HELPER_DELAYER = "/opt/splitbrain/delayer.py"
NODE_PYTHON = "/opt/splitbrain/bin/python"
NODE_REPOSITORY = "splitbrain/node"
HELPER_REPOSITORY = "splitbrain/helper"
# Sources the store's image depends on: the code that runs inside a node.
NODE_SOURCES = ("store", "pyproject.toml")
DELAYER = ROOT / "nemesis" / "delayer.py"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SOURCES_D = Path("/etc/apt/sources.list.d")

Progress = Callable[[str], None]


class ImageError(RuntimeError):
    """The image cannot be built here; the message says what is missing."""


@dataclass(frozen=True)
class Image:
    tag: str
    id: str
    built: bool  # False when it came from the cache

    def to_json(self) -> dict[str, object]:
        return {"tag": self.tag, "id": self.id, "built": self.built}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "splitbrain"
    path.mkdir(parents=True, exist_ok=True)
    return path


def debian_mirrors(sources_dir: Path = SOURCES_D) -> list[str]:
    """`deb` lines for the Debian archive this host uses (deb822 .sources files).

    Only entries signed by Debian's archive keyring are kept (a host may list other
    vendors' repositories); without any, Debian's own mirror.
    """
    lines: list[str] = []
    for path in sorted(sources_dir.glob("*.sources")):
        for block in path.read_text(errors="replace").split("\n\n"):
            fields = dict(
                (m.group(1).lower(), m.group(2).strip())
                for m in re.finditer(r"^([A-Za-z-]+):\s*(.*)$", block, re.MULTILINE)
            )
            if "debian-archive-keyring" not in fields.get("signed-by", ""):
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    if suite.startswith(SUITE):
                        lines.append(f"deb {uri} {suite} {fields.get('components', 'main')}")
    return lines or [f"deb {DEFAULT_MIRROR} {SUITE} main"]


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def debian_hash(packages: Sequence[str], variant: str, mirrors: list[str]) -> str:
    return _digest(
        [SUITE.encode(), variant.encode(), *(p.encode() for p in packages),
         *(m.encode() for m in mirrors)]
    )  # fmt: skip


def debian_tag(packages: Sequence[str], variant: str = "essential") -> str:
    """The tag of the Debian image holding `packages` (named after the first one)."""
    name = re.sub(r"[^a-z0-9-]", "-", packages[0].lower()) if packages else "empty"
    return f"splitbrain/debian-{name}:{debian_hash(packages, variant, debian_mirrors())}"


def pinned_requirements() -> list[str]:
    """The project's runtime dependencies at the versions installed here."""
    found = []
    for requirement in importlib.metadata.requires("splitbrain") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        found.append(f"{name}=={importlib.metadata.version(name)}")
    return sorted(found)


def source_files(root: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for entry in NODE_SOURCES:
        path = root / entry
        if path.is_file():
            files.append(path)
        else:
            files += sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def node_hash(base_tag: str, root: Path = ROOT) -> str:
    parts = [base_tag.encode(), *(r.encode() for r in pinned_requirements())]
    for path in source_files(root):
        parts += [str(path.relative_to(root)).encode(), path.read_bytes()]
    return _digest(parts)


def helper_hash(base_tag: str) -> str:
    return _digest(
        [base_tag.encode(), *(r.encode() for r in HELPER_REQUIREMENTS), DELAYER.read_bytes()]
    )


NODE_DOCKERFILE = f"""\
FROM {{base}}
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/splitbrain \\
 && {NODE_PYTHON} -m pip install --quiet --no-index --find-links /tmp/wheels splitbrain \\
 && rm -rf /tmp/wheels /root/.cache
ENV PATH=/opt/splitbrain/bin:$PATH PYTHONUNBUFFERED=1
LABEL {LABEL}.image=node
"""

HELPER_DOCKERFILE = f"""\
FROM {{base}}
COPY wheels /tmp/wheels
COPY delayer.py {HELPER_DELAYER}
RUN python3 -m venv /opt/splitbrain \\
 && {HELPER_PYTHON} -m pip install --quiet --no-index --find-links /tmp/wheels \\
    {{requirements}} \\
 && rm -rf /tmp/wheels /root/.cache
ENV PYTHONUNBUFFERED=1
LABEL {LABEL}.image=helper
"""


def _find(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


def ensure_debian(
    client: docker.DockerClient,
    packages: Sequence[str],
    progress: Progress,
    force: bool = False,
    variant: str = "essential",
) -> str:
    """An image of Debian's `variant` and `packages` (with their dependencies), nothing
    else: from the cache, or made now with mmdebstrap and `docker import`."""
    mirrors = debian_mirrors()
    tag = debian_tag(packages, variant)
    if not force and _find(client, tag):
        progress(f"image {tag}: cached")
        return tag
    if shutil.which("mmdebstrap") is None:
        raise ImageError(
            "mmdebstrap is not installed: `make install` installs it (apt-get install mmdebstrap)"
        )
    with build_dir("splitbrain-rootfs-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        argv = [
            "mmdebstrap", f"--variant={variant}", "--mode=root", "--quiet",
            f"--include={','.join(packages)}",
            "--aptopt=Acquire::Retries \"3\"",
            SUITE, str(tar), *mirrors,
        ]  # fmt: skip
        progress(f"image {tag}: mmdebstrap {SUITE} {variant} + {', '.join(packages)}")
        started = time.monotonic()
        done = run_child(argv, Path(tmp))
        if done.returncode != 0:
            raise ImageError(f"mmdebstrap failed ({done.returncode}):\n{done.stderr[-3000:]}")
        progress(f"image {tag}: root file system in {time.monotonic() - started:.0f} s; importing")
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(
            str(tar), repository=repository, tag=version, changes=[f"LABEL {LABEL}.image=debian"]
        )
        tar.unlink()
    if not _find(client, tag):
        raise ImageError(f"docker import did not produce {tag}")
    return tag


def build_wheels(dest: Path, progress: Progress, what: Sequence[str], pins: Sequence[str],
                 no_deps: bool = False) -> None:
    """`what` (requirements or paths) as wheels, with this interpreter's pip (`no_deps`:
    those alone, not their dependencies)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join(pins) + "\n")
    try:
        progress(f"building wheels of {', '.join(Path(w).name for w in what)}")
        argv = [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
            "--wheel-dir", str(dest), "--constraint", constraints.name,
            *(["--no-deps"] if no_deps else []), *what,
        ]  # fmt: skip
        done = run_child(argv, dest.parent)
        if done.returncode != 0:
            raise ImageError(f"pip wheel failed ({done.returncode}):\n{done.stderr[-3000:]}")
    finally:
        os.unlink(constraints.name)


def docker_build(
    client: docker.DockerClient, context: Path, tag: str, progress: Progress,
    labels: dict[str, str] | None = None,
) -> str:
    """`docker build` of a directory with the legacy builder (nothing pulled: every FROM
    must be an image present here); the image's id."""
    try:
        built = client.api.build(
            path=str(context), tag=tag, rm=True, decode=True, pull=False, labels=labels or {}
        )
        for chunk in built:
            if "error" in chunk:
                raise ImageError(f"docker build of {context} failed: {chunk['error'].strip()}")
            line = str(chunk.get("stream", "")).strip()
            if line.startswith("Step "):
                progress(f"  {line}")
    except docker.errors.APIError as e:
        raise ImageError(f"docker build of {context} failed: {e}") from None
    except (OSError, TypeError) as e:  # no such directory, no Dockerfile
        raise ImageError(f"docker build of {context} failed: {e}") from None
    image_id = _find(client, tag)
    if image_id is None:
        raise ImageError(f"docker build did not produce {tag}")
    return image_id


def ensure_image(
    progress: Progress = lambda line: None,
    force: bool = False,
    client: docker.DockerClient | None = None,
) -> Image:
    """Our store's node image for this source tree: from the cache, or built now."""
    client = client or docker.from_env()
    base = ensure_debian(client, PYTHON_PACKAGES, progress, force, variant="minbase")
    tag = f"{NODE_REPOSITORY}:{node_hash(base)}"
    found = None if force else _find(client, tag)
    if found:
        progress(f"node image {tag}: cached")
        return Image(tag, found, built=False)
    started = time.monotonic()
    with build_dir("splitbrain-build-") as tmp:
        context = Path(tmp)
        build_wheels(context / "wheels", progress, [str(ROOT)], pinned_requirements())
        (context / "Dockerfile").write_text(NODE_DOCKERFILE.format(base=base))
        progress(f"node image {tag}: docker build")
        image_id = docker_build(client, context, tag, progress, {CHECKOUT: checkout()})
    progress(f"node image {tag}: built in {time.monotonic() - started:.0f} s")
    prune_node_images(client, keep=tag, progress=progress)
    return Image(tag, image_id, built=True)


def ensure_helper(
    client: docker.DockerClient, progress: Progress = lambda line: None, force: bool = False
) -> Image:
    """The helper image every Docker node gets beside it: from the cache, or built now."""
    base = ensure_debian(client, PYTHON_PACKAGES, progress, force, variant="minbase")
    tag = f"{HELPER_REPOSITORY}:{helper_hash(base)}"
    found = None if force else _find(client, tag)
    if found:
        progress(f"helper image {tag}: cached")
        return Image(tag, found, built=False)
    started = time.monotonic()
    with build_dir("splitbrain-build-") as tmp:
        context = Path(tmp)
        build_wheels(context / "wheels", progress, HELPER_REQUIREMENTS, HELPER_REQUIREMENTS)
        shutil.copy(DELAYER, context / "delayer.py")
        names = " ".join(r.split("==")[0] for r in HELPER_REQUIREMENTS)
        (context / "Dockerfile").write_text(HELPER_DOCKERFILE.format(base=base, requirements=names))
        progress(f"helper image {tag}: docker build")
        image_id = docker_build(client, context, tag, progress)
    progress(f"helper image {tag}: built in {time.monotonic() - started:.0f} s")
    return Image(tag, image_id, built=True)


def ensure_node_image(
    source: NodeImage,
    client: docker.DockerClient,
    progress: Progress = lambda line: None,
    force: bool = False,
) -> Image:
    """The image a system's nodes run, as its `NodeImage` says where it comes from."""
    if source.kind == "checkout":
        return ensure_image(progress, force, client)
    if source.kind == "debian":
        tag = ensure_debian(client, source.packages, progress, force)
        return Image(tag, _find(client, tag) or "", built=False)
    if source.kind == "local":
        found = _find(client, source.ref)
        if found is None:
            raise ImageError(
                f"the image {source.ref!r} is not in the local Docker (`docker images`); "
                "nothing is pulled: load or build it first, or name a directory with a "
                "Dockerfile"
            )
        progress(f"node image {source.ref}: present")
        return Image(source.ref, found, built=False)
    context = Path(source.ref)
    if not (context / "Dockerfile").is_file():
        raise ImageError(f"{context}: no Dockerfile there to build the node image from")
    tag = f"splitbrain/user-{re.sub(r'[^a-z0-9-]', '-', context.resolve().name.lower())}:latest"
    progress(f"node image {tag}: docker build {context} (legacy builder, nothing pulled)")
    return Image(tag, docker_build(client, context, tag, progress), built=True)


def prune_node_images(client: docker.DockerClient, keep: str, progress: Progress) -> None:
    """Older builds of the node image by this checkout, unless a container still uses
    them: each is a few hundred MB and a source change makes a new one. Images of other
    checkouts on this host (their `splitbrain.checkout` label differs, or they have none)
    are theirs: another worktree's runs may be using them."""
    mine = {"label": f"{CHECKOUT}={checkout()}"}
    for image in client.images.list(name=NODE_REPOSITORY, filters=mine):
        if keep in image.tags:
            continue
        if client.containers.list(all=True, filters={"ancestor": image.id}):
            continue  # a run still going (or its leftovers) uses it
        try:
            client.images.remove(image.id, noprune=False)
        except docker.errors.APIError:
            continue  # taken by a container created meanwhile: kept
        progress(f"removed the older node image {', '.join(image.tags) or image.short_id}")


def checkout() -> str:
    """This source tree, as the `splitbrain.checkout` label of the images it builds."""
    return str(ROOT)


@contextlib.contextmanager
def build_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for a build, removed however the build ends (Ctrl-C included).
    The children run with TMPDIR inside it, so their temporary files go with it; a file
    system a killed mmdebstrap left mounted in it is unmounted first, never deleted
    through."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=cache_dir()))
    try:
        yield path
    finally:
        unmount_below(path)
        if mounts_below(path):
            raise ImageError(f"{path}: file systems still mounted in it; left as it is")
        shutil.rmtree(path, ignore_errors=True)


def mounts_below(path: Path) -> list[str]:
    """Mount points at or under path (deepest first), from /proc/self/mountinfo."""
    root = str(path.resolve())
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_below(path: Path) -> None:
    for point in mounts_below(path):
        subprocess.run(["umount", "--lazy", point], capture_output=True)


def run_child(argv: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    """argv in a process group of its own, its temporary files under tmp. If this process
    is interrupted meanwhile (Ctrl-C, SIGTERM), the whole group gets SIGINT, as from a
    terminal, so that it cleans up after itself; whatever is left after STOP_GRACE_S is
    killed. Then the interrupt goes on."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = child.communicate()
    except BaseException:
        stop_group(child)
        raise
    return subprocess.CompletedProcess(argv, child.returncode, out, err)


STOP_GRACE_S = 30.0


def stop_group(child: subprocess.Popen[str]) -> None:
    """SIGINT to child's process group, then SIGKILL to whatever of it is left. Another
    Ctrl-C meanwhile does not cut this short (it is bounded by twice STOP_GRACE_S)."""
    with _signals_held():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.communicate(timeout=STOP_GRACE_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.communicate(timeout=STOP_GRACE_S)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
