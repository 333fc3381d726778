"""Engine steps as TwiML, built with twilio's ``VoiceResponse`` only (no hand-written XML).

The builder does not check attribute names, so every document here is compared as exact XML in
``tests/twilio/test_twiml.py``. Translation of the engine's actions:

| action | TwiML |
|---|---|
| ``Play`` | ``<Say language="zh-CN" voice=…>`` the prompt's text, or ``<Play>`` the rendered prompt file |
| ``Gather`` | ``<Gather input="dtmf" numDigits timeout action actionOnEmptyResult="true">`` around the step's
  announcements and the menu prompt (a key pressed during an announcement answers the menu, as on
  Asterisk); no key: the action is called with empty ``Digits`` (a no-input) |
| ``Record`` | the prompt, ``<Record action maxLength timeout finishOnKey="#" playBeep
  recordingStatusCallback>``, then ``<Redirect>`` to the same action (Twilio skips the action when
  nothing was recorded) |
| ``Enqueue`` | ``<Enqueue action waitUrl>`` to the queue named for the priority (``vip_queue_name``) |
| ``Hangup`` | ``<Hangup/>`` |

``step_xml`` is what the webhooks answer: the same document as ``to_xml(render_step(...))``, with the
builder's output kept per step shape (flow, actions, voice) and only the step's URLs put in per call.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, fields

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from callcenter.ivr import engine

SAY_LANGUAGES = {"zh": "zh-CN", "en": "en-US"}
PROMPTS_PREFIX = (
    "callcenter"  # the rendered prompt files: <prompts_base_url>/callcenter/<flow>/<lang>/<prompt>.wav
)
HOLD_PAUSE_S = 20  # silence between announcements in the queue when no hold music is configured
QUEUE_OFFER_GATHER_S = 3  # how long the callback offer in the queue waits for the key after the music

# Announcements of the waiting room (not in the flow files: they carry the live position).
QUEUE_TEXTS = {
    "zh": {
        "position": "您目前排在第{position}位,请稍候。",
        "offer": "如需保留排队顺序并由我们按顺序给您回电,请按1。",
    },
    "en": {
        "position": "You are number {position} in line. Please hold.",
        "offer": "To keep your place in line and be called back in turn, press 1.",
    },
}


@dataclass(frozen=True)
class Voice:
    """How prompts are spoken: ``<Say>`` with a voice per language, or ``<Play>`` of rendered files."""

    say_voice: str = "Polly.Zhiyu"
    say_voice_en: str = "Polly.Joanna"
    prompts_base_url: str = ""
    hold_music_url: str = ""

    def say_voice_for(self, language: str) -> str:
        return self.say_voice_en if language == "en" else self.say_voice


@dataclass(frozen=True)
class StepLinks:
    """The absolute URLs a step's TwiML points Twilio at (they carry the signed state)."""

    gather: str = ""  # the action of the menu waiting
    recorded: str = ""  # the action of the record node waiting
    recording_status: str = ""  # the recording status callback of a voicemail
    enqueue_action: str = ""  # called when the caller leaves the queue
    enqueue_wait: str = ""  # the waiting room


def vip_queue_name(queue: str, priority: int) -> str:
    """The Twilio queue for a priority: VIP callers wait in their own queue, dialled first by agents."""
    return queue if priority <= 0 else f"{queue}.p{priority}"[:64]


def queue_and_priority(name: str) -> tuple[str, int]:
    """The inverse of ``vip_queue_name``."""
    base, dot, suffix = name.rpartition(".p")
    if dot and suffix.isdigit():
        return base, int(suffix)
    return name, 0


def prompt(
    parent: VoiceResponse | Gather, voice: Voice, flow: str, language: str, name: str, text: str
) -> None:
    if voice.prompts_base_url:
        parent.play(f"{voice.prompts_base_url.rstrip('/')}/{PROMPTS_PREFIX}/{flow}/{language}/{name}.wav")
    else:
        parent.say(text, language=SAY_LANGUAGES.get(language, language), voice=voice.say_voice_for(language))


def say(parent: VoiceResponse | Gather, voice: Voice, language: str, text: str) -> None:
    parent.say(text, language=SAY_LANGUAGES.get(language, language), voice=voice.say_voice_for(language))


def _seconds(value: float) -> int:
    return max(1, round(value))


def render_step(flow: str, actions: Sequence[engine.Action], voice: Voice, links: StepLinks) -> VoiceResponse:
    """The TwiML of one engine step (its actions in order)."""
    response = VoiceResponse()
    last = actions[-1] if actions else None
    if isinstance(last, engine.Gather):
        gather = response.gather(
            input="dtmf",
            action=links.gather,
            num_digits=last.max_digits,
            timeout=_seconds(last.timeout_s),
            action_on_empty_result=True,
            **({"finish_on_key": ""} if "#" in last.keys else {}),
        )
        for action in actions[:-1]:
            if isinstance(action, engine.Play):
                prompt(gather, voice, flow, action.language, action.prompt, action.text)
        prompt(gather, voice, flow, last.language, last.prompt, last.text)
        return response
    for action in actions:
        if isinstance(action, engine.Play):
            prompt(response, voice, flow, action.language, action.prompt, action.text)
        elif isinstance(action, engine.Record):
            prompt(response, voice, flow, action.language, action.prompt, action.text)
            response.record(
                action=links.recorded,
                max_length=action.max_s,
                timeout=action.silence_s,
                finish_on_key="#",
                play_beep=True,
                recording_status_callback=links.recording_status,
                recording_status_callback_event="completed",
            )
            response.redirect(links.recorded)
        elif isinstance(action, engine.Enqueue):
            response.enqueue(
                vip_queue_name(action.queue, action.priority),
                action=links.enqueue_action,
                wait_url=links.enqueue_wait,
                wait_url_method="POST",
            )
        elif isinstance(action, engine.Hangup):
            response.hangup()
    return response


