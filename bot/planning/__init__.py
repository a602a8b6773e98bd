"""Text -> command -> names -> plan -> checklist; pure except the planner.
May import the shared ground and xen/ (the planner only); never engine, store or slack.
"""
