"""The baseline the hit path is held against: a bare Starlette route that parses and dumps JSON.

uvicorn loadtests.echo_app:app --loop uvloop --http httptools
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    return Response(orjson.dumps(orjson.loads(await request.body())), media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", echo, methods=["POST"])])
