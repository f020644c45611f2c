"""The visitor's context a rule's condition reads: the page and referring addresses, the browser and
platform, geo, the time, the mbox's parameters, and the visitor's allocation to the rule's activity.

Each part is read as Adobe's decisioning engine reads it, so that the same artifact decides the same way
here: addresses are split by the loose pattern of ``parse-uri`` and the Public Suffix List, browsers and
platforms by the user agent patterns of Adobe's target-tools, text values get a lower-cased ``_lc`` twin.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from typing import Any

import mmh3
from tld import get_tld
from tld.utils import Result

TOTAL_BUCKETS = 10_000
CAMPAIGN_BUCKET_SALT = "0"

# parse-uri's "loose" pattern: groups 6 (host), 9 (path), 12 (query), 13 (anchor)
URI = re.compile(
    r"^(?:(?![^:@]+:[^:@/]*@)([^:/?#.]+):)?(?://)?((?:(([^:@]*)(?::([^:@]*))?)?@)?([^:/?#]*)(?::(\d*))?)"
    r"(((/(?:[^?#](?![^?#/]*\.[^?#/.]+(?:[?#]|$)))*/?)?([^?#/]*))(?:\?([^#]*))?(?:#(.*))?)"
)
BROWSERS = (
    ("Edge", re.compile(r"(edge|edgios|edga|edg)/((\d+)?[\w.]+)", re.I), 2),
    ("Mobile Safari", re.compile(r"version/([\w.]+).+?mobile/\w+\s(safari)", re.I), 1),
    ("Safari", re.compile(r"version/([\w.]+).+?(mobile\s?safari|safari)", re.I), 1),
    ("Chrome", re.compile(r"(chrome)/v?([\w.]+)", re.I), 2),
    ("Firefox", re.compile(r"(firefox)/([\w.-]+)$", re.I), 2),
    ("IE", re.compile(r"(?:ms|\()(ie)\s([\w.]+)", re.I), 2),
    ("IE", re.compile(r"(trident).+rv[:\s]([\w.]+).+like\sgecko", re.I), 2),
)
HINTED_BROWSERS = tuple(
    (name, re.compile(rf'{name}";v="([0-9.]+)"', re.I)) for name in ("Chrome", "Edge", "Safari", "Firefox")
)
SYSTEMS = (
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android [0-9.]+;")),
    ("Linux", re.compile(r" Linux ")),
    ("Unix", re.compile(r"FreeBSD|OpenBSD|CrOS")),
    ("Windows", re.compile(r"[( ]Windows ")),
    ("Mac OS", re.compile(r"Macintosh;")),
)
PLATFORMS = {"Windows": "windows", "Macintosh": "mac", "Mac OS": "mac", "macOS": "mac", "Linux": "linux"}


@functools.lru_cache(maxsize=4096)
def domain_parts(host: str) -> dict[str, str]:
    """A host's subdomain, registrable domain and public suffix by the Public Suffix List, as Adobe's
    SDKs parse them (``www.`` is not a subdomain); a host the list does not know is all domain."""
    found = get_tld(host, fix_protocol=True, as_object=True, fail_silently=True) if host else None
    if not isinstance(found, Result):
        return {"subdomain": "", "domain": host, "topLevelDomain": ""}
    subdomain = found.subdomain
    if subdomain.startswith("www"):
        subdomain = subdomain[4:]
    return {"subdomain": subdomain, "domain": found.fld, "topLevelDomain": found.tld}


def url_context(url: Any) -> dict[str, Any]:
    """An address's parts (``url``, ``path``, ``query``, ``fragment``, domain parts), each with ``_lc``
    (read only: the same dict serves every request from the address)."""
    return _url_context(url if isinstance(url, str) else "")


@functools.lru_cache(maxsize=4096)
def _url_context(url: str) -> dict[str, Any]:
    found = URI.match(url)
    host, path, query, anchor = (
        (found.group(6), found.group(9), found.group(12), found.group(13)) if found else ("",) * 4
    )
    parts: dict[str, Any] = {"url": url, "path": path or "", "query": query or "", "fragment": anchor or ""}
    parts.update(domain_parts(host or ""))
    parts.update(
        {f"{key}_lc": value.lower() if isinstance(value, str) else value for key, value in list(parts.items())}
    )
    return parts


def page_context(address: Any) -> dict[str, Any]:
    return url_context(address.get("url") if isinstance(address, dict) else "")


def referring_context(address: Any) -> dict[str, Any]:
    return url_context(address.get("referringUrl") if isinstance(address, dict) else "")


def major(version: str | None) -> int:
    try:
        return int((version or "-1").split(".")[0])
    except ValueError:
        return -1


def browser(user_agent: str, hints: dict[str, Any]) -> tuple[str, int]:
    hinted = hints.get("browserUAWithFullVersion") or hints.get("browserUAWithMajorVersion") or ""
    return _browser(user_agent, hinted if isinstance(hinted, str) else "")


@functools.lru_cache(maxsize=1024)
def _browser(user_agent: str, hinted: str) -> tuple[str, int]:
    name, version = "unknown", -1
    for candidate, pattern, group in BROWSERS:
        found = pattern.search(user_agent)
        if found:
            name = candidate
            version = major(found.group(group))
            break
    for candidate, pattern in HINTED_BROWSERS:
        found = pattern.search(hinted)
        if found:
            name = candidate
            hinted_version = major(found.group(1))
            version = hinted_version if hinted_version >= 0 else version
            break
    return name, version


@functools.lru_cache(maxsize=1024)
def operating_system(user_agent: str) -> str:
    return next((label for label, pattern in SYSTEMS if pattern.search(user_agent)), "unknown")


def user_context(context: dict[str, Any]) -> dict[str, Any]:
    user_agent = context.get("userAgent") or ""
    if not isinstance(user_agent, str):
        user_agent = ""
    hints = context.get("clientHints") or {}
    name, version = browser(user_agent, hints)
    system = hints.get("platform")
    if system is None:
        system = operating_system(user_agent)
    return {
        "browserType": name.lower(),
        "platform": PLATFORMS.get(system, system),
        "locale": "en",
        "browserVersion": version,
    }


GEO_HEADERS = {
    "x-geo-country-code": "countryCode",
    "x-geo-region-code": "stateCode",
    "x-geo-city": "city",
    "x-geo-latitude": "latitude",
    "x-geo-longitude": "longitude",
}


def geo_from_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The geo of the edge's lookup answer (its ``x-geo-*`` headers), as a request's ``context.geo``."""
    geo: dict[str, Any] = {}
    for header, key in GEO_HEADERS.items():
        value = headers.get(header)
        if value is None:
            continue
        if key in ("latitude", "longitude"):
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
        geo[key] = value
    return geo


