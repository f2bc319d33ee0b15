"""Interactive queries: one person's state, asked of the worker that holds it (in the manner of
Kafka Streams' interactive queries).

Each worker serves ``GET /person/<person key>`` on ``ZHUCAN_QUERY_ADDR`` (loopback, a free port,
by default) and says where in its line of ``zhucan.worker-policies`` with its consumer client id.
``zhucan person`` finds the partition's owner in the streams group's assignment, and asks it.

The answer holds a person's data: the worker answers only a caller that shows the query token,
an HMAC of the deployment's secret (whoever holds the secret can compute every person key
anyway). A worker that does not hold the person's partition answers 409, naming the partition;
the log names the person key, never an ID number.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import socket
from collections.abc import Callable

from aiohttp import web

from streams.domain.person import PersonState
from streams.domain.view import person_view
from streams.runtime.context import StageContext

log = logging.getLogger("zhucan.worker")
_KEY = re.compile(r"^[0-9a-f]{64}$")


def query_token(secret: bytes) -> str:
    """The bearer token of the person queries: who holds the deployment's secret may ask."""
    return hmac.new(secret, b"zhucan person query", hashlib.sha256).hexdigest()


class PersonQueries:
    def __init__(self, ctx: StageContext, held: Callable[[], set[int]]) -> None:
        self.ctx = ctx
        self.held = held
        self.token = query_token(ctx.secret)
        self.url = ""
        self._runner: web.AppRunner | None = None

    def _json(self, status: int, doc: dict[str, object]) -> web.Response:
        return web.Response(status=status, text=json.dumps(doc, ensure_ascii=False, default=str),
                            content_type="application/json")

    async def person(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return self._json(401, {"error": "a person query needs the deployment's query token"})
        key = request.match_info["key"]
        if not _KEY.match(key):
            return self._json(400, {"error": "the person key is 64 lower-case hex digits"})
        partition = self.ctx.partition_of(key.encode())
        if partition not in self.held():
            return self._json(409, {"error": "not held here", "partition": partition})
        stored = self.ctx.store.get(partition, key.encode())
        log.info("person query for key %s… (partition %d): %s", key[:12], partition, "found" if stored else "none")
        if stored is None:
            return self._json(404, {"error": "no state for this person", "partition": partition})
        return self._json(200, {"partition": partition, "person": person_view(PersonState.loads(stored))})

    async def start(self, host: str, port: int) -> str:
        app = web.Application()
        app.router.add_get("/person/{key}", self.person)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))  # port 0: a free one, said in the worker's line
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        log.info("person queries on %s/person/<key> (token: the deployment's secret)", self.url)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
