"""The Home tab: Slack tells the bot someone opened it; the desk's threads publish it."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.slack.desk import Desk


def register(app: App, desk: Desk) -> None:
    @app.event("app_home_opened")  # bolt acknowledges events itself
    def opened(event: dict[str, Any]) -> None:
        if event.get("tab") != "home":  # the Messages tab: nothing to publish
            return
        user = str(event["user"])
        desk.in_background(desk.home.opened, user, reply=desk.home.replier(user))
