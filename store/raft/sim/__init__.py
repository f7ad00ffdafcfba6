"""The parts of the deterministic Raft simulator (run it with ``store.raft.simulator``)."""
