"""Object semantics: the storage of every resource (create, update, patch, delete, status,
finalizers) on top of the watch cache and the store, per-kind strategies, lists and metadata rules."""
