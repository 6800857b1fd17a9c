"""Who is calling and what they may do: users, authenticators (tokens, client certificates),
ServiceAccount tokens, RBAC, access reviews and the bootstrap policy."""
