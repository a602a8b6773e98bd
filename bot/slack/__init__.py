"""Slack: the bolt app, the desk handlers delegate to, access, notify, outbox, Block Kit.
May import the shared ground, planning, engine and store; never xen/, handlers/ or cli/.
"""
