"""Gateways for the hardening tests: built in the test process on the reset emulator, with short
upstream timeouts and a circuit breaker that opens and probes back within a test's time."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OPERATOR_KEY, PROFILE_KEY, InProcessGateway, gateway_env
from tests.notifications.helpers import PREFETCH_ALL
from tests.servers import ServerProcess

UPSTREAM_TIMEOUT_MS = 400
CIRCUIT_FAILURES = 3
CIRCUIT_RESET_SECONDS = 1.0
# What a gateway may take to answer when its upstream misbehaves: the upstream timeout and some slack
# for a loaded two-core machine.
ANSWER_BUDGET_S = UPSTREAM_TIMEOUT_MS / 1000 + 0.6


@pytest.fixture
def hardened(gateway_settings: dict[str, object]) -> Iterator[Callable[..., InProcessGateway]]:
    from proxy.app import create_app
    from proxy.settings import Settings
    from tests.inprocess import serve_in_thread

    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> InProcessGateway:
            import httpx

            settings = {
                **gateway_settings,
                "prefetch_groups": PREFETCH_ALL,
                "upstream_timeout_ms": UPSTREAM_TIMEOUT_MS,
                "upstream_circuit_failures": CIRCUIT_FAILURES,
                "upstream_circuit_reset_seconds": CIRCUIT_RESET_SECONDS,
                "notification_max_delay_ms": 100,
                "notification_retry_base_ms": 50,
                "notification_retry_cap_ms": 400,
                "shutdown_grace_seconds": 2,
                **overrides,
            }
            app = create_app(Settings(**settings))
            url = stack.enter_context(serve_in_thread(app))
            client = stack.enter_context(httpx.Client(base_url=url, timeout=10))
            return InProcessGateway(url, client, app)

        yield make


FUZZ_KEY = "fuzz-key-with-every-scope-0001"
SCOPES = ["delivery", "profile", "admin", "activation", "operator"]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway process with its embedded emulator, for generated requests: a key with every scope."""
    state: Path = tmp_path_factory.mktemp("fuzzed")
    env = gateway_env(
        state,
        client_keys={FUZZ_KEY: SCOPES},
        # Budgets out of the way, so that generated calls reach the checks behind them.
        client_key_rate="1000000/minute",
        admin_calls_per_minute=1_000_000,
        emulator_admin_rate_per_minute=1_000_000,
        access_log=False,
    )
    server = ServerProcess(["serve", "--port", "0", "--emulator-port", "0"], env=env, cwd=state)
    server.start(expect=["gateway", "emulator"])
    yield server.urls["gateway"]
    server.stop()
    assert "Traceback" not in "".join(server.output), "".join(server.output)[-4000:]


# The gateway process of the tests of hostile clients: short head and body timeouts, a small rate.
TIMEOUT_S = 1.0
RATE = 20  # calls a minute per client key
RATED_KEY = "rated-key-for-abuse-tests-01"


@pytest.fixture(scope="module")
def guarded(emulator_process: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = gateway_env(
        tmp_path_factory.mktemp("guarded"),
        header_timeout_seconds=TIMEOUT_S,
        body_timeout_seconds=TIMEOUT_S,
        client_key_rate=f"{RATE}/minute",
        client_keys={PROFILE_KEY: ["profile"], OPERATOR_KEY: ["operator"], RATED_KEY: ["operator"]},
        notification_max_delay_ms=600_000,
    )
    server = ServerProcess(["serve", "--port", "0", "--upstream", emulator_process.url], env=env)
    yield server.start(expect=["gateway"])
    server.stop()
