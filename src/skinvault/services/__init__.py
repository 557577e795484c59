"""Use cases: each takes a wired :class:`~skinvault.bootstrap.Vault`, owns its transaction,
and is the only place that combines policy, audit, crypto and storage."""
