"""The status page at ``/_proxy/``: one small HTML file, no build step.

The page itself holds no data; its script reads ``/_proxy/status`` with the operator key given in the
address's fragment (``/_proxy/#key=...``), which browsers never send to a server, and refreshes every
two seconds. It is sent with ``Cache-Control: no-store`` and a Content-Security-Policy that allows its
own inline script and style (by their digests) and calls to the gateway only.
"""

from __future__ import annotations

import base64
import hashlib
import re

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>target-proxy status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
  h1 { font-size: 1.3rem; }
  dl { display: grid; grid-template-columns: 16rem auto; gap: .4rem 1rem; }
  dt { color: #555; }
  dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600; }
  .bad { color: #b3261e; } .good { color: #1b6e20; } .warn { color: #a15c00; }
  #message { color: #b3261e; }
  #updated { color: #555; font-size: .9rem; }
</style>
</head>
<body>
<h1>target-proxy</h1>
<p id="updated">not updated yet</p>
<p id="message"></p>
<dl>
  <dt>Upstream</dt><dd id="upstream">-</dd>
  <dt>Ready</dt><dd id="ready">-</dd>
  <dt>Failing checks</dt><dd id="failing">-</dd>
  <dt>Cache hit rate</dt><dd id="hit-rate">-</dd>
  <dt>Cache hits / misses</dt><dd id="lookups">-</dd>
  <dt>Cached entries</dt><dd id="entries">-</dd>
  <dt>Cache size</dt><dd id="bytes">-</dd>
  <dt>Sessions</dt><dd id="sessions">-</dd>
  <dt>Notification backlog</dt><dd id="backlog">-</dd>
  <dt>Oldest waiting notification</dt><dd id="oldest">-</dd>
  <dt>Notifications flushed</dt><dd id="flushed">-</dd>
  <dt>Notifications dead-lettered</dt><dd id="dead-lettered">-</dd>
  <dt>Worker</dt><dd id="worker">-</dd>
</dl>
<script>
const key = new URLSearchParams(location.hash.slice(1)).get("key") || "";
const show = (id, text, tone) => {
  const cell = document.getElementById(id);
  cell.textContent = text;
  cell.className = tone || "";
};
const size = (bytes) => {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  if (bytes < 1024 * 1024 * 1024) return (bytes / 1024 / 1024).toFixed(1) + " MB";
  return (bytes / 1024 / 1024 / 1024).toFixed(2) + " GB";
};
const clock = (date) => date.toISOString().slice(11, 19) + " UTC";
async function refresh() {
  try {
    const answer = await fetch("status", { headers: { Authorization: "Bearer " + key }, cache: "no-store" });
    const data = await answer.json();
    if (!answer.ok) { show("message", data.message || ("status " + answer.status)); return; }
    show("message", "");
    const cache = data.cache, queue = data.queue, upstream = data.checks.upstream;
    show("upstream", upstream.reachable ? "reachable" : "unreachable: " + upstream.detail,
         upstream.reachable ? "good" : "bad");
    show("ready", data.ready ? "yes" : "no", data.ready ? "good" : "bad");
    const failing = Object.entries(data.checks).filter(([, check]) => !check.ok)
      .map(([name, check]) => name + (check.detail ? " (" + check.detail + ")" : ""));
    show("failing", failing.length ? failing.join("; ") : "none", failing.length ? "bad" : "good");
    show("hit-rate", cache.hitRate === null ? "no lookups yet" : (100 * cache.hitRate).toFixed(1) + " %");
    show("lookups", cache.hits + " / " + cache.misses);
    show("entries", String(cache.entries));
    show("bytes", size(cache.bytes));
    show("sessions", String(cache.sessions));
    const tone = queue.depth >= queue.maxBacklog ? "bad" : queue.depth * 2 >= queue.maxBacklog ? "warn" : "good";
    show("backlog", queue.depth + " of " + queue.maxBacklog, tone);
    show("oldest", queue.oldestAgeSeconds.toFixed(1) + " s");
    show("flushed", String(queue.flushed + queue.ridden));
    show("dead-lettered", String(queue.deadLettered), queue.deadLettered === 0 ? "good" : "bad");
    show("worker", "process " + data.worker.pid + " on " + data.worker.host);
    show("updated", "updated " + clock(new Date()) + " (every 2 s)");
  } catch (error) {
    show("message", "cannot reach the gateway: " + error);
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""


def _digest(tag: str) -> str:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", PAGE, re.DOTALL)
    assert match is not None
    return "'sha256-" + base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode() + "'"


HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        f"default-src 'none'; script-src {_digest('script')}; style-src {_digest('style')}; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
