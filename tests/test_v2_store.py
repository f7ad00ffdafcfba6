"""The v2 keys state machine on its own: TTLs, watches, snapshots and properties (the
reference transcript's answers, byte for byte, are in tests/test_transcript.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.v2.command import Command, decode, encode, sync
from store.v2.errors import EtcdError
from store.v2.event import Event
from store.v2.gojson import quote, rfc3339
from store.v2.store import V2Store, ttl_left
from store.v2.watch import HISTORY_CAPACITY

T0 = 1_796_000_000.0  # a fixed "now" for the commands (2026-11-30)


def ok(s: V2Store, cmd: Command) -> Event:
    res = s.apply(cmd)
    assert isinstance(res, Event), res
    return res


def err(s: V2Store, cmd: Command) -> EtcdError:
    res = s.apply(cmd)
    assert isinstance(res, EtcdError), res
    return res


def body(x: Event | EtcdError) -> dict:
    return json.loads(x.to_json())


def put(path: str, value: str = "", **kw: object) -> Command:
    return Command("set", path, value, time=T0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def s() -> V2Store:
    """A store at index 3, like the fresh etcd member of the reference transcript
    (its first three indexes are etcd's own membership keys, invisible under /)."""
    store = V2Store()
    for _ in range(3):
        ok(store, put("/_etcd", "x"))
    assert store.index == 3
    return store


# ---- the transcript, in order ------------------------------------------------


def test_get_root_of_an_empty_store_has_no_key_and_no_nodes() -> None:
    assert V2Store().get("/").to_json() == b'{"action":"get","node":{"dir":true}}'


# ---- semantics ---------------------------------------------------------------


def test_failures_never_bump_the_index(s: V2Store) -> None:
    ok(s, put("/a", "1"))
    before = s.index
    failures = [
        Command("create", "/a", "x"),
        Command("update", "/missing", "x"),
        Command("cas", "/a", "x", prev_value="nope"),
        Command("cad", "/a", prev_index=999),
        Command("delete", "/missing"),
        Command("set", "/a/b", "x"),  # /a is a file
        Command("set", "/", "x"),
        Command("nonsense", "/a"),
    ]
    for cmd in failures:
        e = s.apply(cmd)
        assert isinstance(e, EtcdError)
        assert e.index == before
    assert s.index == before


def test_path_normalisation_is_go_path_clean(s: V2Store) -> None:
    ev = ok(s, put("a//b/./c/../d/", "v"))
    assert ev.node.key == "/a/b/d"
    assert s.get("//a/b/d").node.value == "v"
    assert s.get("/a/../a/b/d/.").node.value == "v"


def test_set_creates_parents_and_a_dir_replaces_nothing(s: V2Store) -> None:
    ok(s, put("/x/y/z", "1"))
    x = s.get("/x")
    assert x.node.dir and x.node.created_index == 4
    assert err(s, put("/x/y", "2")).code == 102  # a directory is not replaced
    assert err(s, put("/x/y/z/w", "2")).cause == "/x/y/z"  # not a directory
    replaced = ok(s, put("/x/y/z", dir=True))  # a file may become a directory
    assert replaced.node.dir and replaced.prev_node is not None
    assert replaced.prev_node.value == "1"


def test_update_of_a_directory_moves_only_the_event_index(s: V2Store) -> None:
    ok(s, put("/d", dir=True, expiration=T0 + 50))
    ev = ok(s, Command("update", "/d", "", time=T0))  # no TTL: becomes permanent
    assert ev.node.modified_index == 5 and ev.node.ttl == 0
    assert ev.prev_node is not None and ev.prev_node.ttl == 50
    assert s.get("/d").node.modified_index == 4  # as etcd: the node keeps its index
    assert not s.has_ttl_keys()
    assert err(s, Command("update", "/d", "value")).code == 102


def test_recursive_and_sorted_listing_hides_underscore_names(s: V2Store) -> None:
    for key in ("/d/b", "/d/a/y", "/d/a/x", "/d/_hidden", "/d/c"):
        ok(s, put(key, key))
    listing = s.get("/d")
    assert [n.key for n in listing.node.nodes or []] == ["/d/b", "/d/a", "/d/c"]
    assert all(n.nodes is None for n in listing.node.nodes or [])
    deep = s.get("/d", recursive=True, sorted=True)
    keys = [n.key for n in deep.node.nodes or []]
    assert keys == ["/d/a", "/d/b", "/d/c"]
    a = (deep.node.nodes or [])[0]
    assert [n.key for n in a.nodes or []] == ["/d/a/x", "/d/a/y"]
    assert s.get("/d/_hidden").node.value == "/d/_hidden"  # hidden, not secret


def test_in_order_keys_are_zero_padded_indexes(s: V2Store) -> None:
    keys = [ok(s, Command("post", "/q", f"job{i}")).node.key for i in range(3)]
    assert keys == [f"/q/{i:020d}" for i in (4, 5, 6)]
    assert ok(s, Command("post", "/", "top")).node.key == "/00000000000000000007"
    assert ok(s, Command("post", "/qd", dir=True)).node.dir


def test_cad_on_the_root_is_not_a_file_with_no_cause() -> None:
    e = err(V2Store(), Command("cad", "/", prev_value="x"))
    assert e.to_json() == b'{"errorCode":102,"message":"Not a file","index":0}'


def test_refresh_keeps_the_value_and_is_not_seen_by_watchers(s: V2Store) -> None:
    ok(s, put("/t", "v", expiration=T0 + 5))
    w = s.watch("/t")
    ev = ok(s, Command("set", "/t", "", refresh=True, expiration=T0 + 20, time=T0))
    assert ev.node.value == "v" and ev.node.ttl == 20 and ev.refresh
    assert b"refresh" not in ev.to_json()
    assert w.poll() is None  # etcd adds refreshes to history without notifying
    assert err(s, Command("set", "/nope", refresh=True, expiration=T0 + 5)).code == 100
    up = ok(s, Command("update", "/t", refresh=True, expiration=T0 + 40, time=T0))
    assert (up.node.value, up.node.ttl) == ("v", 40)
    cas = ok(s, Command("cas", "/t", "ignored", prev_value="v", refresh=True,
                        expiration=T0 + 60, time=T0))
    assert (cas.node.value, cas.node.ttl) == ("v", 60)
    assert s.watch("/t", since_index=6).poll() is None  # history scans skip refreshes


# ---- TTLs --------------------------------------------------------------------


def test_ttl_rounds_up_like_etcd() -> None:
    us = 1_000_000
    assert ttl_left(100 * us, 0) == 100
    assert ttl_left(100 * us, 1) == 100
    assert ttl_left(100 * us + 1, 0) == 101
    assert ttl_left(0, 0) == 0
    assert ttl_left(0, us // 2) == 0  # Go truncates toward zero
    assert ttl_left(0, 3 * us // 2) == -1


def test_sync_expires_keys_in_time_order_with_events(s: V2Store) -> None:
    ok(s, put("/late", "x", expiration=T0 + 20))
    ok(s, put("/dir/early", "y", expiration=T0 + 10))
    ok(s, Command("update", "/dir", "", expiration=T0 + 15, time=T0))
    ok(s, put("/keep", "z"))
    watch_dir = s.watch("/dir/early")
    assert s.next_expiry() == T0 + 10
    assert s.apply(sync(T0 + 9.999)) is None
    assert s.index == 7
    assert s.apply(sync(T0 + 15)) is None  # early (t+10) then /dir (t+15)
    assert s.index == 9
    ev = watch_dir.poll()
    assert ev is not None and (ev.action, ev.node.key, ev.node.modified_index) == (
        "expire", "/dir/early", 8)
    with pytest.raises(EtcdError):
        s.get("/dir")
    assert s.get("/late").node.ttl == 5  # now = the last command's time
    assert s.get("/late", now=T0 + 19.5).node.ttl == 1
    s.apply(sync(T0 + 20))
    assert not s.has_ttl_keys() and s.index == 10
    assert s.get("/keep").node.value == "z"
    assert s.stats_json().count(b'"expireCount":3') == 1


def test_expiry_before_2000_means_permanent(s: V2Store) -> None:
    ev = ok(s, put("/old", "v", expiration=12.0))
    assert ev.node.expiration_us is None
    assert not s.has_ttl_keys()


def test_replacing_and_deleting_ttl_keys_leaves_no_stale_expiry(s: V2Store) -> None:
    ok(s, put("/a", "1", expiration=T0 + 1))
    ok(s, put("/a", "2"))  # replaced by a permanent key
    ok(s, put("/b/c", "1", expiration=T0 + 1))
    ok(s, Command("delete", "/b", recursive=True))
    ok(s, put("/c", "1", expiration=T0 + 1))
    ok(s, Command("update", "/c", "2", expiration=T0 + 100, time=T0))
    index = s.index
    s.apply(sync(T0 + 50))
    assert s.index == index  # nothing expired
    assert s.get("/a").node.value == "2"
    assert s.get("/c").node.value == "2"


# ---- watches -----------------------------------------------------------------


def test_watch_from_history_and_401_when_cleared(s: V2Store) -> None:
    ok(s, put("/w", "1"))
    hit = s.watch("/w", since_index=1)
    ev = hit.poll()
    assert ev is not None and ev.node.value == "1" and ev.etcd_index == s.index
    for i in range(HISTORY_CAPACITY + 5):
        ok(s, put("/other", str(i)))
    with pytest.raises(EtcdError) as e:
        s.watch("/w", since_index=1)
    start = s.index - HISTORY_CAPACITY + 1
    assert e.value.to_json() == (
        b'{"errorCode":401,"message":"The event in requested index is outdated and cleared",'
        b'"cause":"the requested history has been cleared [%d/1]","index":%d}'
        % (start, s.index)
    )
    assert e.value.status == 400


def test_watchers_fire_once_and_stream_watchers_keep_going(s: V2Store) -> None:
    once = s.watch("/k")
    stream = s.watch("/k", stream=True)
    rec = s.watch("/d", recursive=True)
    flat = s.watch("/d")
    ok(s, put("/k", "1"))
    ok(s, put("/k", "2"))
    ok(s, put("/d/x", "1"))
    first = once.poll()
    assert first is not None and first.node.value == "1" and once.poll() is None
    assert once.closed
    assert [e.node.value for e in (stream.poll(), stream.poll())] == ["1", "2"]  # type: ignore[union-attr]
    assert not stream.closed
    got = rec.poll()
    assert got is not None and got.node.key == "/d/x"
    assert flat.poll() is None  # not recursive
    assert s.hub.count == 2  # stream + flat
    stream.remove()
    flat.remove()
    assert s.hub.count == 0 and not s.hub.watchers


def test_deleting_a_directory_wakes_watchers_below_it_once(s: V2Store) -> None:
    ok(s, put("/a/b/c", "1"))
    below = s.watch("/a/b/c", stream=True)
    above = s.watch("/a", stream=True)
    ev = ok(s, Command("delete", "/a", recursive=True))
    assert below.poll() is ev and below.poll() is None  # no duplicate for a stream
    assert above.poll() is ev


def test_recursive_watchers_do_not_see_hidden_keys(s: V2Store) -> None:
    rec = s.watch("/", recursive=True)
    exact = s.watch("/d/_h")
    ok(s, put("/d/_h", "x"))
    assert rec.poll() is None
    assert exact.poll() is not None


def test_a_slow_stream_watcher_is_dropped_after_100_events(s: V2Store) -> None:
    w = s.watch("/k", stream=True)
    for i in range(101):
        ok(s, put("/k", str(i)))
    assert w.closed and w.pending() == 100 and s.hub.count == 0


def test_watch_next_is_awaitable() -> None:
    async def scenario() -> list[str | None]:
        s = V2Store()
        w = s.watch("/k", stream=True)
        waiting = asyncio.ensure_future(w.next())
        await asyncio.sleep(0)
        assert not waiting.done()
        s.apply(put("/k", "1"))
        first = await asyncio.wait_for(waiting, 5)
        s.close_watchers()
        return [first.node.value if first else None, await w.next() and "more"]

    assert asyncio.run(scenario()) == ["1", None]


# ---- snapshots and commands ---------------------------------------------------


def test_snapshot_round_trip_is_exact(s: V2Store) -> None:
    ok(s, put("/a/b", "1", expiration=T0 + 30))
    ok(s, put("/a/_h", "2"))
    ok(s, Command("post", "/q", "j"))
    ok(s, Command("delete", "/a/b"))
    data = s.snapshot()
    r = V2Store.restore(data)
    assert r.snapshot() == data
    assert r.index == s.index
    assert r.get("/", recursive=True, sorted=True).to_json() == s.get(
        "/", recursive=True, sorted=True).to_json()
    ev = r.watch("/a/b", since_index=4).poll()  # the history came along
    assert ev is not None and ev.node.value == "1"


def test_restored_ttls_expire_like_the_original(s: V2Store) -> None:
    ok(s, put("/t1", "x", expiration=T0 + 5))
    ok(s, put("/t2", "x", expiration=T0 + 5))
    r = V2Store.restore(s.snapshot())
    s.apply(sync(T0 + 6))
    r.apply(sync(T0 + 6))
    assert r.snapshot() == s.snapshot()


def test_command_encoding_round_trips() -> None:
    cmd = Command("cas", "/k", "v é", True, "p", 7, True, True, T0 + 1.25, True, T0, 2**62)
    assert decode(encode(cmd)) == cmd
    with pytest.raises(ValueError):
        decode(b'["set"]')


# ---- properties ------------------------------------------------------------------

KEYS = ["/a", "/b", "/a/x", "/a/_h", "/d/e/f"]
VALUES = ["", "0", "1", "v"]


def commands() -> st.SearchStrategy[Command]:
    key = st.sampled_from(KEYS)
    value = st.sampled_from(VALUES)
    exp = st.one_of(st.none(), st.integers(1, 20).map(lambda d: T0 + d))
    t = st.integers(0, 30).map(lambda d: T0 + d)
    return st.one_of(
        st.builds(Command, st.just("set"), key, value, st.booleans(), expiration=exp, time=t),
        st.builds(Command, st.just("create"), key, value, expiration=exp, time=t),
        st.builds(Command, st.just("update"), key, value, expiration=exp, time=t),
        st.builds(Command, st.just("cas"), key, value, prev_value=value,
                  prev_index=st.integers(0, 12), time=t),
        st.builds(Command, st.just("delete"), key, dir=st.booleans(),
                  recursive=st.booleans(), time=t),
        st.builds(Command, st.just("cad"), key, prev_value=value,
                  prev_index=st.integers(0, 12), time=t),
        st.builds(Command, st.just("post"), key, value, time=t),
        st.builds(Command, st.just("sync"), time=t),
    )


@settings(max_examples=150)
@given(st.lists(commands(), max_size=40), st.lists(commands(), max_size=15))
def test_snapshot_restore_then_same_commands_same_state(
    before: list[Command], after: list[Command]
) -> None:
    s = V2Store()
    for c in before:
        s.apply(decode(encode(c)))
    r = V2Store.restore(s.snapshot())
    assert r.snapshot() == s.snapshot()
    for c in after:
        a, b = s.apply(c), r.apply(c)
        assert (a.to_json() if a else None) == (b.to_json() if b else None)
    assert r.snapshot() == s.snapshot()


@settings(max_examples=150)
@given(st.lists(commands(), max_size=50))
def test_index_counts_successes_and_history_is_contiguous(cmds: list[Command]) -> None:
    s = V2Store()
    expected = 0
    for c in cmds:
        before = s.index
        res = s.apply(c)
        if isinstance(res, Event):
            expected += 1
            assert res.node.modified_index == s.index == before + 1
        elif isinstance(res, EtcdError):
            assert s.index == before and res.index == before
        else:  # sync: one index per expired node
            expected += s.index - before
    assert s.index == expected
    indexes = [e.index for e in s.hub.history.events]
    assert indexes == list(range(s.index - len(indexes) + 1, s.index + 1))


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["set", "create", "update", "cas", "delete", "cad"]),
                          st.sampled_from(["/k0", "/k1", "/k2"]), st.sampled_from(VALUES),
                          st.sampled_from(VALUES), st.integers(0, 8)), max_size=60))
