"""`migrate-bot demo` is the journey a newcomer sees, and CI's smoke test of the whole bot."""

from __future__ import annotations

import io
from pathlib import Path

from bot.cli import demo


def test_every_scene_goes_as_scripted(tmp_path: Path) -> None:
    """All five scenes pass, the channel reads as people see it (names, not ids), and the
    Home tab shows how the requests ended."""
    out = io.StringIO()
    page = tmp_path / "ops.html"
    assert demo.run(out, html=page) == 0, out.getvalue()[-2000:]
    text = out.getvalue()
    assert "did you mean vm01" in text
    assert "only carol sees: ⛔ Only approvers may approve requests." in text
    assert "vm01 is running on host3, disks on nfs1" in text
    assert "the toolstack restarted and vm02 is clear" in text
    assert "build01 is running on host3" in text and "retry of #3" in text
    assert "U0BOB" not in text.split("#ops as people read it")[1]  # mentions became names
    assert "2 of 3 moved; monitor01 failed: The live copy" in text
    assert "monitor01 is running on host2" in text and "retry of #6" in text
    assert "only bob sees: ✅ host1 re-enabled by <@U0BOB>: VMs may start" in text
    home = text.split("the Home tab, as bob opens it")[1]
    assert "*Last outcomes* (" in home and "#1 *vm01* · host1 → host3 · succeeded" in home
    assert "Nothing runs now." in home and "Nothing waits." in home
    assert text.rstrip().splitlines()[-1].startswith("✓ demo passed: 5 scene(s), 9 request(s)")
    assert "migrate vm01" in page.read_text()
