"""The 3-way line merge behind the console's rebase of a candidate onto a moved HEAD (issue 13, #17)."""

from console.merge import merge3

BASE = "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\n"


def test_edits_apart_merge():
    ours = BASE.replace("b: 2", "b: 20")
    theirs = BASE.replace("e: 5", "e: 50") + "g: 7\n"
    merged, conflicts = merge3(BASE, ours, theirs)
    assert not conflicts and merged == "a: 1\nb: 20\nc: 3\nd: 4\ne: 50\nf: 6\ng: 7\n"


def test_one_side_only_and_same_change_twice():
    assert merge3(BASE, BASE, BASE.replace("c: 3", "c: 9")) == (BASE.replace("c: 3", "c: 9"), [])
    assert merge3(BASE, BASE.replace("a: 1\n", ""), BASE) == (BASE.replace("a: 1\n", ""), [])
    same = BASE.replace("d: 4", "d: 0")
    assert merge3(BASE, same, same) == (same, [])


def test_overlapping_and_touching_edits_conflict_with_the_three_versions():
    merged, conflicts = merge3(BASE, BASE.replace("c: 3", "c: mine"), BASE.replace("c: 3", "c: theirs"))
    assert merged is None and len(conflicts) == 1
    c = conflicts[0]
    assert (c.start, c.base, c.ours, c.theirs) == (2, ["c: 3\n"], ["c: mine\n"], ["c: theirs\n"])
    # adjacent lines count as touching (as git does): no silent interleaving
    merged, conflicts = merge3(BASE, BASE.replace("c: 3", "c: x"), BASE.replace("d: 4", "d: y"))
    assert merged is None and conflicts[0].ours == ["c: x\n", "d: 4\n"] and conflicts[0].theirs == ["c: 3\n", "d: y\n"]
    # both append at the end
    merged, conflicts = merge3(BASE, BASE + "x: 1\n", BASE + "y: 2\n")
    assert merged is None and conflicts[0].ours == ["x: 1\n"] and conflicts[0].theirs == ["y: 2\n"]
