"""A gateway of a test's own, built in the test process with chosen settings and served on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from proxy.app import create_app
from proxy.settings import Settings
from tests.inprocess import serve_in_thread

DEMO_MBOXES = ["home-hero", "home-banner", "product-reco", "kiosk-welcome", "tv-rail-1", "tv-rail-2", "checkout-promo"]


@dataclass
class OwnGateway:
    url: str
    client: httpx.Client
    app: Any

    @property
    def parts(self) -> Any:
        """The gateway's long-lived parts (sessions, cache, notification store, counters)."""
        return self.app.state.gateway


@contextlib.contextmanager
def own_gateway(settings: dict[str, Any], **overrides: Any) -> Iterator[OwnGateway]:
    app = create_app(Settings(**{**settings, **overrides}))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield OwnGateway(url, client, app)
