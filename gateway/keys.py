"""Every typed key of the aiohttp application."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from gateway.admin.auth import Access
from gateway.admin.feeder import ReplayFeeder
from gateway.admin.login import LoginForm
from gateway.admin.model import AdminModel
from gateway.admin.stream import Stream
from gateway.clock import Clock
from gateway.config import Config
from gateway.ingress.guard import Rejections
from gateway.ingress.live import Live
from gateway.ingress.passthrough import PassThrough
from gateway.metrics import Metrics
from gateway.plugins import Registry, Resources
from gateway.relay.worker import Relay
from gateway.storage.batch import GroupCommit
from gateway.storage.store import EventRecord, ProxyAnswer, Store, Stored
from gateway.tracing import Tracing

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
REGISTRY = web.AppKey("registry", Registry)
DSN = web.AppKey("dsn", str)
STORE = web.AppKey("store", Store)
INGEST = web.AppKey("ingest", GroupCommit[EventRecord, Stored])
HTTP = web.AppKey("http", aiohttp.ClientSession)
RESOURCES = web.AppKey("resources", Resources)  # what plugins get: the session, the client
RELAY = web.AppKey("relay", Relay)
LIVE = web.AppKey("live", Live)  # what ingress serves under: swapped by a reload
REJECTIONS = web.AppKey("rejections", Rejections)
PROXY_ANSWERS = web.AppKey("proxy_answers", GroupCommit[ProxyAnswer, None])
UPSTREAM = web.AppKey("upstream", PassThrough)  # only with an upstream: section
ADMIN_ACCESS = web.AppKey("admin_access", Access)
ADMIN_MODEL = web.AppKey("admin_model", AdminModel)
ADMIN_STREAM = web.AppKey("admin_stream", Stream)
REPLAY_FEEDER = web.AppKey("replay_feeder", ReplayFeeder)
LOGIN_FORM = web.AppKey("login_form", LoginForm)
METRICS = web.AppKey("metrics", Metrics)  # this app's own registry, read at /metrics
TRACING = web.AppKey("tracing", Tracing)  # only while traces are on (gateway/tracing.py)
