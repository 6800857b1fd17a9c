"""CustomResourceDefinitions: serving CRDs as they are created and the structural schemas that
prune, default and validate custom resources."""
