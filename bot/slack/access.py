"""Who may file a request and who may press which button.

`refusal` is the rule (pure); `Access` adds what the rule needs from Slack: membership of
the user groups named in `BOT_APPROVERS` / `BOT_REQUESTERS`, read through an injected
lookup (`usergroups.users.list`, Tier 2) and cached, so a burst of presses costs Slack
one call per group every few minutes.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.slack.actions import Action

# Who may press each button; an action in neither is refused to everybody. Approvers only:
# irreversible, or done with pool-admin rights the requester may not have (the words say
# what a refusal withholds).
APPROVERS_ONLY: dict[Action, str] = {
    Action.APPROVE: "approve requests",
    Action.REJECT: "reject requests",
    Action.RESTART_TOOLSTACK: "restart a toolstack",
    Action.REENABLE_HOST: "re-enable a host",
    Action.FIX_DELETE_SNAPSHOTS: "delete snapshots",
}
REQUESTER_OR_APPROVER = frozenset(
    {
        Action.START,
        Action.CANCEL,
        Action.RECHECK,
        Action.FIX_SWITCH_TO_OFFLINE,
        Action.FIX_EXCLUDE_FROM_BACKUP,
        Action.FIX_HARD_SHUTDOWN,
        Action.RETRY_OFFLINE,
        Action.REFILE,
    }
)
GROUP_CACHE_SECONDS = 300.0


def refusal(
    action: Action,
    *,
    user: str,
    requester: str,
    approver: bool,
    allow_self_approval: bool,
) -> str | None:
    """Why `user` may not press `action` on a request filed by `requester` (None: allowed)."""
    if action in APPROVERS_ONLY:
        if not approver:
            return f"Only approvers may {APPROVERS_ONLY[action]}."
        if action == Action.APPROVE and user == requester and not allow_self_approval:
            return "You filed this request; another approver must approve it."
        return None
    if action in REQUESTER_OR_APPROVER:
        if user == requester or approver:
            return None
        return "Only the requester or an approver may do that."
    return "Unknown action."


@dataclass(frozen=True)
class PoolRules:
    """A pool's own lists (from its entry in the pools file); None: the global setting."""

    approvers: tuple[str, ...] | None = None
    requesters: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None


@dataclass
class Access:
    """The configured ids (users `U…`/`W…`, groups `S…`) and the group lookup."""

    approvers: list[str]
    requesters: list[str]
    allowed_channels: list[str]
    allow_self_approval: bool
    members: Callable[[str], Iterable[str]]  # group id -> user ids
    clock: Clock
    pools: Mapping[str, PoolRules] = field(default_factory=dict)  # every pool served
    _cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def in_pool(self, pool: str) -> Access:
        """The rules in one pool: its own lists where its entry gives them (one group cache)."""
        rules = self.pools.get(pool, PoolRules())

        def chosen(own: tuple[str, ...] | None, default: list[str]) -> list[str]:
            return default if own is None else list(own)

        return dataclasses.replace(
            self,
            approvers=chosen(rules.approvers, self.approvers),
            requesters=chosen(rules.requesters, self.requesters),
            allowed_channels=chosen(rules.channels, self.allowed_channels),
        )

    def usable_pools(self, user: str, channel: str) -> list[str]:
        """The pools `user` may file migrations in from `channel`, in the configured order."""
        return [
            pool
            for pool in self.pools
            if (rules := self.in_pool(pool)).channel_allowed(channel) and rules.may_request(user)
        ]

    def channel_enabled(self, channel: str) -> bool:
        """Some pool takes requests from `channel` (the global list, or a pool's own)."""
        return any(self.in_pool(pool).channel_allowed(channel) for pool in self.pools)

    def is_approver(self, user: str) -> bool:
        return self._listed(user, self.approvers)

    def may_request(self, user: str) -> bool:
        return not self.requesters or self._listed(user, self.requesters)

    def channel_allowed(self, channel: str) -> bool:
        return not self.allowed_channels or channel in self.allowed_channels

    def refusal(self, action: Action, user: str, requester: str) -> str | None:
        return refusal(
            action,
            user=user,
            requester=requester,
            approver=self.is_approver(user),
            allow_self_approval=self.allow_self_approval,
        )

    def mention(self) -> str:
        """Who the request message pings: the groups and users that approve."""
        return " ".join(
            f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in self.approvers
        )

    def _listed(self, user: str, ids: list[str]) -> bool:
        if user in ids:
            return True
        return any(user in self._group(i) for i in ids if i.startswith("S"))

    def _group(self, group: str) -> frozenset[str]:
        now = self.clock.now()
        with self._lock:
            cached = self._cache.get(group)
            if cached and now - cached[0] < GROUP_CACHE_SECONDS:
                return cached[1]
        users = frozenset(self.members(group))
        with self._lock:
            self._cache[group] = (now, users)
        return users
