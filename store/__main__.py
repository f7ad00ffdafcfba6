"""`python -m store`: one member of the store, with etcd's flags."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys

from store import failpoints
from store.config import (
    ConfigError,
    ServerConfig,
    build_parser,
    config_from_args,
    read_config_file,
    version_text,
)

log = logging.getLogger("store")


async def _serve(cfg: ServerConfig) -> None:
    from store.http.server import ConnectionLimit, serve, shutdown
    from store.node import Node

    node = Node(cfg)
    await node.start()
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if cfg.max_client_connections:
        limit = ConnectionLimit(cfg.max_client_connections)
    else:
        limit = ConnectionLimit.for_descriptors(fd_limit)
    log.info("at most %d client connections (descriptor limit %d)", limit.maximum, fd_limit)
    servers = [
        await serve(
            node,
            host,
            port,
            max_body=cfg.max_body,
            idle_timeout=cfg.client_idle_timeout_s or None,
            limit=limit,
        )
        for host, port in cfg.listen_client
    ]
    log.info(
        "%s (member %s, cluster %s) serving clients on %s, peers on %s:%d",
        cfg.name,
        cfg.me.hex_id,
        node.cluster_id,
        ", ".join(f"{h}:{p}" for h, p in cfg.listen_client),
        *cfg.listen_peer,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("%s stopping", cfg.name)
    for s in servers:
        await shutdown(s)
    await node.close()


def _raise_fd_limit() -> None:
    # Thousands of client connections must not run the process out of descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _log_handlers(outputs: str) -> list[logging.Handler]:
    handlers: list[logging.Handler] = []
    for out in outputs.split(","):
        out = out.strip()
        if out in ("default", "stderr", ""):
            handlers.append(logging.StreamHandler(sys.stderr))
        elif out == "stdout":
            handlers.append(logging.StreamHandler(sys.stdout))
        else:
            handlers.append(logging.FileHandler(out))
    return handlers


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.version:
        sys.stdout.write(version_text())
        return 0
    if ns.config_file:
        # As etcd: with a config file, the other flags on the command line are ignored.
        try:
            ns = parser.parse_args(read_config_file(ns.config_file))
        except ConfigError as e:
            parser.error(str(e))
    level = "debug" if ns.debug else ns.log_level
    try:
        handlers = _log_handlers(ns.log_outputs)
    except OSError as e:
        parser.error(f"--log-outputs: {e}")
    logging.basicConfig(
        level=getattr(logging, level.upper().replace("WARN", "WARNING")),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )
    try:
        cfg = config_from_args(ns)
    except ConfigError as e:
        parser.error(str(e))
    for flag in cfg.ignored_flags:
        log.info("ignoring %s: it has no effect on this store", flag)
    try:
        planted = failpoints.configure(ns.failpoints)
    except failpoints.FailpointError as e:
        parser.error(str(e))
    if planted:
        log.warning("failpoints on (planted bugs): %s", failpoints.described())
    _raise_fd_limit()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep running without
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(_serve(cfg))
    except (OSError, RuntimeError) as e:
        log.critical("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
