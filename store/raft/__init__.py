"""A sans-I/O Raft core (see types.py for the driver's contract)."""
