"""The HTTP layer: one request handler, routing, codecs (JSON, YAML, protobuf), resource
endpoints, watch streams, pod logs and request metrics. It translates requests into calls on the
registry and renders the answers; it holds no per-kind behaviour."""
