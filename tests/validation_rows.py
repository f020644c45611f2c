"""Rows of the documents' validation tables: (id, bad body, field named in the 400, good neighbour).

Single mbox API ("Length < N"), batch mbox API ("max size N"), Delivery API limits, single profile
update. The emulator and the gateway are both held to every row.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.support import CLIENT, WEB, now_ms

Row = tuple[str, dict[str, Any], str, dict[str, Any]]  # (id, bad body, field, good body)


def s(length: int, char: str = "x") -> str:
    return char * length


def url(length: int) -> str:
    """A valid URL of exactly ``length`` characters."""
    prefix = "https://shop.example.com/"
    return prefix + s(length - len(prefix), "p")


def many(count: int) -> dict[str, str]:
    return {f"p{i}": "v" for i in range(count)}


def product_ids(total: int) -> list[str]:
    """Ids of at most 50 characters whose comma-joined text is ``total`` characters long."""
    ids = []
    remaining = total
    while remaining > 0:
        size = min(50, remaining)
        ids.append(s(size, "i"))
        remaining -= size + 1
    assert len(",".join(ids)) == total
    return ids


def rows(*items: Row) -> Any:
    return pytest.mark.parametrize(("bad", "field", "good"), [item[1:] for item in items], ids=[i[0] for i in items])


M = {"mbox": "home-hero"}


SINGLE_ROWS: list[Row] = [
    ("mbox-missing", {}, "mbox", M),
    ("mbox-blank", {"mbox": " "}, "mbox", {"mbox": "a"}),
    ("mbox-250", {"mbox": s(250)}, "mbox", {"mbox": s(249)}),
    *[
        (f"mbox-has-{char}", {"mbox": f"home{char}hero"}, "mbox", M)
        for char in ("'", '"', "%22", "%27", "<", ">", "%3C", "%3E", "%3c", "%3e")
    ],
    ("clicked", {**M, "clicked": "maybe"}, "clicked", {**M, "clicked": "false"}),
    ("clicked-number", {**M, "clicked": 1}, "clicked", {**M, "clicked": ""}),
    ("mboxTrace", {**M, "mboxTrace": "yes"}, "mboxTrace", {**M, "mboxTrace": "True"}),
    ("tntId-128", {**M, "tntId": s(128)}, "tntId", {**M, "tntId": s(127)}),
    ("tntId-two-dots", {**M, "tntId": "1-2.28_0.3"}, "tntId", {**M, "tntId": "1-2.28_0"}),
    ("thirdPartyId-128", {**M, "thirdPartyId": s(128)}, "thirdPartyId", {**M, "thirdPartyId": s(127)}),
    (
        "marketingCloudVisitorId-128",
        {**M, "marketingCloudVisitorId": s(128)},
        "marketingCloudVisitorId",
        {**M, "marketingCloudVisitorId": s(127)},
    ),
    ("order-total", {**M, "order": {"total": "12,50"}}, "order.total", {**M, "order": {"total": "12.50"}}),
    ("order-id-250", {**M, "order": {"id": s(250)}}, "order.id", {**M, "order": {"id": s(249)}}),
    (
        "order-product-id-51",
        {**M, "order": {"purchasedProductIds": f"a,{s(51)}"}},
        "order.purchasedProductIds[1]",
        {**M, "order": {"purchasedProductIds": f"a,{s(50)}"}},
    ),
    (
        "order-product-ids-251",
        {**M, "order": {"purchasedProductIds": ",".join(product_ids(251))}},
        "order.purchasedProductIds",
        {**M, "order": {"purchasedProductIds": ",".join(product_ids(250))}},
    ),
    (
        "profileParameters-51",
        {**M, "profileParameters": many(51)},
        "profileParameters",
        {**M, "profileParameters": many(50)},
    ),
    (
        "profileParameters-name-128",
        {**M, "profileParameters": {s(128): "v"}},
        f"profileParameters.{s(128)}",
        {**M, "profileParameters": {s(127): "v"}},
    ),
    (
        "profileParameters-profile-prefix",
        {**M, "profileParameters": {"profile.age": "1"}},
        "profileParameters.profile.age",
        {**M, "profileParameters": {"age": "1"}},
    ),
    (
        "profileParameters-value-256",
        {**M, "profileParameters": {"age": s(256)}},
        "profileParameters.age",
        {**M, "profileParameters": {"age": s(255)}},
    ),
    (
        "mboxParameters-51",
        {**M, "mboxParameters": many(51)},
        "mboxParameters",
        {**M, "mboxParameters": many(50)},
    ),
    *[
        (
            f"mboxParameters-{name}",
            {**M, "mboxParameters": {name: "1"}},
            f"mboxParameters.{name}",
            {**M, "mboxParameters": {f"{name}X": "1"}},
        )
        for name in ("orderId", "orderTotal", "productPurchasedId")
    ],
    (
        "mboxParameters-profile-prefix",
        {**M, "mboxParameters": {"profile.age": "1"}},
        "mboxParameters.profile.age",
        {**M, "mboxParameters": {"age": "1"}},
    ),
    (
        "mboxParameters-name-128",
        {**M, "mboxParameters": {s(128): "v"}},
        f"mboxParameters.{s(128)}",
        {**M, "mboxParameters": {s(127): "v"}},
    ),
    (
        "mboxParameters-value-256",
        {**M, "mboxParameters": {"w": s(256)}},
        "mboxParameters.w",
        {**M, "mboxParameters": {"w": s(255)}},
    ),
    *[
        (
            f"{part}-{kind}",
            {**M, "requestLocation": {part: bad}},
            f"requestLocation.{part}",
            {**M, "requestLocation": {part: good}},
        )
        for part in ("pageURL", "referrerURL")
        for kind, bad, good in (("invalid", "shop.example.com/x", url(40)), ("3072", url(3072), url(3071)))
    ],
    (
        "ipAddress",
        {**M, "requestLocation": {"ipAddress": "203.0.113.300"}},
        "requestLocation.ipAddress",
        {**M, "requestLocation": {"ipAddress": "2001:db8::1"}},
    ),
    (
        "impressionId-128",
        {**M, "requestLocation": {"impressionId": s(128)}},
        "requestLocation.impressionId",
        {**M, "requestLocation": {"impressionId": s(127)}},
    ),
    (
        "host-250",
        {**M, "requestLocation": {"host": s(250)}},
        "requestLocation.host",
        {**M, "requestLocation": {"host": s(249)}},
    ),
]


B = {"client": CLIENT, "mboxes": [{"indexId": 0, "mbox": "home-hero"}]}


CUSTOMER = {"id": "c1", "integrationCode": "userid", "authenticatedState": "authenticated"}


def customers(*changes: dict[str, Any]) -> dict[str, Any]:
    return {**B, "id": {"customerIds": [{**CUSTOMER, **change} for change in changes]}}


BATCH_ROWS: list[Row] = [
    ("client-missing", {"mboxes": B["mboxes"]}, "client", B),
    ("client-invalid", {**B, "client": "bad client!"}, "client", B),
    ("tntId-129", {**B, "id": {"tntId": s(129)}}, "id.tntId", {**B, "id": {"tntId": s(128)}}),
    ("tntId-two-dots", {**B, "id": {"tntId": "a.b.c"}}, "id.tntId", {**B, "id": {"tntId": "a.28_0"}}),
    (
        "thirdPartyId-129",
        {**B, "id": {"thirdPartyId": s(129)}},
        "id.thirdPartyId",
        {**B, "id": {"thirdPartyId": s(128)}},
    ),
    (
        "marketingCloudVisitorId-129",
        {**B, "id": {"marketingCloudVisitorId": s(129)}},
        "id.marketingCloudVisitorId",
        {**B, "id": {"marketingCloudVisitorId": s(128)}},
    ),
    ("customerIds-null", {**B, "id": {"customerIds": [CUSTOMER, None]}}, "id.customerIds", customers({})),
    ("customerIds-51", customers(*[{}] * 51), "id.customerIds", customers(*[{}] * 50)),
    ("customerIds-id-missing", customers({"id": None}), "id.customerIds[0].id", customers({"id": "x"})),
    ("customerIds-id-129", customers({"id": s(129)}), "id.customerIds[0].id", customers({"id": s(128)})),
    (
        "customerIds-integrationCode-missing",
        customers({"integrationCode": None}),
        "id.customerIds[0].integrationCode",
        customers({"integrationCode": "crm"}),
    ),
    (
        "customerIds-integrationCode-51",
        customers({"integrationCode": s(51)}),
        "id.customerIds[0].integrationCode",
        customers({"integrationCode": s(50)}),
    ),
    (
        "customerIds-authenticatedState",
        customers({"authenticatedState": "logged_in"}),
        "id.customerIds[0].authenticatedState",
        customers({"authenticatedState": "logged_out"}),
    ),
    (
        "profileParameters-51",
        {**B, "profileParameters": many(51)},
        "profileParameters",
        {**B, "profileParameters": many(50)},
    ),
    (
        "profileParameters-blank-name",
        {**B, "profileParameters": {" ": "v"}},
        "profileParameters",
        {**B, "profileParameters": {"n": "v"}},
    ),
    (
        "profileParameters-name-129",
        {**B, "profileParameters": {s(129): "v"}},
        f"profileParameters.{s(129)}",
        {**B, "profileParameters": {s(128): "v"}},
    ),
    (
        "profileParameters-value-257",
        {**B, "profileParameters": {"age": s(257)}},
        "profileParameters.age",
        {**B, "profileParameters": {"age": s(256)}},
    ),
    (
        "profileParameters-profile-prefix",
        {**B, "profileParameters": {"profile.age": "18"}},
        "profileParameters.profile.age",
        {**B, "profileParameters": {"age": "18"}},
    ),
    ("environmentId", {**B, "environmentId": "production"}, "environmentId", {**B, "environmentId": 4711}),
    ("contentAsJson", {**B, "contentAsJson": "yes"}, "contentAsJson", {**B, "contentAsJson": True}),
]


E = {"indexId": 0, "mbox": "home-hero"}


ENTRY_ROWS: list[Row] = [
    ("indexId-missing", {"mbox": "home-hero"}, "indexId", E),
    ("indexId-negative", {**E, "indexId": -1}, "indexId", {**E, "indexId": 0}),
    ("indexId-text", {**E, "indexId": "0"}, "indexId", {**E, "indexId": 7}),
    ("mbox-missing", {"indexId": 0}, "mbox", E),
    ("mbox-blank", {**E, "mbox": "  "}, "mbox", E),
    ("mbox-251", {**E, "mbox": s(251)}, "mbox", {**E, "mbox": s(250)}),
    ("mbox-char", {**E, "mbox": "a<b"}, "mbox", {**E, "mbox": "a-b"}),
    *[
        (f"mbox-reserved-{n}", {**E, "mbox": name}, "mbox", {**E, "mbox": name.strip("* ")})
        for n, name in enumerate(("** display mboxes **", "** any mbox **", "** click from display mbox **"))
    ],
    ("parameters-51", {**E, "parameters": many(51)}, "parameters", {**E, "parameters": many(50)}),
    ("parameters-blank-name", {**E, "parameters": {"": "v"}}, "parameters", {**E, "parameters": {"n": "v"}}),
    (
        "parameters-name-129",
        {**E, "parameters": {s(129): "v"}},
        f"parameters.{s(129)}",
        {**E, "parameters": {s(128): "v"}},
    ),
    (
        "parameters-value-5001",
        {**E, "parameters": {"T_GHY": s(5001)}},
        "parameters.T_GHY",
        {**E, "parameters": {"T_GHY": s(5000)}},
    ),
    (
        "parameters-profile-prefix",
        {**E, "parameters": {"profile.x": "1"}},
        "parameters.profile.x",
        {**E, "parameters": {"x": "1"}},
    ),
    *[
        (
            f"parameters-{name}",
            {**E, "parameters": {name: "1"}},
            f"parameters.{name}",
            {**E, "parameters": {"ad": "1"}},
        )
        for name in ("orderId", "orderTotal", "productPurchasedId")
    ],
    *[
        (
            f"product-{key}-{kind}",
            {**E, "product": {key: bad}},
            f"product.{key}",
            {**E, "product": {key: good}},
        )
        for key in ("id", "categoryId")
        for kind, bad, good in (("blank", " ", "54353"), ("129", s(129), s(128)))
    ],
    ("order-id-251", {**E, "order": {"id": s(251)}}, "order.id", {**E, "order": {"id": s(250)}}),
    ("order-total-negative", {**E, "order": {"total": -0.01}}, "order.total", {**E, "order": {"total": 0}}),
    (
        "order-purchasedProductIds-blank",
        {**E, "order": {"purchasedProductIds": ["762", ""]}},
        "order.purchasedProductIds[1]",
        {**E, "order": {"purchasedProductIds": ["762", "1253"]}},
    ),
    (
        "order-purchasedProductIds-51",
        {**E, "order": {"purchasedProductIds": [s(51)]}},
        "order.purchasedProductIds[0]",
        {**E, "order": {"purchasedProductIds": [s(50)]}},
    ),
    (
        "order-purchasedProductIds-total-251",
        {**E, "order": {"purchasedProductIds": product_ids(251)}},
        "order.purchasedProductIds",
        {**E, "order": {"purchasedProductIds": product_ids(250)}},
    ),
]


D = {"context": WEB}


X = {"index": 0, "name": "home-hero"}


def note(**changes: Any) -> dict[str, Any]:
    base = {"id": "n-1", "type": "display", "timestamp": now_ms(), "tokens": []}
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


DELIVERY_ROWS: list[Row] = [
    ("context-missing", {}, "context", D),
    (
        "context-channel",
        {"context": {"channel": "tv"}},
        "context.channel",
        {"context": {"channel": "mobile"}},
    ),
    (
        "context-address-url",
        {"context": {**WEB, "address": {"url": "/relative"}}},
        "context.address.url",
        {"context": {**WEB, "address": {"url": url(3071)}}},
    ),
    (
        "context-address-url-3072",
        {"context": {**WEB, "address": {"url": url(3072)}}},
        "context.address.url",
        {"context": {**WEB, "address": {"url": url(3071)}}},
    ),
    (
        "context-geo-ipAddress",
        {"context": {**WEB, "geo": {"ipAddress": "localhost"}}},
        "context.geo.ipAddress",
        {"context": {**WEB, "geo": {"ipAddress": "198.51.100.7"}}},
    ),
    ("id-tntId-129", {**D, "id": {"tntId": s(129)}}, "id.tntId", {**D, "id": {"tntId": s(128)}}),
    (
        "id-customerIds-51",
        {**D, "id": {"customerIds": [CUSTOMER] * 51}},
        "id.customerIds",
        {**D, "id": {"customerIds": [CUSTOMER] * 50}},
    ),
    ("requestId-129", {**D, "requestId": s(129)}, "requestId", {**D, "requestId": s(128)}),
    ("impressionId-129", {**D, "impressionId": s(129)}, "impressionId", {**D, "impressionId": s(128)}),
    ("environmentId", {**D, "environmentId": "prod"}, "environmentId", {**D, "environmentId": 1}),
    *[
        (
            f"{section}-mboxes-51",
            {**D, section: {"mboxes": [{**X, "index": i} for i in range(51)]}},
            f"{section}.mboxes",
            {**D, section: {"mboxes": [{**X, "index": i} for i in range(50)]}},
        )
        for section in ("execute", "prefetch")
    ],
    *[
        (
            f"{section}-{row_id}",
            {**D, section: {"mboxes": [bad]}},
            f"{section}.mboxes[0].{field}",
            {**D, section: {"mboxes": [good]}},
        )
        for section in ("execute", "prefetch")
        for row_id, bad, field, good in (
            ("index-missing", {"name": "home-hero"}, "index", X),
            ("index-negative", {**X, "index": -2}, "index", X),
            ("name-missing", {"index": 0}, "name", X),
            ("name-251", {**X, "name": s(251)}, "name", {**X, "name": s(250)}),
            ("name-char", {**X, "name": "a%27b"}, "name", {**X, "name": "a27b"}),
            (
                "parameters-5001",
                {**X, "parameters": {"p": s(5001)}},
                "parameters.p",
                {**X, "parameters": {"p": s(5000)}},
            ),
            ("parameters-orderId", {**X, "parameters": {"orderId": "1"}}, "parameters.orderId", X),
            (
                "profileParameters-257",
                {**X, "profileParameters": {"p": s(257)}},
                "profileParameters.p",
                {**X, "profileParameters": {"p": s(256)}},
            ),
            (
                "profileParameters-name-129",
                {**X, "profileParameters": {s(129): "v"}},
                f"profileParameters.{s(129)}",
                {**X, "profileParameters": {s(128): "v"}},
            ),
            (
                "address-url",
                {**X, "address": {"url": "nope"}},
                "address.url",
                {**X, "address": {"url": url(30)}},
            ),
            ("order-total", {**X, "order": {"total": -5}}, "order.total", {**X, "order": {"total": 5}}),
        )
    ],
    (
        "prefetch-clicked",
        {**D, "prefetch": {"mboxes": [{**X, "name": "home-hero-clicked"}]}},
        "prefetch.mboxes[0].name",
        {**D, "execute": {"mboxes": [{**X, "name": "home-hero-clicked"}]}},
    ),
    (
        "pageLoad-parameters-orderTotal",
        {**D, "execute": {"pageLoad": {"parameters": {"orderTotal": "9"}}}},
        "execute.pageLoad.parameters.orderTotal",
        {**D, "execute": {"pageLoad": {"parameters": {"total": "9"}}}},
    ),
    (
        "notifications-id-missing",
        {**D, "notifications": [note(id=None)]},
        "notifications[0].id",
        {**D, "notifications": [note()]},
    ),
    (
        "notifications-id-201",
        {**D, "notifications": [note(id=s(201))]},
        "notifications[0].id",
        {**D, "notifications": [note(id=s(200))]},
    ),
    (
        "notifications-type",
        {**D, "notifications": [note(type="view")]},
        "notifications[0].type",
        {**D, "notifications": [note(type="click")]},
    ),
    *[
        (
            f"notifications-timestamp-{kind}",
            {**D, "notifications": [note(timestamp=bad)]},
            "notifications[0].timestamp",
            {**D, "notifications": [note()]},
        )
        for kind, bad in (("missing", None), ("zero", 0), ("text", "now"), ("boolean", True))
    ],
    (
        "notifications-impressionId-129",
        {**D, "notifications": [note(impressionId=s(129))]},
        "notifications[0].impressionId",
        {**D, "notifications": [note(impressionId=s(128))]},
    ),
    (
        "notifications-token-null",
        {**D, "notifications": [note(tokens=[None])]},
        "notifications[0].tokens[0]",
        {**D, "notifications": [note(tokens=[])]},
    ),
    (
        "notifications-mbox-name-251",
        {**D, "notifications": [note(mbox={"name": s(251)})]},
        "notifications[0].mbox.name",
        {**D, "notifications": [note(mbox={"name": s(250)})]},
    ),
    ("notifications-not-array", {**D, "notifications": {}}, "notifications", {**D, "notifications": []}),
]


def post_delivery(client: httpx.Client, body: Any, **params: str) -> httpx.Response:
    return client.post("/rest/v1/delivery", params={"client": CLIENT, "sessionId": "s1", **params}, json=body)


U = {"mboxPC": "upd-1", "profile.a": "1"}


UPDATE_ROWS: list[Row] = [
    ("no-identity", {"profile.a": "1"}, "mboxPC", U),
    ("no-attributes", {"mboxPC": "upd-1"}, "profile", U),
    (
        "51-attributes",
        {"mboxPC": "upd-1", **{f"profile.{k}": v for k, v in many(51).items()}},
        "profile",
        {"mboxPC": "upd-1", **{f"profile.{k}": v for k, v in many(50).items()}},
    ),
    ("name-129", {**U, f"profile.{s(129)}": "v"}, f"profile.{s(129)}", {**U, f"profile.{s(128)}": "v"}),
    ("value-257", {**U, "profile.a": s(257)}, "profile.a", {**U, "profile.a": s(256)}),
    ("mboxPC-two-dots", {**U, "mboxPC": "upd-1.28_0.1"}, "mboxPC", {**U, "mboxPC": "upd-1.28_0"}),
    ("mboxPC-129", {**U, "mboxPC": s(129)}, "mboxPC", {**U, "mboxPC": s(128)}),
    (
        "mbox3rdPartyId-129",
        {"mbox3rdPartyId": s(129), "profile.a": "1"},
        "mbox3rdPartyId",
        {"mbox3rdPartyId": "crm-upd", "profile.a": "1"},
    ),
]
