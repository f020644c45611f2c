// Adobe's Node.js SDK client for the demo client on the gateway, once it is ready (on device: once it has
// its rules artifact). ``options`` add to or replace the SDK's settings.
const TargetClient = require("@adobe/target-nodejs-sdk");

const logger = { debug() {}, error(...args) { console.error(...args); } };

module.exports = function readyClient(gateway, options = {}, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const client = TargetClient.create({
      client: "demo",
      organizationId: "EMULATOR@AdobeOrg",
      serverDomain: gateway,
      secure: false,
      logger,
      ...options,
      events: { clientReady: () => resolve(client) },
    });
    setTimeout(() => reject(new Error("client not ready")), timeoutMs);
  });
};
