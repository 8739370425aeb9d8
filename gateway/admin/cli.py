"""`hookgate events | show | replay | tail | listen` (and `targets --url`): the admin API
from a terminal. Each talks to a running hookgate at ``--url``/``HOOKGATE_URL`` with
``--token``/``HOOKGATE_ADMIN_TOKEN``; gateway/cli.py registers them through `register`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TextIO

import aiohttp
import orjson

from gateway.admin.model import Body
from gateway.errors import HookgateError
from gateway.ingress.redact import REDACTED

DEFAULT_URL = "http://127.0.0.1:8080"
# Not forwarded by `listen`: they describe the hop to hookgate, not the webhook.
_NOT_FORWARDED = frozenset({"host", "content-length", "transfer-encoding", "connection",
                            "keep-alive", "te", "trailer", "upgrade", "expect",
                            "proxy-connection"})  # fmt: skip
Command = Callable[[argparse.Namespace, TextIO], Coroutine[Any, Any, int]]


class ApiError(HookgateError):
    """The admin API refused the request."""


class Client:
    """The admin API over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self.session.request(
                method, self.url + path, headers=self.headers, **kwargs
            ) as response:
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:
            raise ApiError(f"cannot use the admin API at {self.url}: {exc}") from exc
        if response.status >= 400:
            error = data.get("error") if isinstance(data, dict) else data
            raise ApiError(f"{response.status}: {error}")
        return data

    async def stream(self, source: str | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(kind, data) for each server-sent event of /admin/api/stream."""
        params = {"source": source} if source else {}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        try:
            async with self.session.get(
                self.url + "/admin/api/stream", headers=self.headers, params=params,
                timeout=timeout,
            ) as response:  # fmt: skip
                if response.status >= 400:
                    raise ApiError(f"{response.status}: {await response.text()}")
                kind = ""
                async for raw in response.content:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        yield kind, orjson.loads(line[6:])
        except aiohttp.ClientError as exc:
            raise ApiError(f"the stream from {self.url} ended: {exc}") from exc
        # A clean end is the server's doing (it stops or restarts): say so, exit 1.
        raise ApiError(f"the stream from {self.url} ended: the server closed it")


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help=f"the running hookgate (default: $HOOKGATE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token", default=None, help="an admin token (default: $HOOKGATE_ADMIN_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON as it is")


def _filters(parser: argparse.ArgumentParser) -> None:
    for flag, text in [
        ("--source", "only this source"),
        ("--type", "only this event type; * is a wildcard"),
        ("--status", "dead (any dead), pending (any pending) or delivered (all delivered)"),
        ("--target", "only events with a delivery to this target"),
        ("--since", "from this ISO 8601 time, or a duration like 1h meaning that long ago"),
        ("--until", "up to this time (the same forms as --since)"),
    ]:
        parser.add_argument(flag, help=f"{text} (default: any)")
    parser.add_argument(
        "-q", "--query", dest="q", help="text in the body or a header value (default: any)"
    )


def _command(commands: Any, name: str, run: Command, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=text, description=text)
    _connection(parser)
    parser.set_defaults(run=sync(run), arun=run)
    return parser


def register(commands: Any) -> None:
    """Add the admin API commands to `hookgate`'s subcommands."""
    events = _command(commands, "events", list_events, "list received events, newest first")
    _filters(events)
    events.add_argument("--limit", type=int, default=20, help="at most this many (default: 20)")
    show = _command(commands, "show", show_event,
                    "one event: its request, deliveries, attempts and replays")  # fmt: skip
    show.add_argument("id", help="the event's id (the 202's id)")
    replay = _command(commands, "replay", replay_command,
                      "replay one event, or every delivery matching --filter")  # fmt: skip
    replay.add_argument("id", nargs="?", help="an event id (or use --filter)")
    replay.add_argument(
        "--filter", action="append", default=[], metavar="KEY=VALUE",
        help="source, type, status, target, outcome, since, until or q; repeatable "
             "(default: none, replay the event given)",
    )  # fmt: skip
    replay.add_argument(
        "--target", action="append", dest="targets",
        help="only (bulk) or also (one event) to this target; repeatable "
             "(default: the targets it had)",
    )  # fmt: skip
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    replay.add_argument(
        "--new-key", action="store_true", help="mint a new idempotency key for each delivery"
    )
    for name, run, text in [
        ("tail", tail, "follow new events and attempts live"),
        ("listen", listen, "forward each new event, as received, to a local URL"),
    ]:
        command = _command(commands, name, run, text)
        command.add_argument("--source", help="only this source (default: every source)")
        command.add_argument(
            "--count", type=int, help="stop after this many events (default: run until Ctrl-C)"
        )
        if name == "listen":
            command.add_argument(
                "--forward", required=True,
                help="where to send them, e.g. http://localhost:3000/hooks (no default)",
            )  # fmt: skip


def add_targets_options(parser: argparse.ArgumentParser) -> None:
    """`hookgate targets --url ...` asks a running hookgate instead of the database."""
    _connection(parser)
    parser.set_defaults(arun=targets)


def wants_api(args: argparse.Namespace) -> bool:
    """`--url`, or HOOKGATE_URL without `--config`: ask the API rather than the database."""
    return bool(args.url or (os.environ.get("HOOKGATE_URL") and args.config is None))


def sync(run: Command) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        return asyncio.run(run(args, sys.stdout))

    return command


async def _with_client(args: argparse.Namespace, work: Callable[[Client], Awaitable[int]]) -> int:
    url = args.url or os.environ.get("HOOKGATE_URL") or DEFAULT_URL
    token = args.token or os.environ.get("HOOKGATE_ADMIN_TOKEN")
    if not token:
        raise ApiError("an admin token is needed: --token or HOOKGATE_ADMIN_TOKEN")
    async with aiohttp.ClientSession() as session:
        return await work(Client(session, url, token))


def _print(out: TextIO, data: Any) -> None:
    out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _pills(deliveries: list[dict[str, Any]]) -> str:
    return " ".join(f"{d['target']}:{d['status']}" for d in deliveries) or "-"


async def list_events(args: argparse.Namespace, out: TextIO) -> int:
    params = {k: v for k in ("source", "type", "status", "target", "since", "until", "q")
              if (v := getattr(args, k))}  # fmt: skip
    params["limit"] = str(args.limit)

    async def work(client: Client) -> int:
        page = await client.call("GET", "/admin/api/events", params=params)
        if args.json:
            _print(out, page)
            return 0
        for e in page["items"]:
            out.write(f"{e['received_at']}  {e['id']}  {e['source']:<12} "
                      f"{e['event_type'] or '-':<24} {_pills(e['deliveries'])}\n")  # fmt: skip
        return 0

    return await _with_client(args, work)


async def show_event(args: argparse.Namespace, out: TextIO) -> int:
    async def work(client: Client) -> int:
        event = await client.call("GET", f"/admin/api/events/{args.id}")
        if args.json:
            _print(out, event)
        else:
            _describe(event, out)
        return 0

    return await _with_client(args, work)


def _describe(event: dict[str, Any], out: TextIO) -> None:
    request = event["request"]
    query = f"?{request['query']}" if request["query"] else ""
    out.write(
        f"event {event['id']}  {event['source']}  {event['event_type'] or '-'}  "
        f"{event['received_at']}\n{request['method']} {request['path']}{query}\n"
    )
    for name, value in request["headers"]:
        out.write(f"  {name}: {value}\n")
    body = request["body"]
    out.write((body["text"] if body["text"] is not None else f"(base64) {body['base64']}") + "\n")
    for d in event["deliveries"]:
        out.write(f"delivery {d['id']} → {d['target']}: {d['status']} ({d['attempts']} attempts)\n")
        for mark in d["replays"]:
            out.write(f"  replayed by {mark['created_by']} at {mark['created_at']} "
                      f"(replay {mark['replay_id']})\n")  # fmt: skip
        for a in d["history"]:
            out.write(
                f"  #{a['attempt']} {a['started_at']} {a['outcome'] or 'in flight'} "
                f"{a['status_code'] or ''} {a['duration_ms'] or ''}ms {a['error'] or ''}\n"
            )


async def replay_command(args: argparse.Namespace, out: TextIO) -> int:
    if bool(args.id) == bool(args.filter):
        raise ApiError("replay takes an event id or --filter KEY=VALUE, not both or neither")

    async def work(client: Client) -> int:
        if args.id:
            body: dict[str, Any] = {"new_key": args.new_key}
            if args.targets:
                body["targets"] = args.targets
            result = await client.call("POST", f"/admin/api/events/{args.id}/replay", json=body)
        else:
            result = await client.call("POST", "/admin/api/replays", json=_bulk_body(args))
        if args.json:
            _print(out, result)
            return 0
        counts = result["counts"]
        verb = "would replay" if result["dry_run"] else "replayed"
        by_target = ", ".join(f"{t}: {n}" for t, n in counts["by_target"].items()) or "-"
        out.write(
            f"{verb} {counts['deliveries']} deliveries ({by_target}); replay {result['id']}\n"
        )
        return 0

    return await _with_client(args, work)


def _bulk_body(args: argparse.Namespace) -> dict[str, Any]:
    filters = {}
    for item in args.filter:
        key, equals, value = item.partition("=")
        if not equals:
            raise ApiError(f"--filter {item}: expected KEY=VALUE")
        filters[key] = value
    body: dict[str, Any] = {"filter": filters, "dry_run": args.dry_run, "new_key": args.new_key}
    if args.targets:
        body["targets"] = args.targets
    return body


async def tail(args: argparse.Namespace, out: TextIO) -> int:
    async def work(client: Client) -> int:
        seen = 0
        async for kind, data in client.stream(args.source):
            if args.json:
                out.write(orjson.dumps({"kind": kind, **data}).decode() + "\n")
            elif kind == "event":
                out.write(f"event    {data['received_at']}  {data['id']}  {data['source']}  "
                          f"{data['event_type'] or '-'}  {data['size']} bytes\n")  # fmt: skip
            else:
                out.write(f"attempt  {data['started_at']}  {data['delivery_id']} → "
                          f"{data['target']}  #{data['attempt']} {data['outcome']} "
                          f"{data['status_code'] or ''}\n")  # fmt: skip
            out.flush()
            seen += kind == "event"
            if args.count and seen >= args.count:
                return 0
        return 0

    return await _with_client(args, work)


async def listen(args: argparse.Namespace, out: TextIO) -> int:
    """Forward each new event's method, query and headers (credentials are not) and body."""

    async def work(client: Client) -> int:
        forwarded = 0
        async for kind, data in client.stream(args.source):
            if kind != "event":
                continue
            event = await client.call("GET", f"/admin/api/events/{data['id']}")
            out.write(await _forward(client.session, args.forward, event) + "\n")
            out.flush()
            forwarded += 1
            if args.count and forwarded >= args.count:
                return 0
        return 0

    return await _with_client(args, work)


async def _forward(session: aiohttp.ClientSession, url: str, event: dict[str, Any]) -> str:
    request = event["request"]
    headers = [(name, value) for name, value in request["headers"]
               if name.lower() not in _NOT_FORWARDED and REDACTED not in value]  # fmt: skip
    body = Body(request["body"]["text"], request["body"]["base64"], request["body"]["size"]).raw()
    query = _unredacted(request["query"])
    target = url + (f"?{query}" if query and "?" not in url else "")
    try:
        async with session.request(
            request["method"],
            target,
            headers=headers,
            data=body,
            skip_auto_headers=["Content-Type"],
        ) as response:
            await response.read()
            return f"{event['id']}  {event['source']}  → {response.status} {url}"
    except aiohttp.ClientError as exc:
        return f"{event['id']}  {event['source']}  → failed: {type(exc).__name__}: {exc}"


def _unredacted(query: str) -> str:
    """The stored query without the parameters stored redacted (credentials, hookgate's
    own among them: an api-key's query parameter), as redacted headers are left out."""
    return "&".join(part for part in query.split("&") if part.partition("=")[2] != REDACTED)


async def targets(args: argparse.Namespace, out: TextIO) -> int:
    async def work(client: Client) -> int:
        listing = await client.call("GET", "/admin/api/targets")
        if args.json:
            _print(out, listing)
            return 0
        for t in listing["items"]:
            state = f"paused ({t['reason'] or 'no reason given'})" if t["paused"] else "active"
            line = (
                f"{t['name']}\t{state}\tpending {t['pending']}\tdue {t['due']}\t"
                f"in flight {t['in_flight']}\tqueued {t['queued']}\tdead {t['dead']}\t"
                f"breaker {t['breaker']}"
            )
            out.write(line + "\n")
        return 0

    return await _with_client(args, work)
