// Adobe's older Node.js client (@adobe/target-node-client), which calls the batch mbox API
// (/rest/v2/batchmbox) over HTTPS on port 443 of its serverDomain: a new visitor, then the same visitor
// again with its cookies. Prints one JSON document.
const TargetNodeClient = require("@adobe/target-node-client");

const serverDomain = process.argv[2];
const client = TargetNodeClient.create({
  config: { client: "demo", organizationId: "EMULATOR@AdobeOrg", serverDomain, timeout: 5000 },
  logger: { log() {}, error(...args) { console.error(...args); } },
});

const payload = {
  mboxes: [
    { mbox: "home-hero", indexId: 0 },
    { mbox: "tv-rail-1", indexId: 1 },
  ],
};

async function main() {
  const first = await client.getOffers({ payload });
  const again = await client.getOffers({
    payload,
    targetCookie: first.targetCookie && first.targetCookie.value,
    targetLocationHintCookie: first.targetLocationHintCookie && first.targetLocationHintCookie.value,
  });
  const pick = (answer) => ({
    content: ((answer.content || {}).mboxResponses || []).map((m) => ({ mbox: m.mbox, content: m.content })),
    targetCookie: answer.targetCookie && answer.targetCookie.value,
    locationHint: answer.targetLocationHintCookie || null,
    edgeHost: (answer.content || {}).edgeHost || null,
  });
  console.log(JSON.stringify({ first: pick(first), again: pick(again) }));
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : JSON.stringify(error));
  process.exit(1);
});
