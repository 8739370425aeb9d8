"""A target plugin for reload tests: it records what it creates, sends and closes."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.plugin import Message, Outcome, SendResult


class Probe:
    """A target plugin that records what it creates, sends and closes; sends to a label
    in `held` wait until it is released."""

    kind = "target"
    name = "probe"

    def __init__(self) -> None:
        self.created: list[str] = []
        self.closed: list[str] = []
        self.sent: list[tuple[str, str]] = []  # (label, event id)
        self.held: dict[str, asyncio.Event] = {}

    def parse(self, section: Any) -> tuple[str, bool]:
        return section.text("label"), section.flag("fail", False)

    def create(self, options: tuple[str, bool], resources: Any) -> ProbeTarget:
        label, fail = options
        if fail:
            raise RuntimeError(f"{label} cannot connect")
        self.created.append(label)
        return ProbeTarget(self, label)


class ProbeTarget:
    def __init__(self, plugin: Probe, label: str) -> None:
        self.plugin, self.label = plugin, label

    async def __call__(self, message: Message) -> SendResult:
        self.plugin.sent.append((self.label, str(message.event_id)))
        if self.label in self.plugin.held:
            await self.plugin.held[self.label].wait()
        return SendResult(Outcome.ACKED)

    async def aclose(self) -> None:
        self.plugin.closed.append(self.label)
