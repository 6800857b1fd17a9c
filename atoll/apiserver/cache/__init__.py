"""The watch cache: every stored object in memory, fed by the store's watch (GET, LIST and WATCH
never scan the database)."""
