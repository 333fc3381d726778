"""The demo calls' recordings: 8 kHz 16-bit mono WAV files, as MixMonitor leaves them.

Each answered demo call is recorded as one short spoken dialogue (agent and customer, rendered with
espeak-ng where it is installed) followed by silence up to the call's talk time, so that the file's
duration is the talk time the contact record holds. A dialogue is rendered once and kept in a cache
folder (``<var_dir>/demo-audio``); every later seed reuses it. Without espeak-ng the dialogue is a
synthetic two-tone pattern instead: the data set has the same shape (files, durations), only the
sound differs.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from callcenter.voice.prompts import (
    DEFAULT_SPEED,
    DEFAULT_VOICES,
    SAMPLE_RATE,
    PromptRenderError,
    espeak_ng,
    to_telephone_wav,
)

ESPEAK, TONE = "espeak-ng", "tone"
CACHE_VERSION = 1
# One dialogue per queue; short, so the first render stays quick (the rest of the call is silence).
DIALOGUES = {
    "consultation": "您好,客户服务中心,工号一零零一。我想问一下宽带套餐的价格。"
    "好的,现在有一百元和一百五十元两种套餐。谢谢,我考虑一下。",
    "complaint": "您好,客户服务中心。我家的宽带已经断了两天了,一直没人来修。"
    "非常抱歉,我马上为您登记工单,售后会尽快联系您。",
}
Synthesiser = Callable[[str, str, int], bytes]


@dataclass(frozen=True)
class Speech:
    """A dialogue's 16-bit PCM frames at 8 kHz, and how they were made (espeak-ng or tone)."""

    frames: bytes
    source: str


def synthesiser() -> Synthesiser | None:
    """espeak-ng if installed, else None (the dialogues become tones)."""
    try:
        return espeak_ng()
    except PromptRenderError:
        return None


def dialogue(queue: str, cache_dir: Path, synthesise: Synthesiser | None) -> Speech:
    """The dialogue of a queue's calls, rendered once and cached; tones without a synthesiser."""
    text = DIALOGUES.get(queue, DIALOGUES["consultation"])
    if synthesise is None:
        return Speech(_tones(seconds=8.0), TONE)
    voice = DEFAULT_VOICES["zh"]
    digest = hashlib.sha256(f"{CACHE_VERSION}|{voice}|{DEFAULT_SPEED}|{text}".encode()).hexdigest()[:16]
    cached = cache_dir / f"{queue}-{digest}.wav"
    if not cached.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        data = to_telephone_wav(synthesise(text, voice, DEFAULT_SPEED))
        part = cached.with_suffix(".part")
        part.write_bytes(data)
        part.replace(cached)
    with wave.open(io.BytesIO(cached.read_bytes()), "rb") as reader:
        return Speech(reader.readframes(reader.getnframes()), ESPEAK)


def _tones(seconds: float) -> bytes:
    """Alternating 440 Hz and 660 Hz half-second beeps with pauses: two speakers, audibly synthetic."""
    frames = bytearray()
    for index in range(int(seconds * SAMPLE_RATE)):
        slot, within = divmod(index, SAMPLE_RATE // 2)
        audible = within < SAMPLE_RATE * 2 // 5
        frequency = 440 if slot % 2 == 0 else 660
        value = 6000 * math.sin(2 * math.pi * frequency * index / SAMPLE_RATE) if audible else 0.0
        frames += struct.pack("<h", round(value))
    return bytes(frames)


def call_wav(speech: Speech, talk_s: int) -> bytes:
    """The call's recording: the dialogue, then silence, exactly ``talk_s`` seconds long."""
    wanted = talk_s * SAMPLE_RATE * 2
    frames = speech.frames[:wanted].ljust(wanted, b"\x00")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(frames)
    return buffer.getvalue()


def write_recording(path: Path, data: bytes) -> bool:
    """Write the file unless it is there already (a verified file is never rewritten); True if written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    part.write_bytes(data)
    part.replace(path)
    return True
