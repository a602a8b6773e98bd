"""Every error the bot raises on purpose, as one tree (the leaves live beside their code).

    BotError
    ├── UserError                 someone must change or retry something; str() is for them
    │   ├── PoolUnreachable       XAPI did not answer: worth retrying, unlike the others
    │   │   └── XapiUnavailable   refused, reset, timed out, agent restarting, dead master
    │   ├── ResolveError          bot.planning.resolve: a name did not pick one object
    │   │   ├── NotFound          ... nothing matched; `suggestions` ("did you mean")
    │   │   └── Ambiguous         ... several did; `choices` to retype with
    │   ├── PlanError             bot.planning.plan: no plan fits; `choices` per disk
    │   ├── VMBusy                bot.store.records: the VM has an active request already
    │   └── SinceError            bot.cli.audit: a --since the command cannot read
    ├── XenError                  talking to XAPI went wrong (raised in bot/xen)
    │   ├── XapiFailure           xapi answered with a failure: `code`, `params`
    │   └── XapiUnavailable       (also a PoolUnreachable)
    ├── SettingsError             bot.settings: a missing or malformed setting, one line
    │   └── AlreadyRunning        bot.store.alone: another bot runs on this SQLite file
    ├── IllegalTransition         bot.states: a move the state table forbids (a bug)
    └── RunInterrupted            bot.engine.runner: how a run's step ends early
        ├── StepFailed            ... a step failed (xapi's error, or the bot's in its shape)
        └── Wedged                ... a leftover operation blocks the VM (not a failure)

A usage error of `/migrate` is not an exception: the parser returns it as a value
(`bot.planning.command.BadCommand`), so every caller must handle it. Sentences people read
are built in `bot.messages` and `bot.planning.explain`; an error's `str()` is one of them.
"""

from __future__ import annotations

from collections.abc import Sequence


class BotError(Exception):
    """Base of the errors the bot raises on purpose."""


class UserError(BotError):
    """Something the user must change or retry; the message is for them (no traceback).

    `people`: the Slack user ids the message names, which Slack shows as mentions.
    """

    def __init__(self, message: str = "", people: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.people = people


class PoolUnreachable(UserError):
    """XAPI did not answer: worth retrying, unlike the other user errors."""


class XenError(BotError):
    """Talking to XAPI went wrong: raised by bot/xen, translated at that edge."""


class XapiFailure(XenError):
    def __init__(self, description: Sequence[object]) -> None:
        self.description = [str(part) for part in description] or ["INTERNAL_ERROR"]
        super().__init__(" ".join(self.description))

    @property
    def code(self) -> str:
        return self.description[0]

    @property
    def params(self) -> list[str]:
        return self.description[1:]


class XapiUnavailable(XenError, PoolUnreachable):
    """XAPI did not answer; the cause is in the message (no secrets)."""
