"""The fuzzing campaign: many generated Slack payloads through bolt's real request path.

`python -m tests.fuzz.campaign [COUNT] [--rejected N] [--seed S]` (`make fuzz`) starts the
whole bot in HTTP mode (the demo pool's simulator over XML-RPC, the Slack double, SQLite),
then sends COUNT signed payloads (slash commands, button presses with edited values,
modal submissions, modal searches, choices inside the modal) and N forged, replayed or
truncated ones. Each is handed to the bot's own WSGI app in-process (what waitress would
call: bolt's `SlackRequestHandler`, its signature check, its routing, our listeners); every
50th goes over a real socket to waitress instead. Eight senders at once, the desk drained
every chunk so its queue stays bounded.

A failure is any of: a 5xx; an ERROR (or an exception) in the bot's log; an ack later than
Slack's 3 s; a signed request refused, or one without a listener answered as routed; an
ack, a response_url answer or a Web API call that breaks Slack's limits or that the double
refuses; "Something went wrong"; a request filed, or anything done, by someone who may not
(by user, by channel); and for the forged, replayed and truncated ones: any answer but
401, or any trace of them (a request, an audit row, an answer on their response_url).
It prints the figures and exits 1 on any failure. The same seed sends the same inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import io
import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bot.slack.desk import Desk
from bot.slack.outbox import Outbox
from bot.slackdouble import SlackDouble, post, signed_headers
from bot.slackdouble.blockkit import problems
from bot.slackdouble.wire import Answer
from bot.states import State
from bot.web import wsgi_app
from bot.wiring import Service, start
from tests.fuzz.inputs import (
    APPROVERS,
    CHANNEL,
    FORGER,
    OTHER_CHANNEL,
    REQUESTERS,
    Input,
    Inputs,
    Names,
)
from tests.support.pool import Pool, Ticker, demo_pool
from tests.support.slack_rig import SECRET, USERS, settings_for

ACK_DEADLINE = 3.0  # Slack shows "operation_timeout" after this
SOMETHING_WRONG = "Something went wrong"
# Refusals by the double that are Slack's answer to the payload, not to what the bot sent:
# a trigger_id that is not one Slack issued, or is used again or late; a view closed or
# changed since the payload was sent (the bot must then say nothing, which the log shows).
EXPECTED_REFUSALS = {
    ("views.open", "invalid_trigger_id"),
    ("views.open", "expired_trigger_id"),
    ("views.open", "exchanged_trigger_id"),
    ("views.update", "not_found"),
    ("views.update", "hash_conflict"),
}
RETRIED = "Failed to send a request to Slack API server"  # slack_sdk retries these
UNROUTED = "Unhandled request"  # bolt's 404 for an action no listener takes (judged apart)
ODD_VM = "legacy01 <!channel> *bold* `x` &lt;" + "é" * 80  # a name that tests every limit


class JudgingDouble(SlackDouble):
    """The Slack double, also keeping each call it refused (status, Slack's error)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refused: list[tuple[str, int, str, dict[str, Any]]] = []

    def meet(self, user: str) -> None:
        """A member Slack knows: it signs payloads only for people in the workspace."""
        with self._lock:
            self._workspace.users.setdefault(user, user.lower() or "nobody")

    def _record(self, method: str, args: dict[str, Any], answered: Answer) -> None:
        super()._record(method, args, answered)
        if answered.status != 200 or answered.body.get("ok") is False:
            error = str(answered.body.get("error", ""))
            self.refused.append((method, answered.status, error, args))


class Caught(logging.Handler):
    """What the bot logged at ERROR (and bolt's 'did not call ack()' warning)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.retried = 0  # connection errors slack_sdk's handler retried (counted, not failed)

    def emit(self, record: logging.LogRecord) -> None:
        said = record.getMessage()
        if said.startswith(RETRIED):
            self.retried += 1
            return
        unacked = "didn't call ack()" in said
        if unacked or (record.levelno >= logging.ERROR and not said.startswith(UNROUTED)):
            text = f"{record.name}: {said}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({record.exc_info[0].__name__}: {record.exc_info[1]})"  # type: ignore[union-attr]
            self.lines.append(text)


@dataclass
class Report:
    seed: int
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    forgeries: Counter[str] = field(default_factory=Counter)
    over_socket: int = 0
    acks: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    filed: int = 0
    xapi_calls: int = 0
    retried: int = 0
    seconds: float = 0.0

    def fail(self, what: str) -> None:
        self.failures.append(what)

    @property
    def payloads(self) -> int:
        return sum(n for kind, n in self.sent.items() if kind != "rejected")

    def lines(self) -> list[str]:
        acks = sorted(self.acks) or [0.0]

        def pct(p: float) -> float:
            return acks[min(len(acks) - 1, int(p * len(acks)))] * 1000

        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(self.sent.items()) if k != "rejected")
        forged = ", ".join(f"{k} {n}" for k, n in sorted(self.forgeries.items()))
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(self.statuses.items()))
        return [
            f"seed {self.seed}",
            f"{self.payloads:,} signed payloads ({kinds})",
            f"{self.sent['rejected']:,} forged, replayed or truncated ({forged})",
            f"{self.over_socket:,} of them over a socket to waitress, the rest in-process",
            f"HTTP statuses: {statuses}",
            f"ack p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, max {acks[-1] * 1000:.0f} ms",
            f"{self.filed} requests filed, {self.xapi_calls:,} XAPI calls, "
            f"{self.retried} Slack calls retried after a connection error",
            f"{self.seconds:.0f} s ({(self.payloads + self.sent['rejected']) / max(self.seconds, 1e-9):.0f} inputs/s)",  # noqa: E501
            f"failures: {len(self.failures)}",
            *(f"  {f}" for f in self.failures[:30]),
        ]


def run(
    count: int,
    rejected: int,
    seed: int,
    threads: int = 8,
    chunk: int = 500,
    on_start: Callable[[Service], None] | None = None,
    progress: bool = False,
) -> Report:
    """Send `count` signed payloads and `rejected` spoiled ones; judge; the figures.
    `on_start` may alter the running bot first (the tests plant failures with it)."""
    report = Report(seed)
    caught = Caught()
    root = logging.getLogger()
    root.addHandler(caught)
    level = root.level
    root.setLevel(min(level, logging.WARNING) or logging.WARNING)
    excepthook = threading.excepthook
    threading.excepthook = lambda args: caught.lines.append(
        f"thread {args.thread}: {args.exc_value!r}"
    )
    try:
        with _bot() as (pool, slack, service, stop):
            if on_start:
                on_start(service)
            names = _names(pool, slack, service)
            inputs = Inputs(seed, names, slack.response_url, slack.trigger_id, slack.meet)
            xapi_before = pool.sim.calls.total
            started = time.monotonic()
            _campaign(inputs, count, rejected, service, report, threads, chunk, progress)
            _drain(service.front.desk)
            report.xapi_calls = pool.sim.calls.total - xapi_before
            stop()  # the desk's last answers, then what is queued for Slack
            report.seconds = time.monotonic() - started
            _judge_slack(slack, report)
            _judge_store(service, inputs.hostile, report)
    finally:
        root.removeHandler(caught)
        root.setLevel(level)
        threading.excepthook = excepthook
    report.failures.extend(f"logged: {line}" for line in caught.lines)
    report.retried = caught.retried
    return report


@contextlib.contextmanager
def _bot() -> Iterator[tuple[Pool, JudgingDouble, Service, Callable[[], None]]]:
    """The whole bot on the demo pool, one channel enabled, the forger an approver."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(TemporaryDirectory(prefix="fuzz-")))
        pool = next(stack.enter_context(contextlib.closing(demo_pool())))
        stack.callback(pool.close)  # closing the generator skips its own logout
        slack = JudgingDouble(
            users={**USERS, FORGER: "mallory"},
            usergroups={"S1": ["ULEAD2"]},
            channels={CHANNEL: "ops", OTHER_CHANNEL: "elsewhere"},
        )
        stack.enter_context(slack)
        settings = settings_for(
            pool.server.url,
            slack,
            tmp / "bot.db",
            bot_approvers=[APPROVERS[0], "S1", FORGER],
            bot_requesters=[*REQUESTERS, FORGER],
            bot_allowed_channels=[CHANNEL],
        )
        stack.enter_context(Ticker(pool.clock, step=0.5))
        service = start(settings, "127.0.0.1", pool.clock, Outbox(0.2, retry_seconds=0.1), 0.01)
        stopped = threading.Event()

        def stop() -> None:  # Service.stop() is for once
            if not stopped.is_set():
                stopped.set()
                service.stop()

        stack.callback(stop)
        yield pool, slack, service, stop


def _names(pool: Pool, slack: JudgingDouble, service: Service) -> Names:
    """The pool's names (one VM renamed to break limits), and three modals opened by U1."""
    x = pool.x
    x.VM.set_name_label(pool.ref("VM", "legacy01"), ODD_VM)
    records = [x.VM.get_record(v) for v in x.VM.get_all()]
    vms = [r for r in records if not (r["is_a_template"] or r["is_control_domain"])]
    vms = [r for r in vms if not r["is_a_snapshot"]]
    hosts = sorted(x.host.get_name_label(h) for h in x.host.get_all())
    srs = sorted(x.SR.get_name_label(s) for s in x.SR.get_all())
    events = f"{service.web.url}/slack/events"
    for n in range(3):
        body = (
            f"token=t&team_id=T1&channel_id={CHANNEL}&user_id=U1&command=%2Fmigrate&text="
            f"&response_url={slack.response_url(f'open-{n}')}&trigger_id={slack.trigger_id()}"
        ).encode()
        post(events, body, signed_headers(SECRET, body))
    views = tuple(sorted(slack.views))
    return Names(
        vms=tuple(sorted(r["name_label"] for r in vms)),
        hosts=tuple(hosts),
        srs=tuple(srs),
        vm_uuids=tuple(sorted(r["uuid"] for r in vms)),
        views=views,
    )


def _campaign(
    inputs: Inputs,
    count: int,
    rejected: int,
    service: Service,
    report: Report,
    threads: int,
    chunk: int,
    progress: bool,
) -> None:
    app = wsgi_app(service.core.readiness, service.front.app)
    events = f"{service.web.url}/slack/events"
    every = count // rejected if rejected else 0
    sent_rejected = 0
    with ThreadPoolExecutor(threads, thread_name_prefix="fuzz") as senders:
        done = 0
        while done < count or sent_rejected < rejected:
            batch: list[Input] = []
            while len(batch) < chunk and (done < count or sent_rejected < rejected):
                if sent_rejected < rejected and (done >= count or (every and done % every == 0)):
                    batch.append(inputs.rejected())
                    sent_rejected += 1
                if done < count:
                    batch.append(inputs.next())
                    done += 1
            for each, (status, answer, took) in zip(
                batch, senders.map(lambda i: _send(app, events, i), batch), strict=True
            ):
                _judge_ack(each, status, answer, took, report)
            _drain(service.front.desk)
            if progress and done // 10_000 != (done - len(batch)) // 10_000:
                print(f"  {done:,} sent, {len(report.failures)} failures so far", flush=True)


def _send(app: Any, events: str, sent: Input) -> tuple[int, bytes, float]:
    """Sign (or spoil) and deliver one input; the status, the body and how long it took."""
    body = sent.body
    headers = _headers(sent)
    if sent.cut is not None:
        body = body[: sent.cut]
    began = time.monotonic()
    if sent.over_socket:
        status, _, answer = post(events, body, headers)
    else:
        status, answer = _dispatch(app, body, headers)
    return status, answer, time.monotonic() - began


def _headers(sent: Input) -> dict[str, str]:
    now = int(time.time())
    forgery = sent.forgery
    if forgery == "garbage":  # not UTF-8: slack_sdk's signer would not take it
        mac = hmac.new(b"not-" + SECRET.encode(), b"v0:%d:%b" % (now, sent.body), "sha256")
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": "v0=" + mac.hexdigest(),
        }
    if forgery == "wrong_secret":
        return signed_headers("not-" + SECRET, sent.body)
    if forgery == "replayed":
        return signed_headers(SECRET, sent.body, now - 301 - sent.index % 86400)
    if forgery == "future":
        return signed_headers(SECRET, sent.body, now + 301 + sent.index % 86400)
    headers = signed_headers(SECRET, sent.body)
    signature = headers["X-Slack-Signature"]
    if forgery == "flipped":
        at = 3 + sent.index % (len(signature) - 3)
        flipped = "0" if signature[at] != "0" else "1"
        headers["X-Slack-Signature"] = signature[:at] + flipped + signature[at + 1 :]
    elif forgery == "no_signature":
        del headers["X-Slack-Signature"]
    elif forgery == "no_timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif forgery == "other_version":
        headers["X-Slack-Signature"] = "v1=" + signature[3:]
    return headers


