"""`agecam serve`: the review app for loss-prevention staff; `agecam serve --hash-password` makes a
password hash for review.accounts."""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import socket
import sys

from edge.cli.common import db_path, event_log_option, load
from edge.config import Config, is_loopback
from edge.errors import ConfigError, StateError
from edge.store.storage import unfit_for_a_log

log = logging.getLogger("agecam.review")


def _hash_password() -> int:
    from edge.review.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ConfigError("the two passwords differ: run agecam serve --hash-password again")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise ConfigError("the password is shorter than 8 characters: choose a longer one")
    print(hash_password(password))
    return 0


def check_address(config: Config, host: str) -> None:
    """Loopback always; another address only when the config names it and says how TLS is provided."""
    review = config.review
    if is_loopback(host):
        return
    if host != review.host or review.tls is None:
        raise ConfigError(
            f"refusing to serve on {host}: set review.host: {host} and review.tls: reverse_proxy in"
            f" {config.origin}, and put it behind an HTTPS reverse proxy"
        )


def _listen(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a taken port is one line and exit 2, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog until the server accepts them
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror}): choose another --port") from None
    return sock


def _serve(args: argparse.Namespace) -> int:
    config = load(args)
    if args.hash_password:
        return _hash_password()
    host, port = args.host or config.review.host, config.review.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: give a port from 0 to 65535")
    check_address(config, host)
    if not config.review.accounts:
        raise ConfigError(f"{config.origin}: review.accounts is empty: add one with agecam serve --hash-password")
    path = db_path(args, config)
    if not path.is_file():
        raise StateError(unfit_for_a_log(path) or f"event log not found: {path}: give --db or set state.dir")
    import uvicorn  # the till's frame loop never pays for the web stack

    from edge.review.app import create_app

    sock = _listen(host, port)
    app = create_app(config, path)
    log.info(
        "review app on http://%s:%d over %s (times in %s)", host, sock.getsockname()[1], path, config.review.timezone
    )
    # X-Forwarded-For only from a configured HTTPS proxy: uvicorn trusts it from 127.0.0.1 by default, so
    # without one any local client could pick its address, dodging the login lockout and forging the log.
    proxied = config.review.tls is not None
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, server_header=False, access_log=True, proxy_headers=proxied)
    )
    # uvicorn stops gracefully on SIGTERM or Ctrl-C, then raises the signal again for the previous
    # handler: a no-op one makes a clean stop exit 0, as `agecam run` does.
    previous = {number: signal.signal(number, _stopped) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    log.info("review app stopped")
    return 0


def _stopped(number: int, frame: object) -> None:
    """Only reached after uvicorn's own handler has stopped the server."""


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="the review app for loss-prevention staff (a web app, login needed)")
    serve.add_argument("--db", type=event_log_option, help="event log (default: STATE_DIR/agecam.db)")
    serve.add_argument("--host", help="address to listen on (default review.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default review.port, 8780; 0 picks a free one)")
    serve.add_argument(
        "--hash-password",
        action="store_true",
        help="read a password (stdin or prompt) and print its hash for review.accounts",
    )
    serve.set_defaults(handler=_serve)
