"""`splitbrain serve`: browse the runs under a results folder over HTTP.

    /                         every run, newest first (?verdict=valid|invalid|unknown)
    /runs/<test>/<time>/      a run's files
    /runs/<test>/<time>/FILE  a file of a run (report.html, results.json, logs, ...)
    /api/runs                 the index as JSON

It binds 127.0.0.1 by default and serves only files inside run folders under the root.
The index is read from the runs' results.json at every request, so new runs show up.
"""

from __future__ import annotations

import json
import mimetypes
import urllib.parse
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from checker.verdict import Verdict
from harness.report.build import environment, verdict_word

TEXT = {".log": "text/plain", ".jsonl": "text/plain", ".yaml": "text/plain",
        ".json": "application/json", ".html": "text/html", ".xml": "application/xml"}
VERDICTS = tuple(v.value for v in Verdict)
HIDDEN = {"data"}  # older runs' local node data directories (now nodes/NAME/data/): not served


@dataclass
class RunSummary:
    path: str  # relative to the root: <test>/<time>
    test: str
    system: str
    started: str
    duration_s: float | None
    verdict: str
    ops: int
    faults: int
    report: bool
    error: str | None


def runs(root: Path) -> list[RunSummary]:
    """Every run under root (folders holding a results.json), newest first."""
    found = []
    for results in sorted(root.glob("*/*/results.json")):
        run_dir = results.parent
        if run_dir.parent.is_symlink() or run_dir.is_symlink():
            continue
        try:
            r = json.loads(results.read_text())
        except (OSError, ValueError):
            continue
        stats = r.get("stats") or {}
        system = r.get("system") or {}
        found.append(RunSummary(
            path=run_dir.relative_to(root).as_posix(), test=str(r.get("test", "?")),
            system=" ".join(str(x) for x in (system.get("name"), system.get("version")) if x),
            started=str(r.get("started", "")), duration_s=r.get("duration_s"),
            verdict=verdict_word(r.get("valid")),
            ops=sum(sum(c.values()) for c in (stats.get("ops") or {}).values()),
            faults=len(stats.get("faults") or []),
            report=(run_dir / "report.html").is_file(), error=r.get("error"),
        ))  # fmt: skip
    found.sort(key=lambda s: (s.started, s.path), reverse=True)
    return found


def files_of(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if rel.parts[0] in HIDDEN or not path.is_file() or path.name.endswith(".tmp"):
            continue
        out.append({"name": rel.as_posix(), "size": path.stat().st_size})
    return out


class Handler(BaseHTTPRequestHandler):
    root: Path  # set on the subclass made by make_server
    server_version = "splitbrain"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = urllib.parse.parse_qs(url.query)
        try:
            if path == "/":
                self._index(query.get("verdict", [""])[0])
            elif path == "/api/runs":
                self._send(json.dumps([asdict(r) for r in runs(self.root)], indent=1),
                           "application/json")
            elif path.startswith("/runs/"):
                self._run(path[len("/runs/"):])
            else:
                self._error(HTTPStatus.NOT_FOUND, "no such page")
        except BrokenPipeError:
            pass

    def _index(self, verdict: str) -> None:
        if verdict and verdict not in VERDICTS:
            self._error(HTTPStatus.BAD_REQUEST, f"verdict is one of {', '.join(VERDICTS)}")
            return
        everything = runs(self.root)
        shown = [r for r in everything if not verdict or r.verdict == verdict]
        counts = {v: sum(1 for r in everything if r.verdict == v) for v in VERDICTS}
        page = environment().get_template("index.html.j2").render(
            runs=shown, verdict=verdict, counts=counts, total=len(everything),
            root=str(self.root))
        self._send(page, "text/html")

    def _run(self, rest: str) -> None:
        target = (self.root / rest).resolve()
        root = self.root.resolve()
        if root not in target.parents and target != root:
            self._error(HTTPStatus.NOT_FOUND, "outside the results folder")
            return
        run_dir = next((p for p in [target, *target.parents]
                        if (p / "results.json").is_file() and root in p.parents), None)
        if run_dir is None:
            self._error(HTTPStatus.NOT_FOUND, "not a run")
            return
        rel = target.relative_to(run_dir)
        if rel.parts and rel.parts[0] in HIDDEN:
            self._error(HTTPStatus.NOT_FOUND, "not served")
            return
        if target.is_dir():
            if not rest.endswith("/"):
                self._redirect(f"/runs/{urllib.parse.quote(rest)}/")
                return
            page = environment().get_template("run.html.j2").render(
                run=run_dir.relative_to(root).as_posix(), files=files_of(run_dir),
                has_report=(run_dir / "report.html").is_file())
            self._send(page, "text/html")
        elif target.is_file():
            kind = TEXT.get(target.suffix) or mimetypes.guess_type(target.name)[0]
            self._send(target.read_bytes(), kind or "application/octet-stream")
        else:
            self._error(HTTPStatus.NOT_FOUND, "no such file")

    def _send(self, body: str | bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        charset = "; charset=utf-8" if kind.startswith("text/") or kind.endswith("json") else ""
        self.send_header("Content-Type", kind + charset)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, where: str) -> None:
        self.send_response(HTTPStatus.MOVED_PERMANENTLY)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _error(self, status: HTTPStatus, why: str) -> None:
        self._send(f"{status.value} {status.phrase}: {why}\n", "text/plain", status)


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    handler = type("RootHandler", (Handler,), {"root": Path(root)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(root: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    server = make_server(root, host, port)
    address, bound = server.server_address[:2]
    print(f"serving the runs under {root} at http://{address}:{bound}/ (Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
