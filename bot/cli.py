"""`migrate-bot` (also `python -m bot`): the composition root for every command.

Settings are read once here; a missing or malformed one ends the command with one line
naming the variable and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from bot.settings import SettingsError

Command = Callable[[argparse.Namespace], int]


def _simulator(args: argparse.Namespace) -> int:
    """Serve a simulated pool until interrupted; the URL is the first line printed."""
    from bot.simulator import SimulatorServer, simulator  # the CLI may; the bot never does

    sim = simulator(args.scenario, username=args.username, password=args.password)
    with SimulatorServer(sim, port=args.port) as server:
        print(server.url, flush=True)
        hosts = sim.db.tables["host"].values()
        print(
            f"pool {sim.db.get('pool', sim.pool_ref)['name_label']!r}: "
            f"{len(hosts)} hosts, {len(sim.db.tables['VM'])} VM records; "
            f"login {args.username}/<password>; control: POST {server.url}/control",
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migrate-bot", description="Move Xen VMs from Slack, with a checklist and approval."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulator", help="serve a simulated XAPI pool on 127.0.0.1")
    sim.add_argument("--scenario", default="demo", help="'demo', 'large', or a YAML/JSON file")
    sim.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    sim.add_argument("--username", default="root")
    sim.add_argument("--password", default="secret")
    sim.set_defaults(run=_simulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SettingsError as error:
        print(f"migrate-bot: {error}", file=sys.stderr)
        return 2
