"""TwiML rendering of engine steps: exact XML (the builder accepts any attribute name silently)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callcenter.ivr import engine
from callcenter.ivr.engine import Rules
from callcenter.ivr.flow import load_flows
from callcenter.ivr.rules import engine_rules
from callcenter.voice.twilio import twiml
from callcenter.voice.twilio.hotline import decode_token, encode_token
from callcenter.voice.twilio.twiml import StepLinks, Voice
from tests.conftest import FIXED_NOW, ROOT, make_settings

FLOWS = load_flows(ROOT / "ivr_flows")
HOTLINE = FLOWS["hotline"]
NIGHT = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai: closed
HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
SAY_ZH = '<Say language="zh-CN" voice="Polly.Zhiyu">'
SAY_EN = '<Say language="en-US" voice="Polly.Joanna">'
VOICE = Voice()
LINKS = StepLinks(
    gather="https://cc/g",
    recorded="https://cc/r",
    recording_status="https://cc/rs",
    enqueue_action="https://cc/qa",
    enqueue_wait="https://cc/qw",
)
WELCOME = HOTLINE.text("welcome", "zh")
MENU = HOTLINE.text("main_menu", "zh")


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Rules:
    return engine_rules(make_settings(tmp_path_factory.mktemp("twiml"), "sqlite://"))


def render(step: engine.Step, voice: Voice = VOICE) -> str:
    return twiml.to_xml(twiml.render_step("hotline", step.actions, voice, LINKS))


def test_the_welcome_and_the_menu_are_one_gather_so_a_key_during_the_welcome_answers(rules: Rules) -> None:
    step = engine.start(HOTLINE, rules, FIXED_NOW, language="zh")
    assert render(step) == (
        f'{HEAD}<Response><Gather action="https://cc/g" actionOnEmptyResult="true" input="dtmf" '
        f'numDigits="1" timeout="6">{SAY_ZH}{WELCOME}</Say>{SAY_ZH}{MENU}</Say></Gather></Response>'
    )


def test_prompts_are_played_from_rendered_files_when_a_prompts_url_is_set(rules: Rules) -> None:
    step = engine.start(HOTLINE, rules, FIXED_NOW, language="zh")
    voice = Voice(prompts_base_url="https://cdn.example.com/sounds/")
    assert render(step, voice) == (
        f'{HEAD}<Response><Gather action="https://cc/g" actionOnEmptyResult="true" input="dtmf" '
        'numDigits="1" timeout="6">'
        "<Play>https://cdn.example.com/sounds/callcenter/hotline/zh/welcome.wav</Play>"
        "<Play>https://cdn.example.com/sounds/callcenter/hotline/zh/main_menu.wav</Play>"
        "</Gather></Response>"
    )


def test_a_retry_plays_the_no_input_prompt_then_the_menu_again(rules: Rules) -> None:
    first = engine.start(HOTLINE, rules, FIXED_NOW, language="zh")
    step = engine.on_no_input(HOTLINE, rules, first.state, FIXED_NOW)
    assert render(step) == (
        f'{HEAD}<Response><Gather action="https://cc/g" actionOnEmptyResult="true" input="dtmf" '
        f'numDigits="1" timeout="6">{SAY_ZH}{HOTLINE.text("no_input", "zh")}</Say>'
        f"{SAY_ZH}{MENU}</Say></Gather></Response>"
    )


def test_english_uses_the_english_voice(rules: Rules) -> None:
    first = engine.start(HOTLINE, rules, FIXED_NOW, language="zh")
    step = engine.on_digits(HOTLINE, rules, first.state, "8", FIXED_NOW)
    assert render(step) == (
        f'{HEAD}<Response><Gather action="https://cc/g" actionOnEmptyResult="true" input="dtmf" '
        f'numDigits="1" timeout="6">{SAY_EN}{HOTLINE.text("main_menu", "en")}</Say></Gather></Response>'
    )


def test_a_route_enqueues_after_the_announcement_and_vips_wait_in_their_own_queue(rules: Rules) -> None:
    first = engine.start(HOTLINE, rules, FIXED_NOW, language="zh", vip=True)
    step = engine.on_digits(HOTLINE, rules, first.state, "2", FIXED_NOW)
    assert render(step) == (
        f"{HEAD}<Response>{SAY_ZH}{HOTLINE.text('to_complaint', 'zh')}</Say>"
        '<Enqueue action="https://cc/qa" waitUrl="https://cc/qw" waitUrlMethod="POST">complaint.p10</Enqueue>'
        "</Response>"
    )


def test_after_hours_the_callback_notice_then_the_voicemail_offer(rules: Rules) -> None:
    step = engine.start(HOTLINE, rules, NIGHT, language="zh")
    assert render(step) == (
        f'{HEAD}<Response><Gather action="https://cc/g" actionOnEmptyResult="true" input="dtmf" '
        f'numDigits="1" timeout="5">{SAY_ZH}{WELCOME}</Say>{SAY_ZH}{HOTLINE.text("closed", "zh")}</Say>'
        f"{SAY_ZH}{HOTLINE.text('voicemail_offer', 'zh')}</Say></Gather></Response>"
    )


def test_voicemail_is_a_record_with_a_status_callback_and_a_redirect_when_nothing_is_recorded(
    rules: Rules,
) -> None:
    first = engine.start(HOTLINE, rules, NIGHT, language="zh")
    step = engine.on_digits(HOTLINE, rules, first.state, "1", NIGHT)
    assert render(step) == (
        f"{HEAD}<Response>{SAY_ZH}{HOTLINE.text('voicemail_prompt', 'zh')}</Say>"
        '<Record action="https://cc/r" finishOnKey="#" maxLength="120" playBeep="true" '
        'recordingStatusCallback="https://cc/rs" recordingStatusCallbackEvent="completed" timeout="5" />'
        "<Redirect>https://cc/r</Redirect></Response>"
    )


def test_a_hangup_node_says_goodbye_and_hangs_up(rules: Rules) -> None:
    first = engine.start(HOTLINE, rules, NIGHT, language="zh")
    step = engine.on_no_input(HOTLINE, rules, first.state, NIGHT)  # max_retries = 0: goodbye
    assert render(step) == (
        f"{HEAD}<Response>{SAY_ZH}{HOTLINE.text('goodbye', 'zh')}</Say><Hangup /></Response>"
    )


def test_a_menu_that_takes_the_hash_key_does_not_finish_on_it() -> None:
    gather = engine.Gather("m", "p", "text", "zh", "#1", 6.0)
    assert twiml.to_xml(twiml.render_step("hotline", (gather,), VOICE, LINKS)) == (
        f'{HEAD}<Response><Gather action="https://cc/g" actionOnEmptyResult="true" finishOnKey="" '
        f'input="dtmf" numDigits="1" timeout="6">{SAY_ZH}text</Say></Gather></Response>'
    )


def test_the_waiting_room_announces_the_position_and_plays_hold_music() -> None:
    voice = Voice(hold_music_url="https://cdn/hold.mp3")
    response = twiml.waiting_room(voice, "zh", 3, offer_callback=False, callback_url="https://cc/cb")
    assert twiml.to_xml(response) == (
        f"{HEAD}<Response>{SAY_ZH}您目前排在第3位,请稍候。</Say><Play>https://cdn/hold.mp3</Play></Response>"
    )


def test_the_waiting_room_pauses_without_hold_music() -> None:
    response = twiml.waiting_room(VOICE, "en", 1, offer_callback=False, callback_url="https://cc/cb")
    assert twiml.to_xml(response) == (
        f"{HEAD}<Response>{SAY_EN}You are number 1 in line. Please hold.</Say>"
        '<Pause length="20" /></Response>'
    )


def test_the_waiting_room_offers_a_callback_in_a_gather() -> None:
    voice = Voice(hold_music_url="https://cdn/hold.mp3")
    response = twiml.waiting_room(voice, "zh", 2, offer_callback=True, callback_url="https://cc/cb")
    assert twiml.to_xml(response) == (
        f'{HEAD}<Response><Gather action="https://cc/cb" input="dtmf" numDigits="1" timeout="3">'
        f"{SAY_ZH}您目前排在第2位,请稍候。</Say>{SAY_ZH}如需保留排队顺序并由我们按顺序给您回电,请按1。</Say>"
        "<Play>https://cdn/hold.mp3</Play></Gather></Response>"
    )


def test_leaving_and_going_back_to_the_waiting_room() -> None:
    assert twiml.to_xml(twiml.leave_queue()) == f"{HEAD}<Response><Leave /></Response>"
    assert twiml.to_xml(twiml.back_to_waiting("https://cc/qw")) == (
        f'{HEAD}<Response><Redirect method="POST">https://cc/qw</Redirect></Response>'
    )


def test_an_agent_dials_the_queue_recording_both_channels() -> None:
    response = twiml.agent_dial(
        "complaint.p10", dequeued_url="https://cc/dq", record=True, recording_status="https://cc/rec"
    )
    assert twiml.to_xml(response) == (
        f'{HEAD}<Response><Dial record="record-from-answer-dual" recordingStatusCallback="https://cc/rec" '
        'recordingStatusCallbackEvent="completed"><Queue method="POST" url="https://cc/dq">complaint.p10</Queue>'
        "</Dial></Response>"
    )
    unrecorded = twiml.agent_dial(
        "complaint", dequeued_url="https://cc/dq", record=False, recording_status=""
    )
    assert twiml.to_xml(unrecorded) == (
        f'{HEAD}<Response><Dial><Queue method="POST" url="https://cc/dq">complaint</Queue></Dial></Response>'
    )


def test_queue_names_carry_the_priority() -> None:
    assert twiml.vip_queue_name("complaint", 0) == "complaint"
    assert twiml.vip_queue_name("complaint", 10) == "complaint.p10"
    assert twiml.queue_and_priority("complaint.p10") == ("complaint", 10)
    assert twiml.queue_and_priority("consultation") == ("consultation", 0)


def test_tokens_round_trip() -> None:
    data = {"k": "", "s": {"flow": "hotline", "path": ["welcome", "欢迎"]}}
    assert decode_token(encode_token(data)) == data


def _every_step(rules: Rules) -> list[tuple[str, engine.Step]]:
    """Each step of every flow a caller can reach in two key presses (day and night, zh and en, VIP)."""
    steps: list[tuple[str, engine.Step]] = []
    for name, flow in FLOWS.items():
        for now in (FIXED_NOW, NIGHT):
            for language in ("zh", "en"):
                for vip in (False, True):
                    first = engine.start(flow, rules, now, language=language, vip=vip)
                    steps.append((name, first))
                    if first.waiting_for_input is None:
                        continue
                    for key in [*"0123456789*#", None]:
                        try:
                            step = (
                                engine.on_no_input(flow, rules, first.state, now)
                                if key is None
                                else engine.on_digits(flow, rules, first.state, key, now)
                            )
                        except Exception:  # a key this menu refuses outright
                            continue
                        steps.append((name, step))
    return steps


@pytest.mark.parametrize(
    "links",
    [
        LINKS,
        StepLinks(
            gather="https://cc.example.com/twilio/gather/main_menu?s=eyJrIjoiIn0&x=<1>",
            recorded="https://cc.example.com/twilio/recorded/voicemail?s=abc&amp;",
            recording_status="https://cc.example.com/twilio/recording?kind=voicemail",
            enqueue_action="https://cc.example.com/twilio/queue/done?s=%E6%82%A8&b=1",
            enqueue_wait="https://呼叫中心.example.com/twilio/queue/wait?s=q",
        ),
        StepLinks(gather='https://cc/g?a="quoted"', enqueue_wait="https://cc/w\tab"),  # rendered whole
        StepLinks(),
    ],
)
def test_the_answered_document_is_exactly_the_builders(rules: Rules, links: StepLinks) -> None:
    steps = _every_step(rules)
    kinds = {type(action) for _, step in steps for action in step.actions}
    assert kinds == {engine.Play, engine.Gather, engine.Enqueue, engine.Hangup, engine.Record}
    for flow, step in steps:
        expected = twiml.to_xml(twiml.render_step(flow, step.actions, VOICE, links))
        assert twiml.step_xml(flow, step.actions, VOICE, links) == expected
        assert twiml.step_xml(flow, step.actions, VOICE, links) == expected  # the cached shape, again
