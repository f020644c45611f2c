"""Where a request came from (``proxy.content.origin``): the visitor's address, for the place an artifact
that targets by geo asks for."""

from __future__ import annotations

import pytest

from proxy.content.origin import visitor_address


class Request:
    def __init__(self, headers: dict[str, str], client_host: str | None) -> None:
        self.headers = headers
        self.client_host = client_host


@pytest.mark.parametrize(
    ("forwarded", "peer", "address"),
    [
        (None, "10.0.0.7", "10.0.0.7"),  # no proxy in between: the peer
        ("203.0.113.9", "10.0.0.7", "203.0.113.9"),  # behind one proxy: the device it forwards for
        ("203.0.113.9, 198.51.100.2", "10.0.0.7", "203.0.113.9"),  # behind two: the first, the device
        (" 203.0.113.9 ,198.51.100.2", "10.0.0.7", "203.0.113.9"),
        ("", "10.0.0.7", "10.0.0.7"),  # an empty header names nobody
        (" , 198.51.100.2", "10.0.0.7", "10.0.0.7"),  # nor a blank first entry
        (None, None, None),  # a peer unknown (a Unix socket)
    ],
)
def test_the_visitor_is_the_first_forwarded_address_else_the_peer(
    forwarded: str | None, peer: str | None, address: str | None
) -> None:
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    assert visitor_address(Request(headers, peer)) == address
