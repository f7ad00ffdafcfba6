"""What a node backend is and can do: node specs and small capability protocols.

Faults (nemesis/) and the harness (harness/) both import this and nothing of each
other's, so neither knows the other's insides (docs/nemesis.md).
"""
