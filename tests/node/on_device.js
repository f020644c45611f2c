// Adobe's Node.js SDK deciding on device from a rules artifact (the emulator's, at Adobe's path), its
// notifications sent through the gateway: prints, for each request, what each of its decisions showed,
// and every address it called.
const readyClient = require("./ready_client");

const gateway = process.argv[2]; // host:port
const artifactLocation = process.argv[3];
const requests = JSON.parse(require("fs").readFileSync(process.argv[4], "utf8")); // Delivery API requests
const calls = [];
const fetchApi = (url, options) => {
  const { host, pathname } = new URL(url);
  calls.push(host + pathname);
  return fetch(url, options);
};
const create = () =>
  readyClient(gateway, { decisioningMethod: "on-device", artifactLocation, pollingInterval: 0, fetchApi });

const shown = (decision) => (decision.options || []).map((option) => option.content);

async function main() {
  const client = await create();
  const out = [];
  for (const request of requests) {
    const answer = await client.getOffers({ request });
    const execute = answer.response.execute || {};
    out.push({
      status: answer.response.status,
      mboxes: (execute.mboxes || []).map(shown),
      pageLoad: execute.pageLoad ? shown(execute.pageLoad) : null,
      method: answer.meta && answer.meta.decisioningMethod,
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 500)); // its notifications on their way
  process.stdout.write(JSON.stringify({ visitors: out, calls }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
