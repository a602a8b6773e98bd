"""Text -> command -> names -> plan -> checklist, pure but for the planner's fact-gathering.
May import the shared ground and xen/ (the planner only); never engine, store or slack.
"""
