# FAKE, FOR TESTS ONLY. moto 5.2 has no EKS access entries and no EKS Pod
# Identity associations (it answers those routes with an HTML 404). This WSGI
# middleware sits in front of moto's app in the same server and answers just
# those two APIs from memory, in the REST-JSON shapes of the EKS API
# reference; every other request, other EKS calls included, goes to moto.
# Clusters must exist in moto's EKS backend (CreateCluster), as in AWS.
import json
import re
import time
import uuid
from urllib.parse import parse_qs, unquote

ACCESS = re.compile(r"^/clusters/([^/]+)/access-entries(?:/(.+))?$")
PODID = re.compile(r"^/clusters/([^/]+)/pod-identity-associations(?:/([^/]+))?$")
ACCOUNT = "123456789012"


class FakeEks:
    def __init__(self, app):
        self.app = app
        self.entries = {}  # (cluster, principalArn) -> accessEntry
        self.associations = {}  # (cluster, id) -> association

    def __call__(self, environ, start_response):
        path = unquote(environ.get("PATH_INFO", ""))
        if path == "/moto-api/reset":
            self.entries.clear()
            self.associations.clear()
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if "/eks/" in auth:
            for pattern, handler in ((ACCESS, self.access), (PODID, self.pod_identity)):
                match = pattern.match(path)
                if match:
                    return self.answer(environ, start_response, handler, match)
        return self.app(environ, start_response)

    def answer(self, environ, start_response, handler, match):
        method = environ["REQUEST_METHOD"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        region = self.region(environ)
        cluster, item = match.group(1), match.group(2)
        if not self.cluster_exists(cluster, region):
            status, payload = 404, error("ResourceNotFoundException", f"No cluster found for name: {cluster}.")
        else:
            status, payload = handler(method, cluster, item, body, query, region)
        headers = [("Content-Type", "application/json")]
        if status >= 400:
            headers.append(("x-amzn-ErrorType", payload["__type"]))
        start_response(f"{status} {'OK' if status < 400 else 'Error'}", headers)
        return [json.dumps(payload).encode()]

    @staticmethod
    def region(environ):
        match = re.search(r"Credential=[^/]+/\d+/([^/]+)/eks/", environ.get("HTTP_AUTHORIZATION", ""))
        return match.group(1) if match else "us-east-1"

    @staticmethod
    def cluster_exists(name, region):
        from moto.eks.models import eks_backends

        return name in eks_backends[ACCOUNT][region].clusters

    def access(self, method, cluster, principal, body, query, region):
        if principal is None and method == "POST":
            key = (cluster, body["principalArn"])
            if key in self.entries:
                return 409, error("ResourceInUseException", "The specified access entry resource is already in use on this cluster.")
            now = time.time()
            entry = {
                "clusterName": cluster,
                "principalArn": body["principalArn"],
                "kubernetesGroups": body.get("kubernetesGroups", []),
                "accessEntryArn": f"arn:aws:eks:{region}:{ACCOUNT}:access-entry/{cluster}/role/{uuid.uuid4()}",
                "createdAt": now,
                "modifiedAt": now,
                "tags": body.get("tags", {}),
                "username": body.get("username") or body["principalArn"],
                "type": body.get("type", "STANDARD"),
            }
            self.entries[key] = entry
            return 200, {"accessEntry": entry}
        if principal is None and method == "GET":
            arns = [arn for (c, arn) in self.entries if c == cluster]
            return 200, {"accessEntries": arns}
        entry = self.entries.get((cluster, principal))
        if entry is None:
            return 404, error("ResourceNotFoundException", f"The specified principalArn could not be found. {principal}")
        if method == "GET":
            return 200, {"accessEntry": entry}
        if method == "DELETE":
            del self.entries[(cluster, principal)]
            return 200, {}
        return 405, error("InvalidRequestException", f"{method} is not supported here")

    def pod_identity(self, method, cluster, ident, body, query, region):
        if ident is None and method == "POST":
            for a in self.associations.values():
                if (a["clusterName"], a["namespace"], a["serviceAccount"]) == (cluster, body["namespace"], body["serviceAccount"]):
                    return 409, error("ResourceInUseException", "Association already exists for this service account.")
            ident = "a-" + uuid.uuid4().hex[:17]
            now = time.time()
            association = {
                "clusterName": cluster,
                "namespace": body["namespace"],
                "serviceAccount": body["serviceAccount"],
                "roleArn": body["roleArn"],
                "associationArn": f"arn:aws:eks:{region}:{ACCOUNT}:podidentityassociation/{cluster}/{ident}",
                "associationId": ident,
                "tags": body.get("tags", {}),
                "createdAt": now,
                "modifiedAt": now,
            }
            self.associations[(cluster, ident)] = association
            return 200, {"association": association}
        if ident is None and method == "GET":
            found = [
                {k: a[k] for k in ("clusterName", "namespace", "serviceAccount", "associationArn", "associationId")}
                for (c, _), a in self.associations.items()
                if c == cluster
                and query.get("namespace", a["namespace"]) == a["namespace"]
                and query.get("serviceAccount", a["serviceAccount"]) == a["serviceAccount"]
            ]
            return 200, {"associations": found}
        association = self.associations.get((cluster, ident))
        if association is None:
            return 404, error("ResourceNotFoundException", f"Association {ident} not found.")
        if method == "GET":
            return 200, {"association": association}
        if method == "POST":
            association["roleArn"] = body.get("roleArn", association["roleArn"])
            association["modifiedAt"] = time.time()
            return 200, {"association": association}
        if method == "DELETE":
            del self.associations[(cluster, ident)]
            return 200, {"association": association}
        return 405, error("InvalidRequestException", f"{method} is not supported here")


def error(kind, message):
    return {"__type": kind, "message": message}
