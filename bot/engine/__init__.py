"""The state machine at work: requests, steps, stuck, deadlines; its events; the ticker.
May import the shared ground, planning, store, xen and messages; never slack/ or cli/.
"""
