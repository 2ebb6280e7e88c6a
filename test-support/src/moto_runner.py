# Runs moto's server on a free loopback port for one test process; prints
# "PORT <n>" once ready and exits when its parent (the test binary) goes away,
# so a server held in a test binary's static never outlives the binary.
# fake_eks.py (prepended to this script) answers the two EKS APIs moto lacks.
import io
import json
import os
import re
import sys
import time

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class RequestLog:
    """With MOTO_REQUEST_LOG set, appends each request to that file as a
    JSON line (the signing key id, service, method, path, query, X-Amz-Target
    and body) for tests that evaluate what a program asked AWS for."""

    def __init__(self, app, path):
        self.app, self.path = app, path

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = re.search(r"Credential=([^/]+)/\d+/[^/]+/([^/]+)/", auth)
        entry = {
            "key": match.group(1) if match else "",
            "service": match.group(2) if match else "",
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "target": environ.get("HTTP_X_AMZ_TARGET", ""),
            "body": body.decode("utf-8", "replace"),
        }
        with open(self.path, "a") as log:
            log.write(json.dumps(entry) + "\n")
        return self.app(environ, start_response)


class Server(ThreadedMotoServer):
    def _server_entry(self):
        app = FakeEks(DomainDispatcherApplication(create_backend_app))
        if os.environ.get("MOTO_REQUEST_LOG"):
            app = RequestLog(app, os.environ["MOTO_REQUEST_LOG"])
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


parent = os.getppid()
server = Server(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
while os.getppid() == parent:
    time.sleep(0.2)
server.stop()
sys.exit(0)
