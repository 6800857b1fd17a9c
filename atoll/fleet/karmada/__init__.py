"""Karmada inside one fleet instance: member clusters, policies, scheduling, bindings, Works,
execution on members and status aggregation back into the resource templates."""
