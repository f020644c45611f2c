"""No secret leaves the gateway: neither the IMS client secret nor an access token IMS issued, nor a client's
gateway key, appears in any answer (status, headers, body) or in anything the gateway process (and the
emulator it starts) writes, at debug level, through successes, refusals, upstream errors, a token refresh
and IMS refusing the credentials."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from proxy.emulator import aep
from tests.admin.support import (
    ACTIVATION_KEY,
    ADHOC,
    ADMIN_KEY,
    AS_ACTIVATION,
    AS_ADMIN,
    AS_PROFILE,
    EXPORT_JOBS,
    EXTERNAL,
    KEYS,
    SEGMENT_JOBS,
    TARGET,
    V2_ACCEPT,
    activation_info,
    export_body,
)
from tests.conftest import PROFILE_KEY
from tests.servers import ServerProcess

ROUTES = ("admin", "activation", "ups", "external_audiences", "flowservice")


class Recorder:
    """A client of the gateway that keeps every answer as text, and every access token upstream received."""

    def __init__(self, gateway_url: str, emulator_url: str) -> None:
        self.gateway = httpx.Client(base_url=gateway_url, timeout=10)
        self.emulator = httpx.Client(base_url=emulator_url, timeout=10)
        self.answers: list[str] = []
        self.tokens: set[str] = set()

    def __call__(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        response = self.gateway.request(method, path, headers=headers, **kwargs)
        head = "".join(f"{name}: {value}\n" for name, value in response.headers.items())
        self.answers.append(f"{response.status_code}\n{head}\n{response.text}")
        for route in ROUTES:
            seen = self.emulator.get("/_emulator/last-request", params={"route": route})
            if seen.status_code == 200 and "authorization" in seen.json()["headers"]:
                self.tokens.add(seen.json()["headers"]["authorization"].removeprefix("Bearer "))
        return response

    def close(self) -> None:
        self.gateway.close()
        self.emulator.close()


def gateway_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    return {
        "TARGET_PROXY_CLIENT_KEYS": orjson.dumps(KEYS).decode(),
        "TARGET_PROXY_NOTIFICATION_STORE": str(tmp_path / "notifications"),
        "TARGET_PROXY_LOG_LEVEL": "debug",
        "TARGET_PROXY_SHUTDOWN_GRACE_SECONDS": "1",
        **settings,
    }


@pytest.fixture
def client_secret() -> str:
    return f"ims-secret-{secrets.token_hex(12)}"


@pytest.fixture
def embedded(tmp_path: Path, client_secret: str) -> Iterator[ServerProcess]:
    """``serve`` with its embedded emulator, whose IMS integration has a secret of this test's own."""
    server = ServerProcess(
        ["serve", "--port", "0", "--emulator-port", "0"],
        env=gateway_env(
            tmp_path, TARGET_PROXY_EMULATOR_IMS_CLIENT_SECRET=client_secret, TARGET_PROXY_SANDBOX_NAME="prod"
        ),
    ).start(expect=["gateway", "emulator"])
    try:
        yield server
    finally:
        server.stop()


def assert_nothing_leaked(where: str, text: str, client_secret: str, tokens: set[str]) -> None:
    assert client_secret not in text, f"the IMS client secret is in {where}"
    for token in tokens:
        assert token not in text, f"an access token is in {where}"
    for key in (ADMIN_KEY, ACTIVATION_KEY, PROFILE_KEY):
        assert key not in text, f"a client key is in {where}"


