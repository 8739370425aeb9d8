"""The message a relay attempt sends, defined in `gateway.contract.message`.

Kept so the relay's own imports read as before; plugins import `gateway.plugin`.
"""

from gateway.contract.message import Headers, Message, Middleware, Send, SendResult, compose

__all__ = ["Headers", "Message", "Middleware", "Send", "SendResult", "compose"]