def test_flat_keys_match_a_dictionary_model(
    ops: list[tuple[str, str, str, str, int]]
) -> None:
    """Single-level keys, no TTL: the store agrees with a dict of (value, modified, created)."""
    s = V2Store()
    model: dict[str, tuple[str, int, int]] = {}
    index = 0
    for op, key, value, prev_value, prev_index in ops:
        res = s.apply(Command(op, key, value, prev_value=prev_value, prev_index=prev_index))
        cur = model.get(key)
        match_ = cur is not None and (not prev_value or cur[0] == prev_value) and (
            not prev_index or cur[1] == prev_index)
        if op == "set":
            expect_ok = True
            new: tuple[str, int, int] | None = (value, index + 1, index + 1)
        elif op == "create":
            expect_ok, new = cur is None, (value, index + 1, index + 1)
        elif op == "update":
            expect_ok, new = cur is not None, (value, index + 1, cur[2] if cur else 0)
        elif op == "cas":
            expect_ok, new = match_, (value, index + 1, cur[2] if cur else 0)
        elif op == "delete":
            expect_ok, new = cur is not None, None
        else:
            expect_ok, new = match_, None
        assert isinstance(res, Event) == expect_ok, (op, key, res)
        if expect_ok:
            index += 1
            if new is None:
                del model[key]
            else:
                model[key] = new
            assert res is not None and not isinstance(res, EtcdError)
            assert res.prev_node is None if cur is None else (
                res.prev_node is not None and res.prev_node.value == cur[0])
    for key, (value, modified, created) in model.items():
        node = s.get(key).node
        assert (node.value, node.modified_index, node.created_index) == (value, modified, created)
    listed = {n.key for n in s.get("/").node.nodes or []}
    assert listed == set(model)


