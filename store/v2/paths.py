"""Key paths, normalised like etcd: Go's path.Clean applied to "/" + key."""

from __future__ import annotations


def clean(p: str) -> str:
    """Go's ``path.Clean(path.Join("/", p))``: rooted, no empty, "." or ".." parts."""
    if (
        p.startswith("/")
        and "//" not in p
        and "/." not in p
        and (len(p) == 1 or not p.endswith("/"))
    ):
        return p
    parts: list[str] = []
    for part in p.split("/"):
        if not part or part == ".":
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def join(parent: str, name: str) -> str:
    """The path of ``name`` inside the directory ``parent`` (both clean)."""
    return "/" + name if parent == "/" else parent + "/" + name


def split(p: str) -> tuple[str, str]:
    """A clean path's directory and last name: "/a/b" -> ("/a", "b"), "/a" -> ("/", "a")."""
    i = p.rfind("/")
    return (p[:i] or "/"), p[i + 1 :]
