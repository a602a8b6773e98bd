"""Errors from the pool, translated at the edge (their place in the tree: bot/errors.py).

XenError                 anything that went wrong talking to XAPI
├── XapiFailure          xapi answered with a failure: `code`, `params` (ErrorDescription)
└── XapiUnavailable      no answer: refused, reset, timed out, HTTP error, agent restarting,
                         a dead master that no member replaced (also a PoolUnreachable)
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.errors import BotError, PoolUnreachable


class XenError(BotError):
    """Base of the errors bot/xen raises."""


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
