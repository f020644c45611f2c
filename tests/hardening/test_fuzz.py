"""Generated requests against every operation of the gateway's ``/openapi.json`` (schemathesis, valid and
invalid data alike), sent to a gateway process with its embedded emulator: no 5xx, and every refusal a
JSON 4xx that names what it refuses."""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.hardening.conftest import FUZZ_KEY

EXAMPLES_PER_OPERATION = 40
# Refusals of what the client sent: they must say which part (field, header, path...) was wrong.
INPUT_REFUSALS = {400, 401, 403, 405, 408, 411, 413, 414, 415, 422, 431}


def test_generated_requests_to_every_operation_get_no_5xx_and_named_refusals(fuzzed: str) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed}/openapi.json")
    answered: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests on every run: a failure here is a failure anywhere
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def send(case: schemathesis.Case) -> None:
            response = case.call(base_url=fuzzed, headers={"Authorization": f"Bearer {FUZZ_KEY}"}, timeout=10)
            answered[response.status_code] += 1
            where = f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            assert response.status_code < 500, where
            if response.status_code >= 400:
                (content_type,) = response.headers.get("content-type", [""])  # schemathesis keeps header lists
                assert content_type.startswith("application/json"), where
                body = response.json()
                assert body["status"] == response.status_code and body["message"], where
                if response.status_code in INPUT_REFUSALS:
                    assert body.get("field"), where

        send()
    assert operations >= 25, "every documented operation was fuzzed"
    assert sum(answered.values()) >= 1000, answered
    assert answered[200] and answered[400], answered
