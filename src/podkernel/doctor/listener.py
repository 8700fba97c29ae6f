"""Run inside a container by ``podkernel doctor`` (``python3 -c``): listen on the port given, on all
interfaces, and greet the first connection, so that the doctor can tell a published port answers."""

import socket
import sys

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(1)
connection, _ = server.accept()
connection.sendall(b"podkernel-doctor")
