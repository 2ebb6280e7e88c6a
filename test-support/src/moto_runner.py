# Runs moto's server on a free loopback port for one test process; prints
# "PORT <n>" once ready and exits when its parent (the test binary) goes away,
# so a server held in a test binary's static never outlives the binary.
# fake_eks.py (prepended to this script) answers the two EKS APIs moto lacks.
import os
import sys
import time

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class Server(ThreadedMotoServer):
    def _server_entry(self):
        app = FakeEks(DomainDispatcherApplication(create_backend_app))
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
