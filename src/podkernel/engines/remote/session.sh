#!/bin/sh
# A remote kernel's session, run on the remote host over SSH:
#   sh -c "$(cat session.sh)" podkernel-session CONTAINER PODMAN_SOCKET HEARTBEAT_TIMEOUT_S
# In the background, the dead-man's switch: it reads heartbeat lines until one is late or the
# session's input ends, then removes the container and its secret, and again 10 s later, should
# a `run` have been in flight. Meanwhile the kernel's output streams back until the container
# has ended (`logs --follow` alone can outlive a container that its engine failed to remove),
# with 2 s for its last lines. A background job's stdin is /dev/null in sh: the session's own
# goes to it as descriptor 3.
trap '' HUP PIPE
c="$1"
api="unix://$2"
exec 3<&0
(
    while beat=$(timeout "$3" head -n 1 <&3) && [ -n "$beat" ]; do :; done
    podman --url "$api" rm --force --ignore --time 0 "$c"
    podman --url "$api" secret rm "$c"
    sleep 10
    podman --url "$api" rm --force --ignore --time 0 "$c"
    podman --url "$api" secret rm "$c"
) >/dev/null 2>&1 &
exec 3<&- </dev/null
podman --url "$api" logs --follow "$c" 2>&1 &
logs=$!
podman --url "$api" wait "$c" >/dev/null 2>&1
i=0
while kill -0 $logs 2>/dev/null && [ $i -lt 20 ]; do
    sleep 0.1
    i=$((i + 1))
done
kill $logs 2>/dev/null
wait $logs 2>/dev/null
