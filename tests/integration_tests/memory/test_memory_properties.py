"""Property tests (hypothesis): random conversations, policies and operation orders."""

from __future__ import annotations

import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optical_memory import DecayPolicy, OpticalMemory

ROLES = st.sampled_from(["user", "assistant", "system"])
TEXT = st.text(min_size=0, max_size=120)  # any Unicode, lone surrogates included
MESSAGE = st.tuples(ROLES, TEXT).map(lambda m: {"role": m[0], "content": m[1]})
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(MESSAGE, min_size=1, max_size=6)),
        st.tuples(st.just("compact"), st.none()),
        st.tuples(st.just("context"), st.sampled_from([None, 400, 1500])),
    ),
    min_size=1,
    max_size=25,
)
POLICIES = st.builds(
    DecayPolicy,
    keep=st.one_of(
        st.tuples(st.just("messages"), st.integers(0, 6)),
        st.tuples(st.just("tokens"), st.integers(0, 200)),
    ),
    segment_pages=st.floats(0.02, 0.3),
    ladder=st.sampled_from(
        [((0, "base"),), ((0, "small"), (8, "tiny")), ((0, "base"), (5, "tiny"), (15, "forgotten"))]
    ),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS, policy=POLICIES, auto=st.booleans())
def test_nothing_is_lost_or_reordered(
    tmp_path: Path, operations: list[tuple[str, object]], policy: DecayPolicy, auto: bool
) -> None:
    url = f"sqlite:///{tmp_path / (uuid.uuid4().hex + '.db')}"
    added: list[dict[str, str]] = []
    with OpticalMemory(url, policy=policy, readers=("deepseek-ocr",), auto_compact=auto) as memory:
        for name, argument in operations:
            if name == "add":
                memory.add("t", argument)  # type: ignore[arg-type]
                added.extend(argument)  # type: ignore[arg-type]
            elif name == "compact":
                memory.compact("t")
            elif added:
                budget = argument if isinstance(argument, int) else None
                try:
                    context = memory.context("t", reader="deepseek-ocr", budget=budget)
                except ValueError:
                    continue  # the newest turn alone is over this budget (ContextBudgetError)
                stored = memory.store.get_turns("t")
                segments = {s.id: s for s in memory.store.list_segments("t")}
                dropped = [tid for sid in context.dropped for tid in segments[sid].turn_ids]
                forgotten = {tid for sid in context.forgotten for tid in segments[sid].turn_ids}
                shown = list(dict.fromkeys(t for p in context.parts for t in p.turn_ids))
                accounted = [
                    t.id
                    for t in stored
                    if t.id in set(dropped) | forgotten | set(context.dropped_turns) | set(shown)
                ]
                assert accounted == [t.id for t in stored]  # every turn once, in order
                visible = [t.id for t in stored if t.id in set(shown)]
                assert shown == visible
        stored = memory.store.get_turns("t")
        assert [t.message for t in stored] == added  # byte-identical
        for segment in memory.store.list_segments("t"):
            recalled = memory.recall("t", segment.id)
            assert [t.id for t in recalled] == list(segment.turn_ids)
            assert all(t.message == added[[s.id for s in stored].index(t.id)] for t in recalled)
