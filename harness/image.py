"""The node image, built offline and cached by content hash.

No registry can be reached, so nothing is pulled. Two images, each tagged with the hash
of what went into it, so an unchanged input is never built twice:

- `splitbrain/base:<hash>`: a Debian bookworm root file system made by `mmdebstrap`
  (minbase + Python, iptables, iproute2, procps, etcd 3.4) and `docker import`ed. Its hash
  covers the suite, the package list and the mirror.
- `splitbrain/node:<hash>`: the base plus this project and its dependencies, installed
  offline into `/opt/splitbrain` from wheels built on the host (`pip wheel`, pinned to the
  versions installed in this venv). Its hash covers the base, the store's sources,
  pyproject.toml and the pinned versions: the store is the only code of this project
  that runs inside a node, so editing the harness, the nemesis or the checker rebuilds
  nothing (their copies in the image are never run).

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from harness.labels import CHECKOUT, LABEL

ROOT = Path(__file__).resolve().parents[1]
SUITE = "bookworm"
PACKAGES = (
    "python3",
    "python3-venv",
    "iptables",
    "iproute2",
    "procps",
    "etcd-server",
    "ca-certificates",
    "libnetfilter-queue1",  # the delay nemesis's NFQUEUE delayer (nemesis/delayer.py)
    "libfaketime",  # the clock nemesis (nemesis/clock.py)
)
# Python packages only nodes need, built into wheels on the host (NetfilterQueue has no
# wheel on PyPI: `make install` brings gcc and libnetfilter-queue-dev to build one).
NODE_REQUIREMENTS = ("NetfilterQueue==1.1.0",)
NODE_PYTHON = "/opt/splitbrain/bin/python"
NODE_REPOSITORY = "splitbrain/node"
# Sources the node image depends on: the code that runs inside a node.
NODE_SOURCES = ("store", "nemesis/delayer.py", "pyproject.toml")
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


def base_hash(mirrors: list[str]) -> str:
    return _digest(
        [SUITE.encode(), *(p.encode() for p in PACKAGES), *(m.encode() for m in mirrors)]
    )


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
    pins = [*pinned_requirements(), *NODE_REQUIREMENTS]
    parts = [base_tag.encode(), *(r.encode() for r in pins)]
    for path in source_files(root):
        parts += [str(path.relative_to(root)).encode(), path.read_bytes()]
    return _digest(parts)


DOCKERFILE = f"""\
FROM {{base}}
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/splitbrain \\
 && {NODE_PYTHON} -m pip install --quiet --no-index --find-links /tmp/wheels \\
    splitbrain {{node_requirements}} \\
 && rm -rf /tmp/wheels /root/.cache
ENV PATH=/opt/splitbrain/bin:$PATH PYTHONUNBUFFERED=1
LABEL {LABEL}.image=node
"""


def _find(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


def ensure_base(client: docker.DockerClient, progress: Progress, force: bool = False) -> str:
    mirrors = debian_mirrors()
    tag = f"splitbrain/base:{base_hash(mirrors)}"
    if not force and _find(client, tag):
        progress(f"base image {tag}: cached")
        return tag
    if shutil.which("mmdebstrap") is None:
        raise ImageError(
            "mmdebstrap is not installed: `make install` installs it (apt-get install mmdebstrap)"
        )
    with build_dir("splitbrain-rootfs-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        argv = [
            "mmdebstrap", "--variant=minbase", "--mode=root", "--quiet",
            f"--include={','.join(PACKAGES)}",
            "--aptopt=Acquire::Retries \"3\"",
            SUITE, str(tar), *mirrors,
        ]  # fmt: skip
        progress(f"base image {tag}: mmdebstrap {SUITE} ({', '.join(PACKAGES)})")
        started = time.monotonic()
        done = run_child(argv, Path(tmp))
        if done.returncode != 0:
            raise ImageError(f"mmdebstrap failed ({done.returncode}):\n{done.stderr[-3000:]}")
        progress(f"base image: root file system in {time.monotonic() - started:.0f} s; importing")
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(
            str(tar), repository=repository, tag=version, changes=[f"LABEL {LABEL}.image=base"]
        )
        tar.unlink()
    if not _find(client, tag):
        raise ImageError(f"docker import did not produce {tag}")
    return tag


def build_wheels(dest: Path, progress: Progress) -> None:
    """The project and its pinned dependencies as wheels, with this interpreter's pip."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join(pinned_requirements()) + "\n")
    try:
        progress("node image: building wheels of the project and its dependencies")
        argv = [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
            "--wheel-dir", str(dest), "--constraint", constraints.name, str(ROOT),
            *NODE_REQUIREMENTS,
        ]  # fmt: skip
        done = run_child(argv, dest.parent)
        if done.returncode != 0:
            raise ImageError(f"pip wheel failed ({done.returncode}):\n{done.stderr[-3000:]}")
    finally:
        os.unlink(constraints.name)


def ensure_image(
    progress: Progress = lambda line: None,
    force: bool = False,
    client: docker.DockerClient | None = None,
) -> Image:
    """The node image for this source tree: from the cache, or built now."""
    client = client or docker.from_env()
    base = ensure_base(client, progress, force)
    tag = f"{NODE_REPOSITORY}:{node_hash(base)}"
    found = None if force else _find(client, tag)
    if found:
        progress(f"node image {tag}: cached")
        return Image(tag, found, built=False)
    started = time.monotonic()
    with build_dir("splitbrain-build-") as tmp:
        context = Path(tmp)
        build_wheels(context / "wheels", progress)
        names = " ".join(r.split("==")[0] for r in NODE_REQUIREMENTS)
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=base, node_requirements=names))
        progress(f"node image {tag}: docker build")
        try:
            built = client.api.build(
                path=str(context), tag=tag, rm=True, decode=True, labels={CHECKOUT: checkout()}
            )
            for chunk in built:
                if "error" in chunk:
                    raise ImageError(f"docker build failed: {chunk['error'].strip()}")
                line = str(chunk.get("stream", "")).strip()
                if line.startswith("Step "):
                    progress(f"  {line}")
        except docker.errors.APIError as e:
            raise ImageError(f"docker build failed: {e}") from None
    image_id = _find(client, tag)
    if image_id is None:
        raise ImageError(f"docker build did not produce {tag}")
    progress(f"node image {tag}: built in {time.monotonic() - started:.0f} s")
    prune_node_images(client, keep=tag, progress=progress)
    return Image(tag, image_id, built=True)


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
