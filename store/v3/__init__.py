"""etcd 3.4's v3 KV API: MVCC state machine, transactions, compaction, gateway JSON."""
