"""Adobe's Experience Platform client ``aepp`` (PyPI), unchanged, through the gateway: the operations that map
to an API the gateway serves. Run as its own process (aepp keeps its configuration in module globals); prints
one JSON document: operation -> {"ok", "value" | "error"}.

    python aepp_scenarios.py GATEWAY_URL ACTIVATION_KEY EMULATOR_URL RUN_ID

What a user of aepp 0.6.0 does to talk to the gateway: its calls go to the gateway (a ``requests`` session
whose URLs are rewritten from https://platform.adobe.io, since some methods name that host themselves), the
gateway's client key is its access token (``environment="support"``), and ``connectionType`` is set by hand
because ``configure(accesstoken=...)`` leaves it out.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import requests

GATEWAY, KEY, EMULATOR, RUN_ID = sys.argv[1:5]
PLATFORM = "https://platform.adobe.io"
_request = requests.Session.request


def to_gateway(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
    return _request(self, method, str(url).replace(PLATFORM, GATEWAY), *args, **kwargs)


requests.Session.request = to_gateway  # type: ignore[method-assign]

import aepp  # noqa: E402
from aepp import destinationinstanceservice, flowservice, segmentation  # noqa: E402

aepp.configure(
    org_id="EMULATOR@AdobeOrg",
    client_id="unused",
    accesstoken=KEY,
    environment="support",
    endpoint=GATEWAY,
    sandbox="prod",
)
aepp.config.config_object["connectionType"] = "support"

SFTP_DATAFLOW = "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"  # the emulator's demo dataflow
US_WORKERS = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"  # an audience of the emulator's demo world
results: dict[str, Any] = {}


def call(name: str, run: Any) -> Any:
    try:
        value = run()
    except Exception as exc:
        results[name] = {"ok": False, "error": repr(exc)[:500]}
        return None
    # aepp hands back Platform's error documents as values: they are failures too
    failed = isinstance(value, dict) and isinstance(value.get("status"), int) and value["status"] >= 400
    results[name] = {"ok": not failed, "value": value}
    return value


seg = segmentation.Segmentation()
job = call("createJob", lambda: seg.createJob([US_WORKERS])) or {}
call("getJob", lambda: seg.getJob(job["id"]))
call("getJobs", lambda: seg.getJobs())
call("deleteJob", lambda: seg.deleteJob(job["id"]))

export = (
    call(
        "createExport",
        lambda: seg.createExport(
            {
                "fields": "identities.id",
                "filter": {"segments": [{"segmentId": US_WORKERS, "status": ["realized"]}]},
                "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": False},
                "schema": {"name": "_xdm.context.profile"},
            }
        ),
    )
    or {}
)
call("getExport", lambda: seg.getExport(export["id"]))
call("getExportJobs", lambda: seg.getExportJobs())
call("deleteExport", lambda: seg.deleteExport(export["id"]))

audience = dict(segmentation.Segmentation.EXTERNAL_AUDIENCE_DICT)
operation = call("createExtenalAudience", lambda: seg.createExtenalAudience(audience)) or {}
requests.post(f"{EMULATOR}/_emulator/clock", json={"advance_seconds": 5}, timeout=5)
status = call("getExternalAudienceStatus", lambda: seg.getExternalAudienceStatus(operation["operationId"])) or {}
audience_id = status.get("audienceId") or status.get("id")
run = call("runExternalAudienceJob", lambda: seg.runExternalAudienceJob(audience_id)) or {}
call("getExternalAudienceJob", lambda: seg.getExternalAudienceJob(audience_id, run.get("runId") or run.get("id")))

flows = flowservice.FlowService()
call("getRun", lambda: flows.getRun(RUN_ID))

exports = destinationinstanceservice.DestinationInstanceService()
call("createAdHocDatasetExport", lambda: exports.createAdHocDatasetExport({SFTP_DATAFLOW: ["loyalty-dataset-1"]}))

print(json.dumps(results, default=str))
