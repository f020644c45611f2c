// Adobe's Target Admin API client (@adobe/aio-lib-target), unchanged, through the gateway: every one of its
// 35 methods, in an order that creates what the later ones read, change and delete. It builds every URL on
// https://mc.adobe.io, so the one thing a user adds is a fetch that sends those calls to the gateway.
// Prints one JSON document: method -> {ok, status, error}.
const sdk = require("@adobe/aio-lib-target");

const [gateway, key] = process.argv.slice(2);
const realFetch = globalThis.fetch;
let last = {};
globalThis.fetch = async (url, options) => {
  const response = await realFetch(String(url).replace("https://mc.adobe.io", gateway), options);
  last = { status: response.status, answer: await response.clone().text() };
  return response;
};

const results = {};
async function call(name, run) {
  last = {};
  try {
    const response = await run();
    results[name] = { ok: true, status: response.status, body: response.body };
  } catch (error) {
    results[name] = { ok: false, status: last.status, answer: last.answer, error: String(error).split("\n")[0] };
  }
  return results[name].body;
}

const activity = (name, mbox) => ({
  name,
  state: "saved",
  priority: 10,
  locations: { mboxes: [{ locationLocalId: 0, name: mbox }] },
  experiences: [
    {
      experienceLocalId: 0,
      name: "Only",
      visitorPercentage: 100,
      audienceIds: [],
      offerLocations: [{ locationLocalId: 0, offerId: 400050 }],
    },
  ],
  metrics: [
    { metricLocalId: 32767, name: "clicks", conversion: true, mboxes: [{ name: mbox, successEvent: "mbox_clicked" }] },
  ],
});

async function main() {
  // The gateway's client key stands where Adobe's IMS token would: the gateway adds its own upstream.
  const client = await sdk.init("demo", "any-api-key", key);

  await call("getActivities", () => client.getActivities());
  const ab = await call("createABActivity", () => client.createABActivity(activity("Lib AB", "lib-ab-box")));
  const abId = ab && ab.id;
  await call("getABActivityById", () => client.getABActivityById(abId));
  await call("updateABActivity", () => client.updateABActivity(abId, activity("Lib AB 2", "lib-ab-box")));
  await call("setActivityName", () => client.setActivityName(abId, "Lib AB renamed"));
  await call("setActivityState", () => client.setActivityState(abId, "deactivated"));
  await call("setActivityPriority", () => client.setActivityPriority(abId, 20));
  await call("setActivitySchedule", () =>
    client.setActivitySchedule(abId, { startsAt: "2030-01-01T00:00:00Z", endsAt: "2030-02-01T00:00:00Z" }),
  );
  await call("getActivityChangeLog", () => client.getActivityChangeLog(abId));
  await call("getABActivityPerformance", () => client.getABActivityPerformance(abId));
  await call("getActivityPerformance", () => client.getActivityPerformance(abId));
  await call("getOrdersReport", () => client.getOrdersReport(abId));
  const xt = await call("createXTActivity", () => client.createXTActivity(activity("Lib XT", "lib-xt-box")));
  const xtId = xt && xt.id;
  await call("getXTActivityById", () => client.getXTActivityById(xtId));
  await call("updateXTActivity", () => client.updateXTActivity(xtId, activity("Lib XT 2", "lib-xt-box")));
  await call("getXTActivityPerformance", () => client.getXTActivityPerformance(xtId));
  await call("deleteXTActivity", () => client.deleteXTActivity(xtId));
  await call("deleteABActivity", () => client.deleteABActivity(abId));

  await call("getOffers", () => client.getOffers());
  const offer = await call("createOffer", () => client.createOffer({ name: "lib offer", content: "<p>lib</p>" }));
  const offerId = offer && offer.id;
  await call("getOfferById", () => client.getOfferById(offerId));
  await call("updateOffer", () => client.updateOffer(offerId, { name: "lib offer 2", content: "<p>lib 2</p>" }));
  await call("deleteOffer", () => client.deleteOffer(offerId));

  await call("getAudiences", () => client.getAudiences());
  const rule = { and: [{ page: "url", equals: ["http://www.example.com/"] }] };
  const audience = await call("createAudience", () =>
    client.createAudience({ name: "lib audience", description: "from the library", targetRule: rule }),
  );
  const audienceId = audience && audience.id;
  await call("getAudienceById", () => client.getAudienceById(audienceId));
  await call("updateAudience", () =>
    client.updateAudience(audienceId, { name: "lib audience 2", description: "changed", targetRule: rule }),
  );
  await call("deleteAudience", () => client.deleteAudience(audienceId));

  await call("getProperties", () => client.getProperties());
  await call("getPropertyById", () => client.getPropertyById(4101));
  await call("getMBoxes", () => client.getMBoxes());
  await call("getMBoxByName", () => client.getMBoxByName("home-hero"));
  await call("getMBoxProfileAttributes", () => client.getMBoxProfileAttributes());
  await call("getEnvironments", () => client.getEnvironments());
  await call("executeBatch", () =>
    client.executeBatch({
      operations: [
        { operationId: 1, method: "GET", relativeUrl: "/target/environments" },
        { operationId: 2, method: "GET", relativeUrl: "/target/mboxes" },
      ],
    }),
  );
  for (const result of Object.values(results)) delete result.body;
  console.log(JSON.stringify(results));
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
