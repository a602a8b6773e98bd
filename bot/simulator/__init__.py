"""An XAPI pool simulator over XML-RPC, driven by the unmodified `XenAPI` client.

Ships with the package for `migrate-bot demo` and tests; the bot's own code never
imports it. See `README.md` in this folder for what it simulates and how it simplifies.
"""

from bot.simulator.pool import Simulator
from bot.simulator.scenario import simulator
from bot.simulator.server import SimulatorServer

__all__ = ["Simulator", "SimulatorServer", "simulator"]
