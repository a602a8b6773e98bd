"""Slack: the bolt app, the desk handlers delegate to, access, notify, outbox, Block Kit.
May import bot's shared ground, planning, engine (events), store; never handlers/ or xen/.
"""
