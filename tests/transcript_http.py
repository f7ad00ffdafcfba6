"""What the v2 and v3 transcripts (tests/transcript.py, tests/transcript_v3.py) share:
an answer as recorded, the steps sent in order on one connection, and the
`--regenerate` command line."""

from __future__ import annotations

import argparse
import http.client
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol


class Request(Protocol):
    def request(self) -> tuple[str, str, bytes | None, dict[str, str]]:
        """method, target (path and query), body, headers."""
        ...


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]  # in order, as sent
    body: str

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "headers": [list(h) for h in self.headers],
                "body": self.body}  # fmt: skip

    @classmethod
    def from_json(cls, got: dict[str, Any]) -> Answer:
        return cls(got["status"], tuple((k, v) for k, v in got["headers"]), got["body"])


def send_in_order(host: str, port: int, steps: Iterable[Request],
                  prepare: Callable[[http.client.HTTPConnection], None] | None = None,
                  ) -> list[Answer]:
    """Send the steps to a member, in order, on one connection (a new one after the
    member closes it). ``prepare`` runs first, on that connection."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    if prepare is not None:
        prepare(conn)
    out = []
    for s in steps:
        method, target, body, headers = s.request()
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        out.append(Answer(r.status, tuple(r.getheaders()), text))
        if r.will_close:
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.close()
    return out


def regenerate_main(prog: str, doc: str | None, what: str, regenerate: Callable[[], int],
                    argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regenerate", action="store_true", help=f"rewrite {what}")
    args = ap.parse_args(argv)
    if not args.regenerate:
        ap.print_help()
        return 2
    return regenerate()
