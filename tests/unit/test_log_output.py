"""Log lines from inside the event loop are written together, in order, once per iteration."""

from __future__ import annotations

import asyncio

from gateway.logging import _Gathered


class Out:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def flush(self) -> None:
        pass


def test_lines_logged_in_one_loop_iteration_are_one_write_in_order():
    out = Out()
    gathered = _Gathered(out)  # type: ignore[arg-type]

    async def log_three() -> list[bytes]:
        for n in range(3):
            gathered.write(b"line %d\n" % n)
        before = list(out.writes)
        await asyncio.sleep(0)  # the iteration ends: the lines go out
        await asyncio.sleep(0)
        return before

    assert asyncio.run(log_three()) == []
    assert out.writes == [b"line 0\nline 1\nline 2\n"]


def test_outside_a_loop_each_line_is_written_at_once():
    out = Out()
    gathered = _Gathered(out)  # type: ignore[arg-type]
    gathered.write(b"one\n")
    gathered.write(b"two\n")
    assert out.writes == [b"one\n", b"two\n"]


def test_what_is_left_is_written_out_on_demand():
    out = Out()
    gathered = _Gathered(out)  # type: ignore[arg-type]

    async def log_and_leave() -> None:
        gathered.write(b"last\n")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(log_and_leave())
    loop.close()  # its scheduled write never ran
    gathered.write_out()  # what atexit does
    assert b"".join(out.writes) == b"last\n"