# ---- Go's JSON text -------------------------------------------------------------


def test_strings_are_escaped_like_go() -> None:
    # etcd 3.4.23's answer for this value, from the real member.
    s = 'a\bb\fc\x01<>&\u2028\u2029\t\n\r"\\/é'
    assert quote(s) == (
        '"a\\u0008b\\u000cc\\u0001\\u003c\\u003e\\u0026\\u2028\\u2029\\t\\n\\r\\"\\\\/é"'
    )
    assert quote("plain") == '"plain"'


@given(st.text())
def test_quoted_strings_parse_back_and_are_html_safe(s: str) -> None:
    q = quote(s)
    assert json.loads(q) == s
    assert not any(c in q for c in "<>&\u2028\u2029\b\f")


def test_times_are_rfc3339_with_nanosecond_trimming() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_796_000_100_417_996) == "2026-11-30T00:55:00.417996Z"
    assert rfc3339(1_796_000_100_500_000) == "2026-11-30T00:55:00.5Z"


def test_watchers_move_to_a_store_restored_from_a_snapshot(s: V2Store) -> None:
    w = s.watch("/k")
    r = V2Store.restore(s.snapshot())
    r.take_watchers(s)
    assert s.hub.count == 0 and r.hub.count == 1
    ok(s, put("/k", "old store"))  # the replaced store no longer wakes it
    assert w.poll() is None
    ok(r, put("/k", "new store"))
    ev = w.poll()
    assert ev is not None and ev.node.value == "new store" and r.hub.count == 0


