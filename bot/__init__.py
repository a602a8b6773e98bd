"""migrate-bot: move Xen VMs from Slack with a checklist, approval and an audit trail.

Top level: the shared ground (settings, clock, logs, models, states, errors), the sentences
people read (messages), metrics, the WSGI app (web) and the composition root (wiring);
the rooms below import the ground, never wiring.
"""
