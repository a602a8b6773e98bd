"""migrate-bot's subcommands: run, check, check-config, audit, demo, and terminal text.
May import anything in bot/: it sits on top.
"""
