"""What the store answers: events and the external view of nodes (etcd's NodeExtern).

``to_json`` writes etcd's field order and omits empty fields like Go's
``omitempty``: key, value, dir, expiration, ttl, nodes, modifiedIndex,
createdIndex; then action, node, prevNode for the event. The root's key is
empty (etcd keeps user keys under a hidden "/1" that the API strips), so a GET
of "/" shows no key and no indexes, as etcd does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from store.v2.gojson import quote, rfc3339

GET = "get"
CREATE = "create"
SET = "set"
UPDATE = "update"
DELETE = "delete"
COMPARE_AND_SWAP = "compareAndSwap"
COMPARE_AND_DELETE = "compareAndDelete"
EXPIRE = "expire"


@dataclass(slots=True)
class NodeView:
    key: str
    value: str | None = None  # None for directories and deleted nodes
    dir: bool = False
    expiration_us: int | None = None  # absolute, microseconds since the epoch
    ttl: int = 0  # seconds left, rounded up, at the time the view was taken
    nodes: list[NodeView] | None = None
    modified_index: int = 0
    created_index: int = 0


@dataclass(slots=True)
class Event:
    action: str
    node: NodeView
    prev_node: NodeView | None = None
    etcd_index: int = 0  # the store index when answered (X-Etcd-Index)
    refresh: bool = False  # a TTL refresh: kept in history, not sent to watchers
    _json: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def index(self) -> int:
        return self.node.modified_index

    def is_created(self) -> bool:
        """Answered 201 Created: a create, or a set that had nothing to replace."""
        return self.action == CREATE or (self.action == SET and self.prev_node is None)

    def with_index(self, etcd_index: int) -> Event:
        """A copy answered at another store index (a watch served from history)."""
        return Event(self.action, self.node, self.prev_node, etcd_index, self.refresh, self._json)

    def to_json(self) -> bytes:
        """etcd's JSON body for this event, without the trailing newline."""
        if self._json is None:
            out = ['{"action":', quote(self.action), ',"node":']
            write_node(self.node, out)
            if self.prev_node is not None:
                out.append(',"prevNode":')
                write_node(self.prev_node, out)
            out.append("}")
            self._json = "".join(out).encode()
        return self._json


def _fields(n: NodeView) -> tuple[str, str]:
    """The JSON members before and after "nodes", the first without braces."""
    head = []
    if n.key:
        head.append('"key":' + quote(n.key))
    if n.value is not None:
        head.append('"value":' + quote(n.value))
    if n.dir:
        head.append('"dir":true')
    if n.expiration_us is not None:
        head.append(f'"expiration":"{rfc3339(n.expiration_us)}"')
    if n.ttl:
        head.append(f'"ttl":{n.ttl}')
    tail = []
    if n.modified_index:
        tail.append(f'"modifiedIndex":{n.modified_index}')
    if n.created_index:
        tail.append(f'"createdIndex":{n.created_index}')
    return ",".join(head), ",".join(tail)


def _file(n: NodeView) -> str | None:
    """The common case in one step: a file with a value, its indexes and no TTL."""
    if n.value is None or n.expiration_us is not None or not (n.key and n.created_index):
        return None
    return (
        f'{{"key":{quote(n.key)},"value":{quote(n.value)},'
        f'"modifiedIndex":{n.modified_index},"createdIndex":{n.created_index}}}'
    )


def write_node(n: NodeView, out: list[str]) -> None:
    """Append ``n`` as JSON to ``out``; iterative, so any depth is fine."""
    stack: list[NodeView | str] = [n]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        if not item.dir:
            fast = _file(item)
            if fast is not None:
                out.append(fast)
                continue
        head, tail = _fields(item)
        if not item.nodes:
            sep = "," if head and tail else ""
            out.append("{" + head + sep + tail + "}")
            continue
        out.append("{" + head + ("," if head else "") + '"nodes":[')
        stack.append("]" + ("," + tail if tail else "") + "}")
        nodes = item.nodes
        for i in range(len(nodes) - 1, -1, -1):
            stack.append(nodes[i])
            if i:
                stack.append(",")
