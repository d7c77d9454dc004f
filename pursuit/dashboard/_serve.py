"""``pursuit serve``: the dashboard on a local port, closed to strangers.

It binds 127.0.0.1 unless told otherwise. Any other address needs a token: ``--token
TOKEN`` (or $PURSUIT_TOKEN), or ``--token generate`` for a random one, printed once
here and nowhere else. There is no default password.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

from pursuit.dashboard._app import create_app
from pursuit.dashboard._security import LOOPBACK, new_token
from pursuit.exceptions import PursuitError

GENERATE = "generate"
WILDCARDS = ("0.0.0.0", "::", "")


def serve(store_url: str | None, *, host: str = "127.0.0.1", port: int = 8080,
          token: str | None = None) -> None:
    """Serve the dashboard of the store at ``store_url`` until interrupted.

    Raises PursuitError for a non-loopback ``host`` without a token, a token too
    short to guess at, or a store that cannot be read."""
    import uvicorn

    if token == GENERATE:
        token = new_token()
        print(f"token (shown once): {token}", file=sys.stderr)
    if token is None and not is_loopback(host):
        raise PursuitError(
            f"refusing to serve on {host} without a token: anyone who can reach this "
            "machine could read the results. Give --token TOKEN (or set PURSUIT_TOKEN), "
            "or --token generate to have one made and printed once")
    app = create_app(store_url, token=token, allowed_hosts=allowed_hosts(host))
    _check_free(host, port)  # said in one line, before the address is printed as served
    shown = f"[{host}]" if ":" in host else host
    print(f"Pursuit dashboard on http://{shown}:{port}/ (Ctrl-C stops it)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False,
                proxy_headers=False, timeout_keep_alive=5)


def _check_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PursuitError(f"cannot listen on {host}:{port}: "
                               f"{error.strerror or error}") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """The names a browser may use for this server: loopback, the address bound, and
    for a wildcard bind the machine's own names and addresses; plus any listed in
    $PURSUIT_ALLOWED_HOSTS (comma-separated: a name a proxy or DNS gives it)."""
    names = [*LOOPBACK, host]
    if host in WILDCARDS:
        machine = socket.gethostname()
        names += [machine, socket.getfqdn()]
        try:
            names += [str(info[4][0]) for info in socket.getaddrinfo(machine, None)]
        except OSError:  # a machine whose own name does not resolve
            pass
    names += [n.strip() for n in os.environ.get("PURSUIT_ALLOWED_HOSTS", "").split(",")
              if n.strip()]
    return [n for n in dict.fromkeys(names) if n not in WILDCARDS]