_LINK_FIELDS = tuple(field.name for field in fields(StepLinks))
# Stand-ins for the URLs while the builder renders a step's shape: plain letters and digits, which
# XML escaping leaves alone, and random, so no prompt text can contain one.
_STAND_INS = tuple(f"cc-link-{name}-{secrets.token_hex(8)}" for name in _LINK_FIELDS)
# ElementTree escapes these differently in attributes and in text: a URL holding one is rendered whole.
_CONTEXT_ESCAPED = re.compile('["\r\n\t]')


def step_xml(flow: str, actions: Sequence[engine.Action], voice: Voice, links: StepLinks) -> str:
    """``to_xml(render_step(flow, actions, voice, links))``, without building the document per call.

    A step's document depends on its actions and the voice, and only its URLs change from call to
    call (they carry each call's signed state). The builder renders each shape once, with stand-ins
    for the URLs; the URLs are escaped as ElementTree escapes them (``&``, ``<``, ``>``) and put in.
    """
    urls = tuple(getattr(links, name) for name in _LINK_FIELDS)
    shape = (flow, tuple(actions), voice, tuple(bool(url) for url in urls))
    try:
        # A URL holding a context-escaped character, or an action holding something unhashable
        # (TypeError from the cache), is rendered whole.
        document = None if _CONTEXT_ESCAPED.search("".join(urls)) else _rendered_shape(shape)
    except TypeError:
        document = None
    if document is None:
        return to_xml(render_step(flow, actions, voice, links))
    for stand_in, url in zip(_STAND_INS, urls, strict=True):
        if url:
            document = document.replace(stand_in, _escape(url))
    return document


@functools.lru_cache(maxsize=1024)
def _rendered_shape(shape: tuple[str, tuple[engine.Action, ...], Voice, tuple[bool, ...]]) -> str:
    flow, actions, voice, present = shape
    stand_ins = StepLinks(*(stand_in if on else "" for stand_in, on in zip(_STAND_INS, present, strict=True)))
    return to_xml(render_step(flow, actions, voice, stand_ins))


def _escape(url: str) -> str:
    return url.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def waiting_room(
    voice: Voice, language: str, position: int | None, *, offer_callback: bool, callback_url: str
) -> VoiceResponse:
    """The TwiML of an Enqueue's waitUrl: the position, hold music, and later the callback offer.

    Twilio requests the wait URL again once the document has played, so the position is fresh on
    every round. The offer is a ``<Gather>``: its action leaves the queue on ``1``.
    """
    texts = QUEUE_TEXTS.get(language, QUEUE_TEXTS["zh"])
    response = VoiceResponse()
    parent: VoiceResponse | Gather = response
    if offer_callback:
        parent = response.gather(
            input="dtmf", action=callback_url, num_digits=1, timeout=QUEUE_OFFER_GATHER_S
        )
    if position:
        say(parent, voice, language, texts["position"].format(position=position))
    if offer_callback:
        say(parent, voice, language, texts["offer"])
    if voice.hold_music_url:
        parent.play(voice.hold_music_url)
    else:
        parent.pause(length=HOLD_PAUSE_S)
    return response


def leave_queue() -> VoiceResponse:
    response = VoiceResponse()
    response.leave()
    return response


def back_to_waiting(wait_url: str) -> VoiceResponse:
    response = VoiceResponse()
    response.redirect(wait_url, method="POST")
    return response


def agent_dial(
    queue: str, *, dequeued_url: str, record: bool, recording_status: str, dial_action: str = ""
) -> VoiceResponse:
    """An agent takes the next caller of ``queue``: ``<Dial><Queue url=…>``, recorded on two channels."""
    response = VoiceResponse()
    options: dict[str, object] = {}
    if dial_action:
        options["action"] = dial_action
    if record:
        options.update(
            record="record-from-answer-dual",
            recording_status_callback=recording_status,
            recording_status_callback_event="completed",
        )
    dial: Dial = response.dial(**options)
    dial.queue(queue, url=dequeued_url, method="POST")
    return response


def hangup(voice: Voice | None = None, language: str = "zh", text: str = "") -> VoiceResponse:
    response = VoiceResponse()
    if voice is not None and text:
        say(response, voice, language, text)
    response.hangup()
    return response


def enqueue_only(queue: str) -> VoiceResponse:
    """The fallback when a webhook fails: straight into ``queue``, with Twilio's default waiting room."""
    response = VoiceResponse()
    response.enqueue(queue)
    return response


def empty() -> VoiceResponse:
    return VoiceResponse()


def to_xml(response: VoiceResponse) -> str:
    return str(response.to_xml())
