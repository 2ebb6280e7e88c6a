# Runs moto's server on a free loopback port for one test process; prints
# "PORT <n>" once ready and exits when its parent (the test binary) goes away,
# so a server held in a test binary's static never outlives the binary.
import os
import sys
import time

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
while os.getppid() == parent:
    time.sleep(0.2)
server.stop()
sys.exit(0)
