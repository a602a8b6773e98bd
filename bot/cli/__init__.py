"""migrate-bot's subcommands (run, check, check-config, audit, demo) and terminal text.
Sits on top: may import any room of bot/ (the demo drives the simulator and the outbox).
"""
