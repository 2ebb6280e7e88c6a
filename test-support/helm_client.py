"""The real Helm library (helm-sdkpy: Helm v4's Go code) acting on a release.

Usage: helm_client.py KUBECONFIG NAMESPACE ACTION RELEASE [ARG...]
  list | status | values | history | uninstall RELEASE
  install | upgrade RELEASE CHART_DIR VALUES_JSON
  rollback RELEASE REVISION
Prints the library's answer as one JSON document; on a Helm error prints
{"error": "<class>", "message": "..."} and exits 3.
"""
import asyncio
import json
import sys

import helm_sdkpy as helm


async def act(config, action, release, args):
    if action == "list":
        return await helm.List(config).run(all=True)
    if action == "status":
        return await helm.Status(config).run(release)
    if action == "values":
        return await helm.GetValues(config).run(release)
    if action == "history":
        return await helm.History(config).run(release)
    if action == "uninstall":
        return await helm.Uninstall(config).run(release, wait=False)
    if action == "install":
        chart, values = args
        return await helm.Install(config).run(
            release, chart, values=json.loads(values), wait=False
        )
    if action == "upgrade":
        chart, values = args
        return await helm.Upgrade(config).run(
            release, chart, values=json.loads(values), wait=False
        )
    if action == "rollback":
        return await helm.Rollback(config).run(release, int(args[0]))
    raise SystemExit(f"unknown action {action}")


def main():
    kubeconfig, namespace, action, release, *args = sys.argv[1:]
    config = helm.Configuration(namespace=namespace, kubeconfig=kubeconfig)
    try:
        result = asyncio.run(act(config, action, release, args))
    except helm.HelmError as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
        sys.exit(3)
    print(json.dumps(result))


main()
