// Adobe's Node.js SDK (@adobe/target-nodejs-sdk) with its default settings, pointed at the gateway:
// prints one JSON document with what each scenario got and every host it called.
const readyClient = require("./ready_client");

const gateway = process.argv[2]; // host:port
const hosts = [];
let telemetrySent = 0;
let calls = 0;
const fetchApi = (url, options) => {
  hosts.push(new URL(url).host);
  calls += 1;
  try {
    const body = JSON.parse(options.body || "{}");
    telemetrySent += ((body.telemetry || {}).entries || []).length;
  } catch (error) {
    // not JSON: nothing to count
  }
  return fetch(url, options);
};
const create = () => readyClient(gateway, { fetchApi }, 5000);

const content = (response, kind) =>
  ((response.response[kind] || {}).mboxes || []).map((m) => ({
    name: m.name,
    content: ((m.options || [])[0] || {}).content,
    eventToken: ((m.options || [])[0] || {}).eventToken,
  }));

async function main() {
  const client = await create();
  const out = {};
  // A new visitor: execute, prefetch and pageLoad in one call.
  const first = await client.getOffers({
    request: {
      execute: { pageLoad: {}, mboxes: [{ name: "home-hero", index: 0 }] },
      prefetch: { mboxes: [{ name: "home-banner", index: 0 }, { name: "product-reco", index: 1 }] },
    },
  });
  out.first = {
    execute: content(first, "execute"),
    prefetch: content(first, "prefetch"),
    tntId: first.response.id && first.response.id.tntId,
    edgeHost: first.response.edgeHost || null,
    targetCookie: first.targetCookie,
    locationHint: first.targetLocationHintCookie || null,
  };
  // The same visitor returns, as a backend service does: its cookies passed back.
  const cookies = {
    targetCookie: first.targetCookie && first.targetCookie.value,
    targetLocationHint: first.targetLocationHintCookie && first.targetLocationHintCookie.value,
  };
  const views = [];
  for (let n = 0; n < 20; n++) {
    const again = await client.getOffers({
      request: { execute: { mboxes: [{ name: "home-hero", index: 0 }, { name: "home-banner", index: 1 }] } },
      ...cookies,
    });
    views.push({ execute: content(again, "execute"), targetCookie: again.targetCookie.value });
  }
  out.returning = views;
  // Display notifications for the prefetched content, with its event tokens.
  const tokens = out.first.prefetch.map((m) => m.eventToken).filter(Boolean);
  const sent = await client.sendNotifications({
    request: {
      notifications: out.first.prefetch.map((m, index) => ({
        id: `display-${index}`,
        type: "display",
        timestamp: Date.now(),
        mbox: { name: m.name },
        tokens: [m.eventToken],
      })),
    },
    ...cookies,
  });
  out.notifications = { tokens, answered: (sent.response.notifications || []).map((n) => n.id) };
  // Attributes of an mbox for the returning visitor.
  const attributes = await client.getAttributes(["product-reco"], cookies);
  out.attributes = attributes.asObject("product-reco");
  out.hosts = [...new Set(hosts)];
  out.calls = calls;
  out.telemetrySent = telemetrySent;
  console.log(JSON.stringify(out));
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
