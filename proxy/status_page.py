"""The status page at ``/_proxy/``: one small HTML file, no build step.

The page itself holds no data; its script reads ``/_proxy/status`` with the operator key given in the
address's fragment (``/_proxy/#key=...``), which browsers never send to a server, and refreshes every
two seconds.
"""

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
  .bad { color: #b3261e; } .good { color: #1b6e20; }
  #message { color: #b3261e; }
</style>
</head>
<body>
<h1>target-proxy</h1>
<p id="message"></p>
<dl>
  <dt>Upstream</dt><dd id="upstream">-</dd>
  <dt>Ready</dt><dd id="ready">-</dd>
  <dt>Cache hit rate</dt><dd id="hit-rate">-</dd>
  <dt>Cache hits / misses</dt><dd id="lookups">-</dd>
  <dt>Cached entries</dt><dd id="entries">-</dd>
  <dt>Cache bytes</dt><dd id="bytes">-</dd>
  <dt>Sessions</dt><dd id="sessions">-</dd>
  <dt>Notification backlog</dt><dd id="backlog">-</dd>
  <dt>Oldest waiting notification</dt><dd id="oldest">-</dd>
  <dt>Notifications flushed</dt><dd id="flushed">-</dd>
  <dt>Notifications dead-lettered</dt><dd id="dead-lettered">-</dd>
</dl>
<script>
const key = new URLSearchParams(location.hash.slice(1)).get("key") || "";
const show = (id, text, good) => {
  const cell = document.getElementById(id);
  cell.textContent = text;
  if (good !== undefined) cell.className = good ? "good" : "bad";
};
async function refresh() {
  try {
    const answer = await fetch("status", { headers: { Authorization: "Bearer " + key } });
    const data = await answer.json();
    if (!answer.ok) { show("message", data.message || ("status " + answer.status)); return; }
    show("message", "");
    const cache = data.cache, queue = data.queue, upstream = data.checks.upstream;
    show("upstream", upstream.reachable ? "reachable" : "unreachable: " + upstream.detail, upstream.reachable);
    show("ready", data.ready ? "yes" : "no", data.ready);
    show("hit-rate", cache.hitRate === null ? "no lookups yet" : (100 * cache.hitRate).toFixed(1) + " %");
    show("lookups", cache.hits + " / " + cache.misses);
    show("entries", String(cache.entries));
    show("bytes", String(cache.bytes));
    show("sessions", String(cache.sessions));
    show("backlog", String(queue.depth), queue.depth < queue.maxBacklog);
    show("oldest", queue.oldestAgeSeconds.toFixed(1) + " s");
    show("flushed", String(queue.flushed + queue.ridden));
    show("dead-lettered", String(queue.deadLettered), queue.deadLettered === 0);
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
