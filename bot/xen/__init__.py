"""The only package that imports XenAPI: sessions, facts, operations, task watching.

Everything above it sees our typed records (`bot.models`) and our errors
(`bot.errors`: XenError and its kinds), never a raw XAPI dict or a `XenAPI.Failure`.
"""
