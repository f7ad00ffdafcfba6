"""etcd v2's error vocabulary, as histories record it: defined once, for the harness's
client (which outcome an answer is) and the `etcd` model (which failures observe state).

A *precondition failure* is a definite refusal after the server evaluated the request's
precondition against the key: the operation did not take effect, and at that instant the
precondition was false. Other 4xx answers are refusals that observe nothing. A 5xx
(errorCode 300: raft internal, a timeout or a leader change) leaves a write undecided.
"""

from __future__ import annotations

from typing import Final

KEY_NOT_FOUND: Final = 100
COMPARE_FAILED: Final = 101
NODE_EXISTS: Final = 105
RAFT_INTERNAL: Final = 300

# errorCode -> the name a history records for it
PRECONDITION_FAILURES: Final = {
    KEY_NOT_FOUND: "key-not-found",
    COMPARE_FAILED: "compare-failed",
    NODE_EXISTS: "key-exists",
}
