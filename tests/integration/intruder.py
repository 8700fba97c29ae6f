"""Another local user, hostile: serves requests to attack a kernel's ports over a unix socket.

Run as a different user than the tests (root's tests start it with setpriv as nobody;
scripts/test-rootless starts it for the rootless run). Standard library only: it runs with
the system's Python, from its source given on the command line, since that user may not
read the test tree.

    python3 -c "$(cat intruder.py)" SOCKET

Each request is one JSON line; each answer too:
    {"take": [PORT, ...], "seconds": S}   bind and listen on the ports, again and again for S s
        -> {"took": [PORT, ...], "uid": UID}
    {"flood": PORT, "count": N, "seconds": S}  hold N connections to PORT for S s, each sending a byte
        -> {"opened": N_OPENED, "uid": UID}
"""

import json
import os
import resource
import socket
import socketserver
import sys
import time


def take(ports: list[int], seconds: float) -> list[int]:
    took = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(took) < len(ports):
        for port in ports:
            if port in took:
                continue
            squatter = socket.socket()
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                squatter.bind(("127.0.0.1", port))
                squatter.listen()
                took.append(port)  # kept open: a real intruder would now wait for the frontend
            except OSError:
                squatter.close()
        time.sleep(0.005)
    return took


def flood(port: int, count: int, seconds: float) -> int:
    _, most = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (most, most))
    held = []
    for _ in range(count):
        try:
            connection = socket.create_connection(("127.0.0.1", port), timeout=1)
            connection.sendall(b"\0")
            held.append(connection)
        except OSError:
            break
    time.sleep(seconds)
    for connection in held:
        connection.close()
    return len(held)


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        request = json.loads(self.rfile.readline())
        if "take" in request:
            answer = {"took": take(request["take"], request["seconds"])}
        else:
            answer = {"opened": flood(request["flood"], request["count"], request["seconds"])}
        answer["uid"] = os.getuid()
        self.wfile.write(json.dumps(answer).encode() + b"\n")


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    path = sys.argv[1]
    os.umask(0o000)  # the test user, another user, connects
    with Server(path, Handler) as server:
        print("ready", flush=True)
        server.serve_forever()