def test_a_deep_key_costs_memory_and_snapshot_linear_in_its_length() -> None:
    import tracemalloc

    depth = 4000  # an 8 KB key: a path per node would hold 16 MB of strings
    key = "/d" * depth
    s = V2Store()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        ok(s, put(key, "v"))
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 2_000 * depth, f"{grown} bytes for a {depth}-level key"
    snap = s.snapshot()
    assert len(snap) < 100 * depth, f"a {len(snap)}-byte snapshot for a {depth}-level key"
    back = V2Store.restore(snap)
    assert back.snapshot() == snap
    assert body(back.get(key))["node"]["key"] == key
    ok(back, Command("delete", "/d", recursive=True, time=T0))
    with pytest.raises(EtcdError):
        back.get(key)


def test_a_version_1_snapshot_with_full_paths_still_loads() -> None:
    v1 = {
        "v": 1, "index": 4, "now": 0,
        "nodes": [["/a", 2, 2, 0, None], ["/a/b", 3, 4, 0, "x"], ["/c", 4, 4, 0, "y"]],
        "history": [], "writes": [0] * len(json.loads(V2Store().snapshot())["writes"]),
    }  # fmt: skip
    s = V2Store.restore(json.dumps(v1).encode())
    assert body(s.get("/a/b"))["node"] == {
        "key": "/a/b", "value": "x", "modifiedIndex": 4, "createdIndex": 3
    }
    assert json.loads(s.snapshot())["nodes"] == [
        [0, "a", 2, 2, 0, None], [0, "c", 4, 4, 0, "y"], [1, "b", 3, 4, 0, "x"]
    ]  # fmt: skip
