"""Engine texts as mrkdwn: escaped, and only the people their record names mentioned."""

from __future__ import annotations

from bot.slack.from_store import with_people


def test_the_people_a_record_names_are_mentioned():
    """'rejected by U1' with U1 as the actor: U1 becomes a mention."""
    assert with_people("rejected by U1", ["U1"]) == "rejected by <@U1>"


def test_a_vm_that_looks_like_a_user_id_is_never_mentioned():
    """A VM named U99X at the start of an outcome stays plain text: it is not a person."""
    text = "U99X is running on host3; approved by U1"
    assert with_people(text, ["U1", None]) == "U99X is running on host3; approved by <@U1>"


def test_an_id_inside_a_longer_word_is_left_alone():
    """U1 the person is not mentioned inside U12 or vm-U1x, and markup is escaped."""
    assert with_people("U12 <b> vm-U1x by U1", ["U1"]) == "U12 &lt;b&gt; vm-U1x by <@U1>"
