#!/bin/sh
# A warm container's command: `sh -c "$(cat warm.sh)" podkernel-warm FILE IDLE_S KERNEL_COMMAND...`.
# It waits for the connection file on the FIFO beside FILE, then execs the kernel's own command.
# Waiting longer than IDLE_S seconds ends the container (and --rm removes it), even when no
# podkernel process is left to do it. It needs sh, cat, sleep and mv in the image; the kernel
# gets the umask the image gives it, not the wait's 077.
command -v cat >/dev/null && command -v sleep >/dev/null && command -v mv >/dev/null || exit 97
file="$1"
shift
idle="$1"
shift
(
    trap 'kill $s 2>/dev/null; exit 0' TERM
    sleep "$idle" &
    s=$!
    wait $s && kill -TERM $$
) &
timer=$!
(umask 077; cat "${file%/*}/.start" > "$file.new") || exit 98
kill $timer
mv "$file.new" "$file"
exec "$@"
