"""Names people half-remember: one ranking for "did you mean" and the modal's search.

A name that starts with what was typed comes first, then one that contains it, then a near
miss; case never matters.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from bot.planning.resolve import CLOSE, PREFIX, SUBSTRING, did_you_mean, ranked, ranker

ALPHABET = "abAB0-"
NAME = st.text(alphabet=ALPHABET, min_size=1, max_size=8)
TYPED = st.text(alphabet=ALPHABET, min_size=1, max_size=4)


@st.composite
def typed_and_names(draw: st.DrawFn) -> tuple[str, list[str]]:
    """What was typed, and names many of which hold it (at the start or inside, in either
    case) beside unrelated ones, so every tier is well populated."""
    text = draw(TYPED)
    piece = st.text(alphabet=ALPHABET, max_size=3)
    held = st.sampled_from([text, text.swapcase()])
    around = st.builds(lambda a, b, c: a + b + c, piece, held, piece)
    return text, draw(st.lists(st.one_of(around, NAME), max_size=12))


def alone(name: str) -> tuple[str]:
    return (name,)


def tier(text: str, name: str) -> int:
    """The tier a name belongs in, worked out independently of the code under test."""
    if name.lower().startswith(text.lower()):
        return PREFIX
    return SUBSTRING if text.lower() in name.lower() else CLOSE


def test_half_a_name_suggests_the_whole():
    """`/migrate mail to host3`: the VM is mail01.example.com."""
    names = ["dns01", "mail01.example.com", "web01"]
    assert did_you_mean("mail", names) == ["mail01.example.com"]


def test_prefix_then_substring_then_near_miss():
    """What the name starts with beats what it contains, which beats a near miss."""
    names = ["mial", "gmail", "mail01.example.com", "dns01"]
    assert did_you_mean("mail", names) == ["mail01.example.com", "gmail", "mial"]


def test_case_is_ignored_and_the_names_kept():
    """'MAIL' finds mail01 as it is spelled; 'VM01' still suggests 'vm01'."""
    assert did_you_mean("MAIL", ["Mail01", "dns01"]) == ["Mail01"]
    assert did_you_mean("VM01", ["vm01", "vm02"])[0] == "vm01"


def test_near_misses_still_found_best_first():
    """A typo with no shared prefix or piece is still caught, the closest first."""
    assert did_you_mean("vm0l", ["vm01", "vm02", "web"]) == ["vm01", "vm02"]
    assert did_you_mean("web", ["db"]) == []


def test_nothing_typed_suggests_nothing():
    assert did_you_mean("", ["vm01"]) == [] and did_you_mean("  ", ["vm01"]) == []


def test_an_item_ranks_by_its_best_name():
    """A modal option `vm01 (running on host1)@site-a` is near `vm0l` through its name."""
    options = [("web01 (halted)@site-a", "web01"), ("vm01 (running on host1)@site-a", "vm01")]
    assert ranked("vm0l", options, lambda option: option) == [options[1]]
    assert ranker("vm0l")(options[1][0]) is None  # the whole text alone is too far


def test_equal_items_keep_their_order():
    """Two VMs called web (the modal lists both) come in the order they were given."""
    twins = [("web", "uuid-2"), ("web", "uuid-1")]
    assert ranked("we", twins, lambda twin: (twin[0],)) == twins


@given(typed_and_names())
def test_tiers_come_in_order(case: tuple[str, list[str]]) -> None:
    """Every prefix match precedes every substring match, which precedes every near miss."""
    text, names = case
    tiers = [tier(text, name) for name in ranked(text, names, alone)]
    assert tiers == sorted(tiers)


@given(typed_and_names())
def test_every_prefix_and_substring_match_is_listed(case: tuple[str, list[str]]) -> None:
    """Nothing that contains what was typed is left out; nothing is made up."""
    text, names = case
    found = ranked(text, names, alone)
    assert Counter(found) <= Counter(names)
    assert {n for n in names if text.lower() in n.lower()} <= set(found)


@given(typed_and_names())
def test_prefix_matches_are_alphabetical(case: tuple[str, list[str]]) -> None:
    """Within the first tier the names read alphabetically, case aside."""
    text, names = case
    first = [n.lower() for n in ranked(text, names, alone) if tier(text, n) == PREFIX]
    assert first == sorted(first)


@given(typed_and_names())
def test_case_of_what_was_typed_does_not_matter(case: tuple[str, list[str]]) -> None:
    """'MAIL' and 'mail' find the same names in the same order."""
    text, names = case
    assert ranked(text.upper(), names, alone) == ranked(text.lower(), names, alone)
    assert did_you_mean(text.upper(), names) == did_you_mean(text.lower(), names)


@given(typed_and_names())
def test_suggestions_are_few_distinct_and_lead_with_a_prefix(case: tuple[str, list[str]]) -> None:
    """At most three, none twice in another case, and the first starts with what was typed
    whenever any name does."""
    text, names = case
    shown = did_you_mean(text, names)
    assert len(shown) <= 3 and set(shown) <= set(names)
    assert len({n.lower() for n in shown}) == len(shown)
    if any(tier(text, n) == PREFIX for n in names):
        assert tier(text, shown[0]) == PREFIX
