"""Server-side ``meta.k8s.io/v1`` (and ``v1beta1``) Tables: column helpers, the printers of built-in kinds and the
renderer (what ``kubectl get`` prints)."""
