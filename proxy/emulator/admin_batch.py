"""Target Admin API batch: ``POST /{tenant}/target/batch`` runs up to 256 operations in one call.

Whole-batch checks (400, nothing runs): 1-256 operations; ``operationId`` 0-255 and unique; method one of
GET, POST, PUT, PATCH, DELETE; ``relativeUrl`` starting with ``/``; at most 50 headers; dependencies
(``dependsOnOperationIds``, or the singular ``dependsOnOperationId``) unique, at most 255, naming other
operations of the batch, without cycles; every ``{operationIdResponse:N}`` naming a POST operation of
the batch. A reference implies a dependency on N.

Operations run in dependency order (by operationId among independent ones). One whose prerequisite
failed (non-2xx) or was skipped is ``skipped: true``, with no status or body. A reference is replaced by
the ``id`` in N's answer: a string that is only the reference becomes the id itself (a number), inside a
longer string it becomes its text. Each operation counts as one call against the client's rate (the
batch call itself is the first); a throttled operation answers 503 in its result.

Relative URLs: ``/target/...`` or ``/{tenant}/target/...`` paths of this API, or the classic
``/v1/...`` form (``/v1/offers`` and ``/v1/offers/{id}`` mean content offers). One that matches nothing
answers 404 in its result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from proxy.emulator.admin_core import (
    BODY_METHODS,
    AdminRequest,
    AdminResponse,
    Handler,
    admin_error,
    bad_request,
    ok,
)

MAX_OPERATIONS = 256
MAX_OPERATION_ID = 255
MAX_HEADERS = 50
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
REFERENCE = re.compile(r"\{operationIdResponse:(\d+)\}")
RESULT_HEADERS = [{"name": "Content-Type", "value": "application/json; charset=UTF-8"}]


@dataclass(slots=True)
class Operation:
    operation_id: int
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    depends: set[int]
    references: set[int]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _resolve(value: Any, created: dict[int, Any]) -> Any:
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            return created[int(whole.group(1))]
        return REFERENCE.sub(lambda m: str(created[int(m.group(1))]), value)
    if isinstance(value, dict):
        return {k: _resolve(v, created) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, created) for v in value]
    return value


def _route_path(path: str) -> str:
    """A relative URL's path as this API's routes know it."""
    tenant_path = re.match(r"^/[^/]+/target(/.*)$", path)
    if path.startswith("/target/"):
        return path[len("/target") :]
    if tenant_path:
        return tenant_path.group(1)
    classic = re.match(r"^/v\d+(/.*)$", path)
    if classic:
        path = classic.group(1)
        offer = re.fullmatch(r"/offers(/\d+)?", path)
        if offer:
            return f"/offers/content{offer.group(1) or ''}"
    return path


class Batch:
    def __init__(self, dispatch: Callable[[AdminRequest], AdminResponse]) -> None:
        self.dispatch = dispatch

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/batch", self.run)]

    @staticmethod
    def _operation(raw: Any, index: int) -> Operation:
        where = f"operations[{index}]"
        if not isinstance(raw, dict):
            raise bad_request(where, "must be a JSON object")
        operation_id = raw.get("operationId")
        if isinstance(operation_id, bool) or not isinstance(operation_id, int):
            raise bad_request(f"{where}.operationId", "must be a whole number")
        if not 0 <= operation_id <= MAX_OPERATION_ID:
            raise bad_request(f"{where}.operationId", f"must be from 0 to {MAX_OPERATION_ID}")
        method = raw.get("method")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise bad_request(f"{where}.method", f"must be one of {', '.join(METHODS)}")
        url = raw.get("relativeUrl")
        if not isinstance(url, str) or not url.startswith("/"):
            raise bad_request(f"{where}.relativeUrl", "must be a relative URL starting with /")
        headers = raw.get("headers") or []
        if not isinstance(headers, list) or len(headers) > MAX_HEADERS:
            raise bad_request(f"{where}.headers", f"must be an array of at most {MAX_HEADERS} headers")
        named: dict[str, str] = {"content-type": "application/json"}
        for n, header in enumerate(headers):
            if not isinstance(header, dict) or not isinstance(header.get("name"), str) or not header["name"]:
                raise bad_request(f"{where}.headers[{n}]", "must be an object with a name")
            value = header.get("value", "")
            if not isinstance(value, str):
                raise bad_request(f"{where}.headers[{n}].value", "must be a string")
            named[header["name"].lower()] = value  # names are case-insensitive; a later one overrides
        depends = raw.get("dependsOnOperationIds") or []
        if not isinstance(depends, list) or len(depends) > MAX_OPERATION_ID:
            raise bad_request(f"{where}.dependsOnOperationIds", f"must be an array of at most {MAX_OPERATION_ID} ids")
        if "dependsOnOperationId" in raw:
            depends = [*depends, raw["dependsOnOperationId"]]
        for dependency in depends:
            if isinstance(dependency, bool) or not isinstance(dependency, int):
                raise bad_request(f"{where}.dependsOnOperationIds", "must hold operation ids")
        if len(set(depends)) != len(depends):
            raise bad_request(f"{where}.dependsOnOperationIds", "must not repeat an id")
        body = raw.get("body", {})
        references = {int(m) for text in [url, *_strings(body)] for m in REFERENCE.findall(text)}
        return Operation(operation_id, method.upper(), url, named, body, set(depends), references)

    def _parse(self, body: Any) -> list[Operation]:
        operations = body.get("operations") if isinstance(body, dict) else None
        if not isinstance(operations, list) or not 1 <= len(operations) <= MAX_OPERATIONS:
            raise bad_request("operations", f"must be an array of 1 to {MAX_OPERATIONS} operations")
        parsed = [self._operation(raw, index) for index, raw in enumerate(operations)]
        by_id: dict[int, Operation] = {}
        for index, operation in enumerate(parsed):
            if operation.operation_id in by_id:
                raise bad_request(f"operations[{index}].operationId", f"{operation.operation_id} is used twice")
            by_id[operation.operation_id] = operation
        for index, operation in enumerate(parsed):
            for dependency in operation.depends:
                if dependency not in by_id or dependency == operation.operation_id:
                    raise bad_request(
                        f"operations[{index}].dependsOnOperationIds", f"{dependency} is not another operation's id"
                    )
            for reference in operation.references:
                target = by_id.get(reference)
                if target is None or target.method != "POST" or reference == operation.operation_id:
                    raise bad_request(
                        f"operations[{index}]", f"{{operationIdResponse:{reference}}} must name a POST operation"
                    )
                operation.depends.add(reference)
        return parsed

    @staticmethod
    def _ordered(operations: list[Operation]) -> list[Operation]:
        """Dependency order, lowest operationId first among the ready ones; 400 on a cycle."""
        waiting = {op.operation_id: set(op.depends) for op in operations}
        by_id = {op.operation_id: op for op in operations}
        ordered: list[Operation] = []
        while waiting:
            ready = sorted(op_id for op_id, needs in waiting.items() if not needs)
            if not ready:
                raise bad_request(
                    "dependsOnOperationIds", f"operations {sorted(waiting)} depend on each other in a cycle"
                )
            for op_id in ready:
                del waiting[op_id]
                ordered.append(by_id[op_id])
            for needs in waiting.values():
                needs.difference_update(ready)
        return ordered

    def _execute(self, operation: Operation, created: dict[int, Any], request: AdminRequest) -> AdminResponse:
        missing = [n for n in operation.references if n not in created]
        if missing:
            return AdminResponse(400, admin_error(400, f"operation {missing[0]} answered no id to reference").body)
        parts = urlsplit(_resolve(operation.url, created))
        path = _route_path(unquote(parts.path))
        if path.rstrip("/") == "/batch":
            return AdminResponse(400, admin_error(400, "a batch cannot contain a batch").body)
        headers = {**operation.headers}
        if "authorization" in request.headers:
            headers.setdefault("authorization", request.headers["authorization"])
        body = _resolve(operation.body, created) if operation.method in BODY_METHODS else None
        query = parse_qsl(parts.query, keep_blank_values=True)
        return self.dispatch(AdminRequest(operation.method, path, query, headers, body, request.charge))

    def run(self, request: AdminRequest) -> AdminResponse:
        operations = self._parse(request.body)
        succeeded: dict[int, bool] = {}
        created: dict[int, Any] = {}
        results: dict[int, dict[str, Any]] = {}
        first = True
        for operation in self._ordered(operations):
            op_id = operation.operation_id
            if not all(succeeded.get(dependency) for dependency in operation.depends):
                succeeded[op_id] = False
                results[op_id] = {"operationId": op_id, "skipped": True}
                continue
            wait = None if first else request.charge()
            first = False
            if wait is not None:
                error = admin_error(503, "too many calls: the batch's operations exceeded the client's rate")
                answer = AdminResponse(503, error.body)
            else:
                answer = self._execute(operation, created, request)
            succeeded[op_id] = 200 <= answer.status < 300
            if succeeded[op_id] and isinstance(answer.body, dict) and "id" in answer.body:
                created[op_id] = answer.body["id"]
            results[op_id] = {
                "operationId": op_id,
                "skipped": False,
                "statusCode": answer.status,
                "headers": RESULT_HEADERS,
                "body": answer.body,
            }
        return ok({"results": [results[op.operation_id] for op in operations]})
