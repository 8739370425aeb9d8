"""The definitions plugins and the core share, below ingress, relay, storage and config.

`gateway.plugin` is the public face of this package: plugin authors import that module,
never these. Everything here imports only the standard library, its own siblings,
`gateway.section`, `gateway.errors`, `gateway.units` and `gateway.clock` (an
import-linter contract in pyproject.toml checks it), so the core can move freely above it.
"""
