// Evaluates AWS requests against an identity policy with
// @cloud-copilot/iam-simulate (conditions included).
// stdin: {"principal": ARN, "account": ID, "policies": [{...}, ...],
//         "requests": [{"action", "resource", "context": {key: string | [string]}}]}
// stdout: one JSON array, a {"action", "resource", "result"} per request.
const { runSimulation } = require("@cloud-copilot/iam-simulate");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", async () => {
  const { principal, account, policies, requests } = JSON.parse(input);
  const identityPolicies = policies.map((policy, i) => ({ name: `policy-${i}`, policy }));
  const out = [];
  for (const r of requests) {
    const simulation = {
      request: {
        principal,
        action: r.action,
        resource: { resource: r.resource, accountId: account },
        contextVariables: r.context,
      },
      identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    };
    try {
      const answer = await runSimulation(simulation, {});
      const result = answer.errors
        ? "Error: " + JSON.stringify(answer.errors)
        : answer.overallResult ?? answer.result?.analysis?.result ?? JSON.stringify(answer);
      out.push({ action: r.action, resource: r.resource, result });
    } catch (e) {
      out.push({ action: r.action, resource: r.resource, result: "Error: " + e.message });
    }
  }
  process.stdout.write(JSON.stringify(out));
});
