"""The PostgreSQL backend of :class:`courriel.store.api.Store` (several nodes, one store)."""
