"""The engine, driven with no I/O: (flow, state, input, now) → (state, actions, events)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callcenter.exceptions import FlowError
from callcenter.ivr import engine
from callcenter.ivr.engine import Enqueue, Gather, Hangup, Play, Rules, State, Step
from callcenter.ivr.flow import Flow, load_flows, parse_flow
from callcenter.ivr.hours import BusinessHours
from callcenter.workdays import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
RULES = Rules(
    max_retries=2,
    default_queue="consultation",
    vip_priority=10,
    hours=BusinessHours.every_day(time(6), time(22), SHANGHAI, WorkCalendar()),
)
HOTLINE = load_flows(Path(__file__).resolve().parents[2] / "ivr_flows")["hotline"]


def run(inputs: list[str], *, flow: Flow = HOTLINE, vip: bool = False, now: datetime = NOW) -> list[Step]:
    """Feed inputs ('timeout' or keys) until the IVR finishes; return every step."""
    steps = [engine.start(flow, RULES, now, vip=vip)]
    for token in inputs:
        state = steps[-1].state
        if state.finished:
            break
        step = (
            engine.on_no_input(flow, RULES, state, now)
            if token == "timeout"
            else engine.on_digits(flow, RULES, state, token, now)
        )
        steps.append(step)
    return steps


def route(steps: list[Step]) -> Enqueue:
    last = steps[-1].actions[-1]
    assert isinstance(last, Enqueue), steps[-1].actions
    return last


def test_start_plays_the_greeting_then_waits_at_the_menu() -> None:
    step = engine.start(HOTLINE, RULES, NOW)
    assert [type(action) for action in step.actions] == [Play, Gather]
    gather = step.waiting_for_input
    assert (
        gather is not None and gather.node == "main_menu" and gather.keys == "01289" and gather.timeout_s == 6
    )
    assert step.state.language == "zh"
    assert [event.kind for event in step.events] == ["ivr.node", "ivr.node", "ivr.hours", "ivr.node"]


@pytest.mark.parametrize(
    ("key", "queue", "branch"), [("1", "consultation", "consultation"), ("2", "complaint", "complaint")]
)
def test_menu_keys_route_to_their_queue(key: str, queue: str, branch: str) -> None:
    assert route(run([key])) == Enqueue(queue=queue, branch=branch, priority=0)


def test_silence_reprompts_twice_then_goes_to_the_default_queue() -> None:
    steps = run(["timeout", "timeout", "timeout"])
    assert [type(a).__name__ for a in steps[1].actions] == ["Play", "Gather"]
    assert steps[1].actions[0] == Play("no_input", HOTLINE.text("no_input", "zh"), "zh", "main_menu")
    assert steps[2].state.no_input == 2
    assert route(steps) == Enqueue("consultation", "timeout", 0)


def test_invalid_keys_reprompt_twice_then_go_to_the_default_queue() -> None:
    steps = run(["7", "#", "5"])
    assert steps[1].actions[0].prompt == "invalid"  # type: ignore[union-attr]
    assert route(steps) == Enqueue("consultation", "invalid", 0)


def test_no_input_and_invalid_counters_are_separate() -> None:
    steps = run(["timeout", "7", "timeout", "7", "2"])
    assert route(steps) == Enqueue("complaint", "complaint", 0)


def test_repeat_replays_the_menu_without_counting() -> None:
    steps = run(["9", "9", "9", "1"])
    assert steps[1].actions == (steps[0].actions[-1],)
    assert steps[1].state.invalid == 0
    assert route(steps).queue == "consultation"


def test_vip_callers_get_priority() -> None:
    assert route(run(["2"], vip=True)) == Enqueue("complaint", "complaint", 10)


def test_events_carry_unique_sequence_numbers_and_the_path() -> None:
    steps = run(["5", "2"])
    events = [event for step in steps for event in step.events]
    assert [event.seq for event in events] == list(range(len(events)))
    assert steps[-1].state.path == ("welcome", "hours", "main_menu", "route_complaint")
    inputs = [(e.data["digits"], e.data["outcome"]) for e in events if e.kind == "ivr.input"]
    assert inputs == [("5", "invalid"), ("2", "option")]
    assert events[-1].kind == "ivr.route" and events[-1].data == {
        "queue": "complaint",
        "branch": "complaint",
        "priority": 0,
    }


def test_hangup_records_where_the_caller_left() -> None:
    first = engine.start(HOTLINE, RULES, NOW)
    step = engine.on_hangup(HOTLINE, first.state, NOW, reason="caller hung up")
    assert step.state.finished
    assert [(e.kind, e.node, e.seq) for e in step.events] == [("ivr.hangup", "main_menu", first.state.seq)]


def test_input_after_the_end_is_refused() -> None:
    done = run(["1"])[-1].state
    with pytest.raises(FlowError, match="input after the IVR finished"):
        engine.on_digits(HOTLINE, RULES, done, "2", NOW)


def test_state_round_trips_through_a_dict() -> None:
    state = run(["timeout"])[-1].state
    assert State.from_dict(state.to_dict()) == state


def hours_flow() -> Flow:
    data: dict[str, Any] = {
        "flow": {"name": "hours", "version": 1, "start": "check", "languages": ["zh"]},
        "prompts": {"closed": {"zh": "已下班"}},
        "nodes": {
            "check": {"type": "hours", "open": "route", "closed": "closed"},
            "route": {"type": "queue", "queue": "@default", "branch": "consultation"},
            "closed": {"type": "hangup", "reason": "after_hours", "prompt": "closed"},
        },
    }
    return parse_flow(data, "hours.toml")


def test_hours_node_routes_by_the_clock() -> None:
    flow = hours_flow()
    assert route(run([], flow=flow)) == Enqueue("consultation", "consultation", 0)
    night = datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI)
    step = run([], flow=flow, now=night)[-1]
    assert step.actions == (Play("closed", "已下班", "zh", "closed"), Hangup("after_hours"))
    assert step.state.finished
    assert [e.kind for e in step.events] == ["ivr.node", "ivr.hours", "ivr.node", "ivr.end"]


NIGHT = datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI)


def test_after_hours_owes_a_callback_at_the_next_opening_before_anything_is_played() -> None:
    step = engine.start(HOTLINE, RULES, NIGHT)
    [callback] = [event for event in step.events if event.kind == "callback.requested"]
    assert callback.node == "closed"
    assert callback.data == {
        "callback_kind": "after_hours",
        "due_at": "2026-11-24T06:00:00+08:00",
        "queue": "consultation",
        "enqueued_at": None,
        "language": "zh",
        "priority": 0,
    }
    assert [a.prompt for a in step.actions if isinstance(a, Play | Gather)] == [
        "welcome",
        "closed",
        "voicemail_offer",
    ]


def test_voicemail_is_recorded_then_reported() -> None:
    offer = engine.start(HOTLINE, RULES, NIGHT)
    recording = engine.on_digits(HOTLINE, RULES, offer.state, "1", NIGHT)
    record = recording.waiting_for_recording
    assert record is not None and (record.node, record.prompt, record.max_s) == (
        "voicemail",
        "voicemail_prompt",
        120,
    )
    done = engine.on_recorded(HOTLINE, RULES, recording.state, "voicemail/vm-1.wav", NIGHT)
    kinds = [(e.kind, e.data.get("path")) for e in done.events]
    assert kinds[0] == ("recording.started", "voicemail/vm-1.wav")
    assert done.actions[-1] == Hangup("voicemail") and done.state.finished


def test_nothing_recorded_is_noted_and_the_flow_goes_on() -> None:
    offer = engine.start(HOTLINE, RULES, NIGHT)
    recording = engine.on_digits(HOTLINE, RULES, offer.state, "1", NIGHT)
    done = engine.on_recorded(HOTLINE, RULES, recording.state, None, NIGHT)
    assert done.events[0].kind == "ivr.record" and done.state.finished


def test_a_recording_report_at_a_menu_is_a_flow_error() -> None:
    with pytest.raises(FlowError, match="does not record"):
        engine.on_recorded(HOTLINE, RULES, engine.start(HOTLINE, RULES, NOW).state, "x.wav", NOW)


def test_language_switch_replays_the_menu_in_english() -> None:
    steps = run(["8", "2"])
    assert steps[1].state.language == "en"
    assert steps[1].actions[-1] == Gather(
        "main_menu", "main_menu", HOTLINE.text("main_menu", "en"), "en", "01289", 6.0
    )
    assert route(steps) == Enqueue("complaint", "complaint", 0)


def test_operator_key_uses_the_operator_queue() -> None:
    rules = Rules(2, "consultation", 10, RULES.hours, operator_queue="operators")
    step = engine.on_digits(HOTLINE, rules, engine.start(HOTLINE, rules, NOW).state, "0", NOW)
    assert step.actions[-1] == Enqueue("operators", "operator", 0)
    assert route(run(["0"])).queue == "consultation"  # no operator queue configured: the default


def test_queue_callback_keeps_the_enqueue_time_and_is_due_now() -> None:
    joined = datetime(2026, 11, 23, 9, 50, tzinfo=SHANGHAI)
    step = engine.start(HOTLINE, RULES, NOW, entry="queue_callback", enqueued_at=joined, vip=True)
    [callback] = [event for event in step.events if event.kind == "callback.requested"]
    assert callback.data["enqueued_at"] == joined.isoformat()
    assert callback.data["due_at"] == NOW.isoformat() and callback.data["priority"] == 10
    assert step.state.finished and step.actions[-1] == Hangup("queue_callback")


def test_a_state_evolves_as_dataclasses_replace_would_copy_it() -> None:
    state = State(flow="hotline", version=3, language="zh", vip=True, path=("welcome",), seq=2)
    evolved = state.evolve(node="main_menu", path=(*state.path, "main_menu"), seq=3)
    expected = dataclasses.replace(state, node="main_menu", path=("welcome", "main_menu"), seq=3)
    assert evolved == expected
    assert hash(evolved) == hash(expected)
    assert evolved.to_dict() == expected.to_dict()
    assert state.node is None and state.seq == 2  # the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.node = "x"  # type: ignore[misc]
    with pytest.raises(TypeError, match="no field colour"):
        state.evolve(colour="red")
