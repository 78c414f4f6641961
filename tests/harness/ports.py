"""Free TCP ports on localhost, for test servers and local multi-worker clusters."""

import socket


def free_ports(n: int) -> list[int]:
    """`n` distinct ports that were free a moment ago (all bound at once, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
