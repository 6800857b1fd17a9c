"""RunP, the process runtime: pods run as local process groups without privileges.

Modules: ``runtime`` (informer → pod workers), ``pod`` (pod state machine), ``container``
(one container's attempts, probes, back-off), ``process`` (the sh shim: spawn, wait, kill),
``sandbox``/``recover`` (persisted records, re-adoption after an agent restart), ``volumes``/
``render``/``envvars``/``sources`` (what a container sees), ``images`` (local image store),
``logs`` (files, rotation, reading), ``status`` (pod status like the kubelet's).
"""
