"""What clients read to learn the API: discovery documents (aggregated and legacy), OpenAPI v3
(and the v2 stub old kubectl needs) and the server's version."""
