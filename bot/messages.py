"""The sentences people read about a request: outcomes, refusals, stuck notices, expiry.

Pure functions of what happened, in one place, so the words change in one file (what xapi's
errors mean is `bot.planning.explain`). People appear as their Slack user ids; the Slack
front turns an id after "by " (or at the start) into a mention.
"""

from __future__ import annotations

from bot.errors import XapiFailure
from bot.planning.explain import explain
from bot.planning.units import format_duration
from bot.states import State
from bot.store.records import Request

OUT_OF_DATE = "This message is out of date: the request changed since it was shown."


def settled(req: Request) -> str:
    """What a press meant for a pending request meets once it was decided: who did what,
    whichever way a race between two presses went."""
    if req.approved_by:
        return f"Already approved by {req.approved_by}."
    if req.outcome:
        return f"Already {req.outcome}."
    return f"#{req.id} is {req.state}; it no longer waits for a decision."


def queued(state: State) -> str:
    return "scheduled for its window" if state == State.SCHEDULED else "queued"


def snapshots_out_of_date() -> str:
    return f"{OUT_OF_DATE} Its snapshots changed since; nothing was deleted."


def deletion_report(
    actor: str, vm: str, deleted: list[str], named: list[str], failure: str = ""
) -> str:
    """What the thread says after Delete N snapshots, a failure half-way included."""
    if not failure:
        return f"{actor} deleted {len(deleted)} snapshot(s) of {vm} and their disks"
    done = ", ".join(deleted) or "none"
    return (
        f"{actor} asked to delete {len(named)} snapshot(s) of {vm}: deleted {done}; "
        f"stopped at {failure}. The rest were not touched; Re-check shows what is left."
    )


def excluded(actor: str, vm: str, tag: str) -> str:
    return f"{actor} excluded {vm} from backups (tag {tag})"


def untag_failed(vm: str, tag: str, error: object) -> str:
    return (
        f"Could not remove the backup-exclusion tag {tag} from {vm} ({error}); remove it by "
        "hand so its backups resume."
    )


def clear_first(req: Request) -> str:
    host = req.plan.get("stuck_host_name") or "its host"
    return (
        f"{req.vm_name} still shows the failed migration (running (vm_migrate)): clear it "
        f"first with Restart toolstack on {host} in #{req.id}'s thread, then retry."
    )


def succeeded(req: Request, seconds: float, downtime: float) -> str:
    """'vm01 is running on host3, disks on nfs1, 6 min 12 s (downtime 4 min 3 s)'."""
    srs = sorted({d["to"] for d in req.plan["summary"]["disks"]})
    where = (
        f"is running on {req.dest_host_name}"
        if req.intent.was_running
        else f"stays halted; its next start lands on {req.dest_host_name}"
    )
    text = (
        f"{req.vm_name} {where}, disks on {', '.join(srs) or 'their SRs'}, "
        f"{format_duration(seconds)}"
    )
    if downtime:
        text += f" (downtime {format_duration(downtime)})"
    if req.tags_added:
        text += "; backups resume (the bot removes its backup-exclusion tag)"
    return text


def cancelled_by_xapi(step: str, vm: str, restarted: str = "") -> str:
    if restarted:
        return f"xapi cancelled the {step} step. {restarted}"
    return f"xapi cancelled the {step} step; {vm} is where it was."


def restarted(vm: str, host: str, where: str) -> str:
    return f"{vm} was started again on {host}, {where}."


def down(vm: str, why: str) -> str:
    return (
        f"{vm} is DOWN: it was shut down for the move and could not be started again "
        f"({why}). Start it by hand once that is fixed."
    )


def stuck(vm: str, holders: str) -> str:
    return (
        f"{vm} still shows a migration in progress (running (vm_migrate)) on {holders} after "
        "its run ended."
    )


def restart_offer(text: str, host: str, why: str) -> str:
    return f"{text} Restarting the toolstack on {host} clears it: {why}."


def reboot_advice(text: str, why: str, vm: str) -> str:
    return (
        f"{text} {why.capitalize()}: the guide's last step is to reboot the host {vm} runs "
        "on (the bot never reboots hosts itself), then check it."
    )


def toolstack_cleared(host: str, vm: str) -> str:
    return f"The toolstack on {host} restarted and {vm} is clear."


def toolstack_not_enough(host: str, vm: str) -> str:
    return f"The toolstack on {host} restarted but {vm} still shows the migration."


def agent_back(took: float, addresses: list[str]) -> str:
    return f"guest agent back after {format_duration(took)}, {', '.join(addresses)} as before"


def agent_changed(vm: str, host: str, took: float, before: list[str], after: list[str]) -> str:
    return (
        f"{vm}'s guest agent is back on {host} after {format_duration(took)}, but its "
        f"addresses changed: {', '.join(before) or 'none'} -> {', '.join(after) or 'none'}; "
        "check its network there."
    )


def agent_silent(vm: str, host: str, waited: float) -> str:
    return (
        f"{vm}'s guest agent has not reported on {host} {format_duration(waited)} after the "
        "move; the move itself is verified, but check the VM's console."
    )


def expired(waited: float) -> str:
    return (
        f"expired: nobody approved it within {format_duration(waited)}; file it again if "
        "still needed"
    )


def missed(late: float, grace: float) -> str:
    return (
        f"missed: its window passed {format_duration(late)} ago while the bot was down (more "
        f"than the {format_duration(grace)} grace); file it again for a new window"
    )