def geo_context(geo: dict[str, Any]) -> dict[str, Any]:
    return {
        "country": geo.get("countryCode"),
        "region": geo.get("stateCode"),
        "city": geo.get("city"),
        "latitude": geo.get("latitude"),
        "longitude": geo.get("longitude"),
    }


def timing_context(now_ms: int) -> dict[str, Any]:
    moment = time.gmtime(now_ms / 1000)
    day = moment.tm_wday + 1  # 1 = Monday ... 7 = Sunday
    return {"current_timestamp": now_ms, "current_time": f"{moment.tm_hour:02d}{moment.tm_min:02d}", "current_day": day}


def request_context(request: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """What every rule of one request reads alike."""
    context = request.get("context") or {"channel": "web"}
    return {
        **timing_context(now_ms),
        "user": user_context(context),
        "page": page_context(context.get("address")),
        "referring": referring_context(context.get("address")),
        "geo": geo_context(context.get("geo") or {}),
    }


def with_lower_case(values: dict[str, Any]) -> dict[str, Any]:
    result = dict(values)
    for key, value in values.items():
        if isinstance(value, str):
            result[f"{key}_lc"] = value.lower()
        if isinstance(value, dict):
            result[key] = with_lower_case(value)
    return result


def expandable(key: str) -> bool:
    return "." in key and ".." not in key and not key.startswith(".") and not key.endswith(".")


def mbox_context(details: dict[str, Any]) -> dict[str, Any]:
    """An mbox's parameters (``a.b`` names nested), each text with its ``_lc`` twin."""
    nested: dict[str, Any] = {}
    for key, value in (details.get("parameters") or {}).items():
        if expandable(key):
            target = nested
            *path, last = key.split(".")
            for part in path:
                if not isinstance(target.get(part), dict):
                    target[part] = {}
                target = target[part]
            target[last] = value
        else:
            nested[key] = value
    return with_lower_case(nested)


def visitor_id(ids: dict[str, Any]) -> str | None:
    """The id a visitor is allocated by: the Experience Cloud id, else the tntId (without its location
    hint), else the third-party id."""
    tnt = ids.get("tntId")
    tnt = tnt.split(".")[0] if isinstance(tnt, str) and tnt else None
    return ids.get("marketingCloudVisitorId") or tnt or ids.get("thirdPartyId") or None


def allocation(client: str, activity_id: Any, visitor: str) -> float:
    """The visitor's place (0-100, two decimals) in an activity's 10,000 buckets: MurmurHash3 (32 bits) of
    ``<client>.<activityId>.<visitorId>.0`` as UTF-16 code units, as Adobe's engine computes it."""
    return _allocation(f"{client}.{activity_id}.{visitor}.{CAMPAIGN_BUCKET_SALT}")


@functools.lru_cache(maxsize=100_000)
def _allocation(device: str) -> float:
    bucket = abs(mmh3.hash(device.encode("utf-16-le"), 0, signed=True)) % TOTAL_BUCKETS
    return round(bucket / TOTAL_BUCKETS * 100 * 100) / 100
