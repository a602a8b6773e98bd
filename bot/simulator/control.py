"""The fault knobs by name, for the control endpoint and the CLI.

`control(sim, {"fault": "fail_next_migration", "vm": "vm01", "at": 0.4})` resolves names to
refs and calls the same methods tests call in-process.
"""

from __future__ import annotations

from typing import Any

from bot.simulator.pool import Simulator
from bot.simulator.services import move_master


def _ref(sim: Simulator, cls: str, name: str | None) -> str | None:
    if name is None:
        return None
    if sim.db.exists(cls, name):
        return name
    found = (
        sim.db.find(cls, name_label=name, is_a_template=False)
        if cls == "VM"
        else (sim.db.find(cls, name_label=name))
    )
    if not found:
        raise KeyError(f"no {cls} named {name!r}")
    return found[0]


def control(sim: Simulator, request: dict[str, Any]) -> dict[str, Any]:
    """Apply one fault; answer what was done."""
    fault = request.get("fault")
    with sim.db.lock:
        faults = sim.faults
        if fault == "fail_next_migration":
            faults.fail_next_migration(
                float(request.get("at", 0.5)),
                request.get("error"),
                _ref(sim, "VM", request.get("vm")),
            )
        elif fault == "stick_next_migration":
            faults.stick_next_migration(
                _ref(sim, "VM", request.get("vm")),
                float(request.get("at", 1.0)),
                request.get("error"),
            )
        elif fault == "fail_starts":
            faults.fail_starts(
                _ref(sim, "VM", request["vm"]) or "",
                int(request.get("times", 1)),
                request.get("error"),
            )
        elif fault == "set_load":
            sim.load[_ref(sim, "VM", request["vm"]) or ""] = float(request["cpu"])
        elif fault == "refuse_clean_shutdown":
            faults.refuse_clean_shutdown.add(_ref(sim, "VM", request["vm"]) or "")
        elif fault == "expire_sessions":
            sim.expire_sessions()
        elif fault == "move_master":
            move_master(sim, _ref(sim, "host", request["host"]) or "")
        elif fault in ("host_down", "host_up"):
            host = sim.db.get("host", _ref(sim, "host", request["host"]))
            faults.set_host_down(host["address"], fault == "host_down")
        elif fault == "drop_connections":
            faults.drop_mode = request.get("mode", "reset")
            faults.drop_until = sim.now() + float(request["seconds"])
        elif fault == "latency":
            faults.latency_s = float(request["seconds"])
        elif fault == "ha_plan_breaks":
            faults.ha_plan_breaks = bool(request.get("on", True))
        elif fault == "reset_calls":
            sim.calls.reset()
        else:
            raise ValueError(f"unknown fault {fault!r}")
    return {"ok": True, "fault": fault}
