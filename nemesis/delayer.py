"""Delay packets without netem: an NFQUEUE listener that holds each packet, then lets it go.

Runs inside a node (`python3 -m nemesis.delayer --queue 0 --delay-ms 100 --jitter-ms 20`).
iptables hands it the packets of a rule `-j NFQUEUE --queue-num 0 --queue-bypass`; it
gives each one a verdict (accept) `delay ± jitter` milliseconds after it arrived, so
packets are delayed and, with jitter, reordered. One thread: the queue's socket is
watched with select, and the next due verdict sets the timeout. With `--queue-bypass`,
packets pass untouched when no listener is bound, so stopping this process heals.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import select
import socket
import time
from typing import Any


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--queue", type=int, default=0)
    p.add_argument("--delay-ms", type=float, required=True)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from netfilterqueue import NetfilterQueue  # only in the node image

    rng = random.Random(args.seed)
    held: list[tuple[float, int, Any]] = []
    order = itertools.count()

    def hold(packet: Any) -> None:
        delay = max(0.0, rng.gauss(args.delay_ms, args.jitter_ms)) / 1000
        heapq.heappush(held, (time.monotonic() + delay, next(order), packet))

    queue = NetfilterQueue()
    queue.bind(args.queue, hold, max_len=65536)
    sock = socket.fromfd(queue.get_fd(), socket.AF_UNIX, socket.SOCK_STREAM)
    print(f"listening on queue {args.queue}: delay {args.delay_ms} ms ± {args.jitter_ms} ms",
          flush=True)  # fmt: skip
    try:
        while True:
            timeout = max(0.0, held[0][0] - time.monotonic()) if held else 1.0
            ready, _, _ = select.select([sock], [], [], timeout)
            if ready:
                queue.run(block=False)
            now = time.monotonic()
            while held and held[0][0] <= now:
                heapq.heappop(held)[2].accept()
    finally:
        queue.unbind()


if __name__ == "__main__":
    main()
