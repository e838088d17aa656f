"""Several `rosterdrop serve` on one PostgreSQL and one shared data directory.

`node` registers this daemon, renews its lease and takes over dead nodes' imports; `logins`
shares failed logins between the nodes. With SQLite there is one node, and these keep the
single-node rules (the data directory's lock, recovery of every unfinished import).
"""
