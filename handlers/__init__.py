"""Thin Slack listeners: ack, parse, authorise, delegate to `bot`."""
