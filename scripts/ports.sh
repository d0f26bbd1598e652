#!/bin/bash
# Shell functions for scripts that start servers and then talk to them on TCP ports: who listens
# on a port, and whether that listener is a process the script started (or one of its
# descendants). Source it; it sets nothing else. Needs ss (iproute2) and /proc.

# The PIDs listening on TCP port $1 (any local address), one per line, sorted, unique.
port_listeners() {
        ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -un
}

# "NAME (pid N)" for each listener of port $1, comma-separated; "an unknown process" when the
# socket is there but its owner cannot be seen (another network namespace, no permission).
port_owner() {
        local pid out=
        for pid in $(port_listeners "$1"); do
                out+="${out:+, }$(cat "/proc/$pid/comm" 2>/dev/null || echo '?') (pid $pid)"
        done
        if [ -z "$out" ] && [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; then
                out="an unknown process"
        fi
        echo "$out"
}

# Succeeds when PID $1 is PID $2 or one of its descendants.
pid_within() {
        local pid=$1 root=$2
        while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
                [ "$pid" = "$root" ] && return 0
                pid=$(awk '{ sub(/^.*\) /, ""); print $2 }' "/proc/$pid/stat" 2>/dev/null) || return 1
        done
        return 1
}

# Succeeds when port $1 has a listener and every listener is PID $2 or its descendant.
port_owned_by() {
        local pids pid
        pids=$(port_listeners "$1")
        [ -n "$pids" ] || return 1
        for pid in $pids; do
                pid_within "$pid" "$2" || return 1
        done
}

# Succeeds when something listens on port $1 that is not PID $2 or its descendant (or whose
# owner cannot be seen).
port_taken_by_other() {
        local pid
        [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ] || return 1
        for pid in $(port_listeners "$1"); do
                pid_within "$pid" "$2" || return 0
        done
        [ -z "$(port_listeners "$1")" ]
}

# Succeeds when a TCP socket is bound to 127.0.0.1:$1 (or the wildcard address) without listening:
# ss shows listeners only, yet a server's bind() fails the same. Binds with SO_REUSEADDR, as
# servers do, so connections left in TIME_WAIT do not count. Needs python3.
port_bound_not_listening() {
        [ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ] || return 1
        ! python3 -c '
import errno, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    sys.exit(1 if e.errno == errno.EADDRINUSE else 0)' "$1"
}
