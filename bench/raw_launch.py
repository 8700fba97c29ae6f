"""The raw floor: run the exact `podkernel show` argv with one start's values filled in.

    python -S raw_launch.py ARGV_JSON CONNECTION_FILE

No podkernel code runs: this reads the connection file, writes the container's copy (ip
0.0.0.0), fills the {placeholders} (the {published_*} ports with the connection file's own:
Podman publishes them directly, with no relay) and execs `podman run` in the foreground
(attached, so that this process lives as long as the kernel, as a kernelspec's argv must).
"""

import json
import os
import sys
import tempfile

argv_file, connection_file = sys.argv[1:]
with open(argv_file) as handle:
    argv = json.load(handle)
with open(connection_file) as handle:
    info = json.load(handle)
private_dir = tempfile.mkdtemp(prefix="raw-floor-")
with open(os.path.join(private_dir, "connection.json"), "w") as handle:
    json.dump(dict(info, ip="0.0.0.0"), handle)
os.chmod(os.path.join(private_dir, "connection.json"), 0o600)
values = {key: str(value) for key, value in info.items() if key.endswith("_port")}
# podkernel publishes on spare ports behind its relay; the floor publishes the connection file's own.
values.update({"published_" + key: value for key, value in list(values.items())})
values.update(
    connection_file=connection_file, private_dir=private_dir, suffix=os.urandom(4).hex(), launcher_pid=str(os.getpid())
)
filled = []
for word in argv:
    for key, value in values.items():
        word = word.replace("{" + key + "}", value)
    filled.append(word)
filled.remove("--detach")
os.execvp(filled[0], filled)
