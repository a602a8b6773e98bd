"""Slack: the bolt app, the desk handlers delegate to, access, notify, outbox, Block Kit.
May import the ground, planning, engine, store and messages; not xen/, handlers/ or cli/.
"""