def test_no_secret_in_any_answer_or_log_line(embedded: ServerProcess, client_secret: str) -> None:
    call = Recorder(embedded.urls["gateway"], embedded.urls["emulator"])
    try:
        assert call("GET", f"{TARGET}/offers", AS_ADMIN).status_code == 200
        offer = {"name": "kiosk-welcome", "content": "<h1>Hi</h1>"}
        assert call("PUT", f"{TARGET}/offers/content/400030", AS_ADMIN, json=offer).status_code == 200
        operations = [{"operationId": 0, "method": "GET", "relativeUrl": "/target/environments"}]
        assert call("POST", f"{TARGET}/batch", AS_ADMIN, json={"operations": operations}).status_code == 200
        assert call("GET", f"{TARGET}/offers/content/1", AS_ADMIN).status_code == 404
        assert call("GET", f"{TARGET}/users", AS_ADMIN).status_code == 404
        assert call("GET", f"{TARGET}/offers", {}).status_code == 401
        assert call("GET", f"{TARGET}/offers", AS_ACTIVATION).status_code == 403
        assert call("POST", SEGMENT_JOBS, AS_ACTIVATION, json=[{"segmentId": aep.US_WORKERS}]).status_code == 200
        assert call("POST", EXPORT_JOBS, AS_ACTIVATION, json=export_body(aep.US_WORKERS)).status_code == 200
        v2 = {**AS_ACTIVATION, "Accept": V2_ACCEPT}
        assert call("POST", ADHOC, v2, json=activation_info(aep.US_WORKERS)).status_code == 409
        orders = call("POST", ADHOC, v2, json=activation_info(aep.GOLD_MEMBERS)).json()["order"]
        assert call("GET", orders[0]["statusURL"].removeprefix("https://platform.adobe.io"), AS_ACTIVATION).is_success
        assert call("POST", f"{EXTERNAL}/external-audience/", AS_ACTIVATION, json={}).status_code == 400
        form = {"Content-Type": "application/x-www-form-urlencoded", **AS_PROFILE}
        assert call("POST", "/m2/demo/v2/profile/batchUpdate", form, content=b"batch=pcId%2Ca%0A1-1%2Cb%0A").is_success
        # Upstream forgets the token: the gateway's next call is refused, and it signs in again.
        assert call.emulator.post("/_emulator/ims/revoke").status_code == 200
        assert call("GET", f"{TARGET}/offers", AS_ADMIN).status_code == 200
        assert call.emulator.get("/_emulator/stats").json()["tokens_issued"] == 2
        answers = "\n".join(call.answers)
    finally:
        call.close()
    embedded.stop()
    output = "".join(embedded.output)

    assert len(call.tokens) == 2, "both tokens the gateway held were seen upstream"
    assert '"route":"/{tenant}/target/{rest:path}"' in output and '"status":409' in output, "the logs were read"
    assert_nothing_leaked("an answer", answers, client_secret, call.tokens)
    assert_nothing_leaked("the gateway's output", output, client_secret, call.tokens)


def test_no_secret_when_ims_refuses_the_credentials(
    emulator_process: ServerProcess, emulator: httpx.Client, tmp_path: Path, client_secret: str
) -> None:
    server = ServerProcess(
        ["serve", "--port", "0", "--upstream", emulator_process.url],
        env=gateway_env(
            tmp_path,
            TARGET_PROXY_IMS_CLIENT_ID="emulator-client-id",
            TARGET_PROXY_IMS_CLIENT_SECRET=client_secret,  # not the emulator's: IMS refuses it
            TARGET_PROXY_IMS_ORG_ID="EMULATOR@AdobeOrg",
        ),
    ).start(expect=["gateway"])
    call = Recorder(server.url, emulator_process.url)
    try:
        refused = call("GET", f"{TARGET}/offers", AS_ADMIN)
        platform = call("GET", SEGMENT_JOBS, AS_ACTIVATION)
        answers = "\n".join(call.answers)
    finally:
        call.close()
        server.stop()
    output = "".join(server.output)

    assert refused.status_code == platform.status_code == 502
    assert "IMS refused the gateway's credentials" in refused.json()["message"]
    assert '"status":502' in output, "the logs were read"
    assert_nothing_leaked("an answer", answers, client_secret, set())
    assert_nothing_leaked("the gateway's output", output, client_secret, set())