# -- refusals: what a press or a command meets when it cannot act ------------------------
def now_blocked(request_id: int) -> str:
    return f"#{request_id} cannot start: the checklist now has a blocker"


def nothing_to_cancel(req: Request) -> str:
    return f"#{req.id} is {req.state}; there is nothing to cancel"


def between_steps(request_id: int) -> str:
    return f"#{request_id} is between steps; press Cancel again in a moment."


def cancel_asked(request_id: int) -> str:
    return f"Asked xapi to cancel #{request_id}'s current step; the thread will say if it did."


def fixes_only_pending(req: Request) -> str:
    return f"#{req.id} is {req.state}; the checklist can change only before approval"


def only_failed_live(req: Request) -> str:
    return f"#{req.id} is {req.state}; only a failed live migration is retried offline"


def nothing_to_recheck(req: Request) -> str:
    return f"#{req.id} is {req.state}; there is nothing to re-check"


def unparsable(request_id: int) -> str:
    return f"#{request_id}'s command no longer parses; file it again by hand"


def no_request(request_id: int) -> str:
    return f"there is no request #{request_id}"


def no_toolstack(req: Request) -> str:
    return f"#{req.id} is {req.state}; there is no toolstack to restart"


def ha_on() -> str:
    return (
        "HA is enabled on this pool: a toolstack restart would fence the host. Disable HA "
        "first, or restart the toolstack by hand."
    )


def run_in_the_way(request_id: int, where: str, host: str) -> str:
    return (
        f"#{request_id} is running {where}; restarting the toolstack on {host} would abort "
        "it. Try again when it has finished."
    )


def agent_not_back() -> str:
    return "the toolstack did not come back within 10 minutes; check the host"


def host_gone() -> str:
    return "that host is no longer in the pool; press Re-check"


# -- what a press changed (a line in the thread) ------------------------------------------
def fixed(actor: str, request_id: int, fix: str) -> str:
    return {
        "switch_offline": f"{actor} switched #{request_id} to an offline migration",
        "hard_shutdown": f"{actor} chose a hard shutdown for #{request_id}",
    }.get(fix, f"{actor} re-ran the checklist")


def reason(error: Exception) -> str:
    """An error in a sentence: xapi's failures in plain words, ours as they are."""
    if isinstance(error, XapiFailure):
        return explain(error.description).sentence.rstrip(".")
    return str(error)


# -- batches: many moves under one approval ------------------------------------------------
def host_disabled(host: str) -> str:
    return f"{host} is disabled: nothing new starts or lands on it until it is re-enabled"


def host_not_disabled(host: str, why: str) -> str:
    return f"{host} could not be disabled ({why}): nothing was moved. Fix that, then file it again."


def host_disabled_again(host: str) -> str:
    return f"{host} was enabled again (a toolstack restart re-enables a host); disabled it again"


def batch_started(moves: int, slots: int) -> str:
    return f"started: {moves} move(s), {slots} at a time"


def with_batch(batch_id: int, actor: str) -> str:
    return f"cancelled with batch #{batch_id} by {actor}"


def batch_ended_without_it(batch_id: int, how: str) -> str:
    return f"not run: batch #{batch_id} {how}"


def batch_cancelled(batch_id: int, stopped: int, running: list[int]) -> str:
    text = f"#{batch_id}: {stopped} move(s) that had not started will not run"
    if running:
        ids = ", ".join(f"#{n}" for n in running)
        text += (
            f"; {len(running)} running ({ids}) will finish (Cancel again to cancel them too, "
            "or /migrate cancel #id for one)"
        )
    return text + "."


def batch_outcome(
    moved: int,
    total: int,
    failed: list[str],
    stuck: list[str],
    stopped: list[str],
    unrun: int,
    host: str | None,
    stayed: int = 0,
) -> str:
    """'14 of 15 moved; web03 failed: …. host1 stays disabled: …'; `stopped`: the VMs
    whose running move was cancelled; `stayed`: VMs the plan left on the emptied host."""
    parts = [
        "Nothing to move"
        if total == 0
        else f"All {total} moved"
        if moved == total
        else f"{moved} of {total} moved"
    ]
    if failed:
        shown = "; ".join(failed[:3]) + (
            f"; and {len(failed) - 3} more failed" if len(failed) > 3 else ""
        )
        parts.append(shown)
    if stuck:
        parts.append(f"{', '.join(stuck)} stuck (see the thread: a toolstack restart clears it)")
    if stopped:
        parts.append(f"{', '.join(stopped)} cancelled while moving")
    if unrun:
        parts.append(f"{unrun} did not run")
    text = "; ".join(parts) + "."
    if host:
        left = "is empty and " if moved == total and not stayed else ""
        text += f" {host} {left}stays disabled: Re-enable it when its maintenance is done."
    return text


def one_vm_at_a_time(request_id: int) -> str:
    return f"#{request_id} is a batch: retry or re-check one VM with the buttons of its line"


def excluded_many(actor: str, vms: list[str], tag: str) -> str:
    return f"{actor} excluded {len(vms)} VM(s) from backups (tag {tag}): {', '.join(vms)}"


def still_evacuating(request_id: int, host: str) -> str:
    return (
        f"#{request_id} is still moving VMs off {host}; enabling it now would let VMs land "
        "there again. Wait for it to end, or cancel it first."
    )


def already_enabled(host: str) -> str:
    return f"{host} is enabled already."


def host_enabled(host: str, actor: str) -> str:
    return f"{host} re-enabled by {actor}: VMs may start and land on it again"
