"""Libraries' own log records: one line, no arguments or traceback, once a minute."""

from __future__ import annotations

import logging
import uuid

from gateway.logging import quiet_libraries

# The sampling is per message template and process-wide: each test logs its own.
RUN = uuid.uuid4().hex[:8]


def test_asyncpg_pool_floor_traceback_becomes_one_line(caplog):
    quiet_libraries()
    quiet_libraries()  # idempotent: still one filter
    pool = logging.getLogger("asyncpg.pool")
    assert len(pool.filters) == 1
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        try:
            raise ConnectionRefusedError("[Errno 111] Connect call failed ('127.0.0.1', 5432)")
        except ConnectionRefusedError:
            pool.warning(f"Failed to restore the pool connection floor {RUN}", exc_info=True)
    (record,) = [r for r in caplog.records if r.name == "asyncpg.pool"]
    assert record.exc_info is None
    assert record.getMessage() == (
        f"Failed to restore the pool connection floor {RUN} (ConnectionRefusedError)"
    )
    assert "Traceback" not in caplog.text


def test_aiohttp_loggers_print_no_request_bytes(caplog):
    quiet_libraries()
    caplog.set_level(logging.DEBUG)
    secret = "Bearer tok_abc"
    logging.getLogger("aiohttp.access").info('127.0.0.1 "POST /in/x HTTP/1.1" %s', secret)
    try:
        raise ValueError(f"Invalid header value char: {secret!r}")
    except ValueError:
        logging.getLogger("aiohttp.server").exception(f"Error handling {RUN} from %s", secret)
    assert secret not in caplog.text
    (record,) = caplog.records
    assert record.getMessage() == f"Error handling {RUN} from %s (ValueError)"
