"""Adobe's target-python-sdk as a client of the emulator: offers, notifications and the edge host hint."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

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
    VisitorId,
)
from target_python_sdk import TargetClient

from tests.emulator.support import HERO_A, HERO_B, RECO, activity_counts, now_ms, stats

SDK_SESSION = "sdk-session-1"


@pytest.fixture
def sdk(emulator_url: str, fresh_target_sdk: None) -> Callable[[], TargetClient]:
    """A factory of fresh TargetClients on the emulator (each one learns its own location hint)."""
    domain = urlsplit(emulator_url).netloc

    def create() -> TargetClient:
        return TargetClient.create(
            {"client": "demo", "organization_id": "ORG@AdobeOrg", "server_domain": domain, "secure": False}
        )

    return create


def web() -> Context:
    return Context(channel=ChannelType.WEB)


def offers_request() -> DeliveryRequest:
    return DeliveryRequest(
        context=web(),
        execute=ExecuteRequest(mboxes=[MboxRequest(index=0, name="home-hero")]),
        prefetch=PrefetchRequest(mboxes=[MboxRequest(index=0, name="product-reco")]),
    )


def notify(client: TargetClient, tnt_id: str, notifications: list[Notification]) -> dict:
    """Send notifications as the visitor, by tntId without its location suffix and with no target cookie."""
    request = DeliveryRequest(context=web(), id=VisitorId(tnt_id=tnt_id.split(".")[0]), notifications=notifications)
    return client.send_notifications({"request": request, "session_id": SDK_SESSION})


def test_get_offers_executes_and_prefetches(emulator: httpx.Client, sdk: Callable[[], TargetClient]) -> None:
    result = sdk().get_offers({"request": offers_request(), "session_id": SDK_SESSION})

    response = result["response"]
    assert response.status == 200
    executed = response.execute.mboxes[0]
    assert executed.name == "home-hero"
    assert executed.options[0].content in (HERO_A, HERO_B)
    prefetched = response.prefetch.mboxes[0]
    assert prefetched.options[0].content == RECO
    assert prefetched.options[0].event_token
    counted = stats(emulator)
    assert counted["requests"] == {"delivery": 1}
    assert counted["impressions"] == 1
    assert activity_counts(emulator, 200003) == {}


def test_the_sdk_learns_the_home_cluster_from_the_answer(
    emulator: httpx.Client, sdk: Callable[[], TargetClient]
) -> None:
    client = sdk()

    result = client.get_offers({"request": offers_request(), "session_id": SDK_SESSION})

    tnt_id = result["response"].id.tnt_id
    home = tnt_id.rsplit(".", 1)[1].split("_")[0]
    assert result["response"].edge_host == f"mboxedge{home}.tt.omtrdc.net"
    assert result["target_location_hint_cookie"]["value"] == home
    assert client.config["target_location_hint"] == home
    assert f"PC#{tnt_id}#" in result["target_cookie"]["value"]


def test_notifications_sent_by_the_sdk_are_counted(emulator: httpx.Client, sdk: Callable[[], TargetClient]) -> None:
    result = sdk().get_offers({"request": offers_request(), "session_id": SDK_SESSION})
    response = result["response"]
    prefetched = response.prefetch.mboxes[0]
    display = Notification(
        id="sdk-display-1",
        type=MetricType.DISPLAY,
        timestamp=now_ms(),
        tokens=[prefetched.options[0].event_token],
        mbox=NotificationMbox(name="product-reco", state=prefetched.state),
    )
    click = Notification(
        id="sdk-click-1",
        type=MetricType.CLICK,
        timestamp=now_ms(),
        tokens=[prefetched.metrics[0].event_token],
        mbox=NotificationMbox(name="product-reco"),
    )

    sent = notify(sdk(), response.id.tnt_id, [display, click])

    assert [n.id for n in sent["response"].notifications] == ["sdk-display-1", "sdk-click-1"]
    counted = stats(emulator)
    assert counted["notifications"] == {"display": 1, "click": 1, "duplicates": 0}
    assert counted["impressions"] == 2  # the executed hero, then the prefetched reco on display
    assert activity_counts(emulator, 200003)["impressions"] == 1
    assert activity_counts(emulator, 200003)["clicks"] == 1


def test_a_notification_resent_by_the_sdk_is_a_duplicate(
    emulator: httpx.Client, sdk: Callable[[], TargetClient]
) -> None:
    response = sdk().get_offers({"request": offers_request(), "session_id": SDK_SESSION})["response"]
    token = response.prefetch.mboxes[0].options[0].event_token
    display = Notification(id="sdk-once", type=MetricType.DISPLAY, timestamp=now_ms(), tokens=[token])

    notify(sdk(), response.id.tnt_id, [display])
    notify(sdk(), response.id.tnt_id, [display])

    counted = stats(emulator)
    assert counted["notifications"] == {"display": 1, "click": 0, "duplicates": 1}
    assert activity_counts(emulator, 200003)["impressions"] == 1


def test_get_attributes_reads_json_offers(emulator: httpx.Client, sdk: Callable[[], TargetClient]) -> None:
    request = DeliveryRequest(context=web())

    attributes = sdk().get_attributes(["product-reco"], {"request": request, "session_id": SDK_SESSION})

    assert attributes.as_object("product-reco") == RECO
    assert attributes.get_value("product-reco", "layout") == "grid"
    assert activity_counts(emulator, 200003)["impressions"] == 1
