"""Admission: the chain of checks and mutations every write passes before it is stored, and its
plugins (namespace lifecycle, resource quota, Kuscia kinds)."""
