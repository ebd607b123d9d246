"""The loader's shortcuts give what the general code gives: each test runs both on real logs and
fails if the shortcut is wrong."""

from __future__ import annotations

import pytest
from conftest import data_logs, data_path

from tldb import plan
from tldb.envelope import CompileId
from tldb.plan import Planner, compile_dir, compile_key
from tldb.reader import OK, Envelope, Reader, open_log
from tldb.registry import plan_extensions


def _envelopes(relative: str) -> tuple[Reader, list[Envelope]]:
    with open_log(data_path(relative)) as stream:
        reader = Reader(stream)
        return reader, [r for r in reader if isinstance(r, Envelope)]


@pytest.mark.parametrize("relative", data_logs())
def test_makes_outputs_never_skips_an_envelope_with_outputs(relative):
    """The loader plans only envelopes makes_outputs admits; the planner, asked about every
    accepted envelope, finds outputs for none of the others."""
    reader, envelopes = _envelopes(relative)
    planner = Planner(reader.stats, plan_extensions())
    admitted = skipped = 0
    for env in envelopes:
        if env.status != OK:
            continue
        outputs = list(planner.plan(env))
        if planner.makes_outputs(env.meta):
            admitted += 1
        else:
            skipped += 1
            assert outputs == [], (relative, env.line, env.kind)
    assert admitted + skipped == reader.stats.ok


def test_makes_outputs_admits_every_parser_key():
    planner = Planner(plan.Stats(), plan_extensions())
    for key in plan._DEFAULT_KEYS | plan._EXPORT_KEYS:
        assert planner.makes_outputs({key: {}, "frame_id": 0})
    assert not planner.makes_outputs({"chromium_event": {}, "frame_id": 0})
    assert not planner.makes_outputs(None)


def test_compile_labels_are_cached_by_identity_not_reused_for_another_id():
    """The label and folder caches find a compile id by identity; an entry left under an id()
    by another object (as after that object was freed) must not be taken."""
    first = CompileId(None, 7, 3, None)
    equal = CompileId(None, 7, 3, None)  # equal, another object: an entry of its own
    assert compile_key(first) == compile_key(equal) == "[7/3]"
    assert compile_dir(first, 1) == compile_dir(equal, 2) == "-_7_3_-"
    other = CompileId(2, 0, 1, 4)
    plan._KEYS[id(other)] = (first, "[7/3]")  # a stale entry under other's identity
    plan._DIRS[id(other)] = (first, "-_7_3_-")
    assert compile_key(other) == "[!2/0/1_4]"
    assert compile_dir(other, 5) == "2_0_1_4"
    assert compile_key(other) == "[!2/0/1_4]"  # and now cached for it
    assert compile_key(None) == "unknown" and compile_dir(None, 9) == "unknown_9"