def _dispatch(app: Any, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """What waitress does with a request: a WSGI environ, the app called, the answer read."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "0",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
    for name, value in headers.items():
        if name != "Content-Type":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    said: list[str] = []

    def start_response(status: str, _headers: list[tuple[str, str]], *_: Any) -> None:
        said.append(status)

    try:
        answer = b"".join(app(environ, start_response))
    except Exception as error:  # waitress would answer 500
        return 500, repr(error).encode()
    return int(said[0].split()[0]), answer


def _drain(desk: Desk, timeout: float = 60.0) -> None:
    """Wait until the desk has worked through everything handed to it: one barrier task
    per worker (the queue is first in, first out, so all of them run only after the rest)."""
    workers = desk._pool._max_workers  # the desk does not say its size
    barrier = threading.Barrier(workers + 1)
    for _ in range(workers):
        desk.in_background(lambda _reply: barrier.wait(timeout), reply=lambda _m: None)
    barrier.wait(timeout)


def _judge_ack(sent: Input, status: int, answer: bytes, took: float, report: Report) -> None:
    report.sent[sent.kind] += 1
    report.statuses[status] += 1
    report.over_socket += sent.over_socket
    report.acks.append(took)
    where = f"input {sent.index} ({sent.kind}{'/' + sent.forgery if sent.forgery else ''})"
    if sent.forgery:
        report.forgeries[sent.forgery] += 1
        if status not in (400, 401):  # 400: a body no Slack request has (not UTF-8, cut JSON)
            report.fail(f"{where}: a spoiled request answered {status}, not 400/401")
        return
    if took > ACK_DEADLINE:
        report.fail(f"{where}: acked after {took:.1f} s")
    if status >= 500 or status == 401:
        report.fail(f"{where}: HTTP {status} {answer[:200]!r}")
        return
    if status == 404 and not sent.routed:
        return
    if status != 200:
        report.fail(f"{where}: HTTP {status} {answer[:200]!r}")
        return
    if SOMETHING_WRONG.encode() in answer:
        report.fail(f"{where}: the ack says {SOMETHING_WRONG!r}")
    if answer:
        try:
            said = json.loads(answer)
        except ValueError:
            report.fail(f"{where}: an ack that is not JSON: {answer[:200]!r}")
            return
        for problem in _message_problems(said):
            report.fail(f"{where}: ack {problem}")


def _message_problems(said: object) -> list[str]:
    """What Slack would refuse in an ack or a response_url answer (the double does not judge
    these): Block Kit limits, text length, an options list, a field error."""
    if not isinstance(said, dict):
        return [f"is not an object: {said!r:.100}"]
    found = problems(said["blocks"], 50) if "blocks" in said else []
    if len(str(said.get("text", ""))) > 40_000:
        found.append("text over 40,000 characters")
    if "options" in said:
        menu = {"type": "static_select", "options": said["options"]}
        found += problems([{"type": "actions", "elements": [menu]}], 50, "/options")
    if said.get("response_action") == "errors":
        errors = said.get("errors")
        if not errors or not all(isinstance(e, str) and e for e in errors.values()):
            found.append(f"field errors without words: {errors!r:.100}")
    shows = "blocks" in said or "text" in said or "options" in said
    if said and not shows and said.get("response_action") is None:
        found.append(f"says nothing Slack shows: {said!r:.100}")
    return found


def _judge_slack(slack: JudgingDouble, report: Report) -> None:
    for method, status, error, args in slack.refused:
        if (method, error) not in EXPECTED_REFUSALS:
            shown = {k: v for k, v in args.items() if k in ("channel", "key", "user")}
            report.fail(f"Slack refused {method} ({status} {error}) {shown}")
    for response in slack.responses:
        where = f"response_url {response.key}"
        if response.key.startswith("forged-"):
            report.fail(f"{where}: a forged request was answered")
        if SOMETHING_WRONG in json.dumps(response.body):
            report.fail(f"{where}: {SOMETHING_WRONG!r}")
        report.failures.extend(f"{where}: {p}" for p in _message_problems(response.body))
    for ephemeral in slack.ephemerals():
        if ephemeral.user == FORGER or SOMETHING_WRONG in ephemeral.text + str(ephemeral.blocks):
            report.fail(f"ephemeral to {ephemeral.user}: {ephemeral.text[:100]!r}")


def _judge_store(service: Service, hostile: set[str], report: Report) -> None:
    """Nothing filed or done by someone who may not, nor from a channel not enabled."""
    store = service.core.store
    requests = store.open_requests() + store.recent_finished(1_000_000)
    report.filed = len(requests)
    for req in requests:
        if req.requester not in REQUESTERS or req.channel not in (CHANNEL, None):
            report.fail(f"request #{req.id} filed by {req.requester!r} in {req.channel!r}")
        if req.approved_by is not None and req.approved_by not in APPROVERS:
            report.fail(f"request #{req.id} approved by {req.approved_by!r}")
        if req.state in (State.REJECTED, State.CANCELLED) and req.ended_by in hostile | {FORGER}:
            report.fail(f"request #{req.id} {req.state} by {req.ended_by!r}")
    for event in store.audit_events():
        if event.actor in hostile | {FORGER} and event.action != "refused":
            report.fail(f"audit #{event.id}: {event.actor!r} {event.action} #{event.request_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=100_000)
    parser.add_argument("--rejected", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    print(f"fuzzing with seed {seed} (rerun: make fuzz SEED={seed})", flush=True)
    report = run(args.count, args.rejected, seed, args.threads, progress=True)
    print("\n".join(report.lines()))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
