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
from typing import TYPE_CHECKING, TextIO

from bot.settings import SettingsError

if TYPE_CHECKING:
    from bot.engine.events import Event
    from bot.planning.command import BatchCommand, MigrateCommand
    from bot.settings import Settings
    from bot.wiring import Core

Command = Callable[[argparse.Namespace], int]
USAGE = 2  # the exit status of a command line that does not parse, as argparse's own


def _simulator(args: argparse.Namespace) -> int:
    """Serve a simulated pool until interrupted; the URL is the first line printed."""
    from bot.simulator import SimulatorServer, simulator  # the CLI may; the bot never does
    from bot.simulator.scenario import describe

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
        for line in describe(sim):
            print(f"  {line}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def _check(args: argparse.Namespace) -> int:
    """Plan and checklist for a command (exit 1 on a blocker); `--run` then migrates one VM."""
    from bot.planning.command import BadCommand, BatchCommand, MigrateCommand, parse
    from bot.planning.planner import UserError
    from bot.settings import load_settings
    from bot.wiring import build_core

    command = parse(args.text)
    if isinstance(command, BadCommand):
        print(command.message, file=sys.stderr)
        return USAGE
    if not isinstance(command, MigrateCommand | BatchCommand):
        print(
            "check takes a migration: '<vm> to <host> [sr=…] [mode=…]', "
            "'<vm>,<vm> [to <host>]', 'tag:<tag> [to <host>]' or 'evacuate <host>'",
            file=sys.stderr,
        )
        return USAGE
    if args.execute and isinstance(command, BatchCommand):
        print("check --run takes one VM; file batches in Slack", file=sys.stderr)
        return USAGE
    settings = load_settings()
    if isinstance(command, BatchCommand) or not args.execute:
        return _preview(settings, command)
    core = build_core(settings)
    try:
        pool, command = core.fleet.finder.choose(command, core.fleet.names)
        run = core.pool(pool)
        if run.leadership is not None and not run.leadership.acquire():
            print(
                f"a migrate-bot replica runs pool {pool}: file the migration in Slack",
                file=sys.stderr,
            )
            return 1
        return _run(core, pool, command)
    except UserError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        core.stop()


def _preview(settings: Settings, command: MigrateCommand | BatchCommand) -> int:
    """Print the plan of one VM or of a batch, filing nothing: exit 1 when something blocks
    (a batch is planned as the engine plans it, with the configured concurrency)."""
    from bot.cli.text import batch_text, plan_text
    from bot.planning.batch_planner import BatchPlanner
    from bot.planning.command import BatchCommand
    from bot.planning.planner import UserError
    from bot.planning.pool_finder import PoolFinder
    from bot.settings import pool_configs
    from bot.wiring import planner, xen_config
    from bot.xen.connection import Xapi

    configs = {config.name: config for config in pool_configs(settings)}
    sessions = {name: Xapi(xen_config(config)) for name, config in configs.items()}
    finder = PoolFinder({name: planner(settings, xapi) for name, xapi in sessions.items()})
    try:
        pool, command = finder.choose(command, list(configs))
        single = finder.planners[pool]
        if isinstance(command, BatchCommand):
            limit = configs[pool].max_concurrent
            asked = command
            batch = finder.within(pool, lambda: BatchPlanner(single, limit).preview(asked))
            text, blocked = batch_text(batch.summary()), batch.blocked
        else:
            one = command
            preview = finder.within(pool, lambda: single.preview(one))
            text, blocked = plan_text(preview.summary()), preview.blocked
    except UserError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        finder.stop()
        for xapi in sessions.values():
            xapi.close()
    if len(configs) > 1:
        print(f"pool {pool}")
    print(text)
    return 1 if blocked else 0


def _run(core: Core, pool: str, command: MigrateCommand) -> int:
    """Submit, approve as the operator at the terminal, and run in the foreground."""
    import getpass

    from bot.cli.text import plan_text
    from bot.states import State

    run = core.pool(pool)
    preview = core.fleet.finder.within(pool, lambda: run.engine.preview(command))
    print(plan_text(preview.summary()))
    if preview.blocked:
        return 1
    run.watcher.start()
    operator = f"cli:{getpass.getuser()}"
    run.engine.subscribe(TerminalProgress(sys.stdout))
    request = run.engine.submit(command, preview, requester=operator)
    run.engine.approve(request.id, operator)
    final = run.engine.run(request.id)
    return 0 if final.state == State.SUCCEEDED else 1


class TerminalProgress:
    """Prints engine events; redraws one progress line on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last = -1

    def __call__(self, event: Event) -> None:
        from bot.cli.text import event_line
        from bot.engine.events import StepProgress
        from bot.planning.units import format_duration, progress_bar

        if isinstance(event, StepProgress):
            eta = f" ETA {format_duration(event.eta_seconds)}" if event.eta_seconds else ""
            line = f"  {event.step} {progress_bar(event.fraction)}{eta}"
            if self.tty:
                self.out.write("\r" + line.ljust(70))
            elif int(event.fraction * 10) != self._last:
                self._last = int(event.fraction * 10)
                self.out.write(line + "\n")
        else:
            text = event_line(event)
            if text:
                self.out.write(("\n" if self.tty else "") + text + "\n")
                self._last = -1
        self.out.flush()


def _demo(args: argparse.Namespace) -> int:
    """The journey through the real HTTP path, on the simulator and the Slack double."""
    from pathlib import Path

    from bot.cli import demo

    keep = (lambda stage: demo.keep_running(stage, sys.stdin)) if args.keep else None
    return demo.run(
        sys.stdout,
        tuple(args.scene or demo.SCENES),
        speed=6.0 if args.slow else 60.0,
        html=Path(args.html) if args.html else None,
        keep=keep,
    )


def _serve(args: argparse.Namespace) -> int:
    """Serve Slack until SIGTERM or Ctrl-C; running migrations survive a restart."""
    from bot import logs
    from bot.settings import load_settings, pool_configs
    from bot.wiring import start

    settings = load_settings()
    pools = [config.password for config in pool_configs(settings)]
    secrets = [*settings.secret_values(), *logs.url_secrets(settings.bot_database_url), *pools]
    logs.configure(settings.bot_log_format, settings.bot_log_level, secrets)
    service = start(settings)
    ended = service.ended  # SIGTERM, Ctrl-C, or this replica lost a pool's lock
    signal.signal(signal.SIGTERM, lambda *_: ended.set())
    with contextlib.suppress(KeyboardInterrupt):
        ended.wait()
    service.stop()
    return 3 if service.lost else 0


def _audit(args: argparse.Namespace) -> int:
    """The audit log since a time, one event per line (JSON lines or CSV) on stdout; the
    store is opened read-only (no schema upgrade), so the schema must be this version's."""
    from datetime import UTC, datetime

    from bot.cli import audit as audit_export
    from bot.clock import SystemClock
    from bot.settings import load_settings
    from bot.store.schema_status import DatabaseProblem
    from bot.store.store import Store

    settings = load_settings()
    since = None
    if args.since:
        try:
            now = datetime.now(UTC)
            since = audit_export.parse_since(args.since, now, settings.timezone).timestamp()
        except audit_export.SinceError as error:
            print(error, file=sys.stderr)
            return 1
    try:
        store = Store(settings.bot_database_url, SystemClock(), read_only=True)
    except DatabaseProblem as problem:
        print(problem, file=sys.stderr)
        return 1
    try:
        events = store.audit_events(since=since, request_id=args.request)
        audit_export.write(events, args.format, sys.stdout)
    finally:
        store.close()
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from bot.cli.check_config import check_config
    from bot.settings import load_settings

    return check_config(load_settings(), sys.stdout)


def _version() -> str:
    """The installed package's version (pip records it; a bare checkout has none)."""
    from importlib import metadata

    try:
        return metadata.version("migrate-bot")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migrate-bot", description="Move Xen VMs from Slack, with a checklist and approval."
    )
    parser.add_argument("--version", action="version", version=f"migrate-bot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve Slack (BOT_MODE=socket or http)")
    run.set_defaults(handler=_serve)
    audit = sub.add_parser("audit", help="export the audit log (JSON lines or CSV)")
    audit.add_argument("--since", help="30m, 24h, 7d, or ISO 8601 (2026-11-26T02:00)")
    audit.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    audit.add_argument("--request", type=int, help="only this request's events")
    audit.set_defaults(handler=_audit)
    config = sub.add_parser(
        "check-config",
        help="validate settings, reach XAPI and Slack (exit 0 when ready)",
    )
    config.set_defaults(handler=_check_config)
    sim = sub.add_parser("simulator", help="serve a simulated XAPI pool on 127.0.0.1")
    sim.add_argument(
        "--scenario",
        default="demo",
        help="'demo', 'old' (XenServer 7.1), 'large', or a YAML/JSON file",
    )
    sim.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    sim.add_argument("--username", default="root")
    sim.add_argument("--password", default="secret")
    sim.set_defaults(handler=_simulator)
    check = sub.add_parser(
        "check",
        help="plan and checklist for a migration or a batch (XEN_* settings only)",
        description="Exit 0 when nothing blocks, 1 when something does or a name is unknown, "
        "2 when the text is not a migration.",
    )
    check.add_argument(
        "text", help='what follows /migrate, e.g. "vm01 to host3 sr=nfs1" or "evacuate host1"'
    )
    check.add_argument(
        "--run",
        action="store_true",
        dest="execute",
        help="then run the migration of one VM here, with progress (exit 0 on success)",
    )
    check.set_defaults(handler=_check)
    demo = sub.add_parser(
        "demo",
        help="the Slack journey on the built-in simulator and a local Slack double",
        description="Exit 0 when every scene went as scripted (a smoke test).",
    )
    demo.add_argument(
        "--scene",
        action="append",
        choices=["typo", "offline", "stuck", "retry"],
        help="play only this scene (repeatable); default: all, in order",
    )
    demo.add_argument("--slow", action="store_true", help="the pool's clock 6x, not 60x, real time")
    demo.add_argument(
        "--keep", action="store_true", help="then keep running: type your own commands"
    )
    demo.add_argument("--html", metavar="FILE", help="also write #ops as a Slack-like page")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as error:
        print(f"migrate-bot: {error}", file=sys.stderr)
        return 2
