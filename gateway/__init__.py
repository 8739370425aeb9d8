"""hookgate's core. `create_app(config)` and `load_config(path)` are the embedding API:

    from aiohttp import web
    import gateway

    host = web.Application()
    host.add_subapp("/hooks", gateway.create_app(gateway.load_config("hookgate.yaml")))

They are imported on first use, so importing a submodule (as plugins do) stays cheap
and free of import cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.app import create_app as create_app
    from gateway.config import load_config as load_config

__all__ = ["create_app", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    if name == "load_config":
        from gateway.config import load_config

        return load_config
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
