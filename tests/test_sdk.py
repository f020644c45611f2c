"""Adobe's target-python-sdk pointed at the gateway stays on it, call after call, with its cookies.

Against Target itself the SDK switches to ``mboxedgeNN.tt.omtrdc.net`` as soon as it sees an
``edgeHost`` or a tntId with a location suffix; those host names do not resolve here, so a single call
that escaped the gateway would fail the test.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from delivery_api_client import (
    ChannelType,
    Context,
    DeliveryRequest,
    ExecuteRequest,
    MboxRequest,
    MetricType,
    Notification,
    NotificationMbox,
    PrefetchRequest,
)
from target_python_sdk import TargetClient

from tests.conftest import InProcessGateway
from tests.support import wait_for


def page_request() -> DeliveryRequest:
    return DeliveryRequest(
        context=Context(channel=ChannelType.WEB),
        execute=ExecuteRequest(mboxes=[MboxRequest(index=0, name="home-hero")]),
        prefetch=PrefetchRequest(mboxes=[MboxRequest(index=0, name="product-reco")]),
    )


@pytest.mark.usefixtures("fresh_target_sdk")
def test_sdk_stays_on_the_gateway_across_calls(fresh_gateway: InProcessGateway, emulator: httpx.Client) -> None:
    server_domain = fresh_gateway.url.removeprefix("http://")
    client = TargetClient.create(
        {"client": "demo", "organization_id": "ORG@AdobeOrg", "server_domain": server_domain, "secure": False}
    )
    first = client.get_offers({"request": page_request()})
    cookie = first["target_cookie"]["value"]
    assert not first.get("target_location_hint_cookie"), "no location hint may reach the SDK"
    tnt_id = first["response"].id.tnt_id
    assert "." not in tnt_id
    hero = first["response"].execute.mboxes[0].options[0].content

    for _ in range(3):
        again = client.get_offers({"request": page_request(), "target_cookie": cookie})
        assert again["response"].id.tnt_id == tnt_id, "the visitor is recognised from its cookie"
        assert again["response"].execute.mboxes[0].options[0].content == hero, "same experience"
        cookie = again["target_cookie"]["value"]
        assert client.config.get("target_location_hint") is None

    token = first["response"].prefetch.mboxes[0].options[0].event_token
    notification = Notification(
        id=str(uuid.uuid4()),
        type=MetricType.DISPLAY,
        timestamp=int(time.time() * 1000),
        tokens=[token],
        mbox=NotificationMbox(name="product-reco"),
    )
    sent = client.send_notifications(
        {
            "request": DeliveryRequest(context=Context(channel=ChannelType.WEB), notifications=[notification]),
            "target_cookie": cookie,
        }
    )
    assert sent["response"].status == 200
    assert [n.id for n in sent["response"].notifications] == [notification.id]

    # The gateway took the notification over and delivers it by itself, shortly.
    stats = wait_for(lambda: (s := emulator.get("/_emulator/stats").json())["notifications"]["display"] and s)
    assert stats["requests"] == {"delivery": 5}
    assert stats["notifications"] == {"display": 1, "click": 0, "duplicates": 0}
    # Four executed page loads plus the notified prefetch.
    assert stats["impressions"] == 5


@pytest.mark.usefixtures("fresh_target_sdk")
def test_a_returning_visitors_views_cost_at_most_two_delivery_calls_and_are_each_counted(
    fresh_gateway: InProcessGateway, emulator: httpx.Client
) -> None:
    server_domain = fresh_gateway.url.removeprefix("http://")
    client = TargetClient.create(
        {"client": "demo", "organization_id": "ORG@AdobeOrg", "server_domain": server_domain, "secure": False}
    )
    execute = DeliveryRequest(
        context=Context(channel=ChannelType.WEB),
        execute=ExecuteRequest(mboxes=[MboxRequest(index=0, name="home-hero")]),
    )
    cookie = client.get_offers({"request": execute})["target_cookie"]["value"]  # a new visitor, once
    views_before = emulator.get("/_emulator/stats").json()["requests"]["delivery"]
    for _ in range(20):  # then the same visitor returns, its cookie passed back
        answer = client.get_offers({"request": execute, "target_cookie": cookie})
        assert answer["response"].execute.mboxes[0].options[0].content
        cookie = answer["target_cookie"]["value"]
    cache = fresh_gateway.parts.cache.counters
    assert cache.hits >= 18 and cache.hits + cache.misses == 20, cache
    displays = cache.hits
    counted = wait_for(
        lambda: (s := emulator.get("/_emulator/stats").json())["notifications"]["display"] >= displays and s
    )
    assert counted["notifications"] == {"display": displays, "click": 0, "duplicates": 0}, "every hit counted once"
    upstream_views = 20 - cache.hits
    assert upstream_views <= 2
    flushes = counted["requests"]["delivery"] - views_before - upstream_views
    assert 1 <= flushes <= 2, counted
    assert counted["impressions"] == 21, "every view counted once: executed upstream, or notified"
