"""Render the prompt texts of the IVR flows to the sound files Asterisk plays.

Each prompt of each flow, in each of the flow's languages, becomes
``<out>/callcenter/<flow>/<lang>/<prompt>.wav``: 8 kHz mono 16-bit PCM, the layout
``voice/agi/hotline.py:sound_file`` names (Asterisk is given the path without extension).

Speech comes from espeak-ng (Debian package ``espeak-ng``), which writes 22 050 Hz; the samples
are resampled to 8 kHz here, with a band-limiting filter (``callcenter/audio.py``). The synthesiser
is a parameter, so tests and other engines can stand in for it.

A manifest (``<out>/callcenter/.render-manifest.json``) keeps a hash of each file's text, voice and
rendering settings: unchanged prompts are not rendered again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from callcenter import audio
from callcenter.exceptions import CallcenterError
from callcenter.ivr.flow import Flow
from callcenter.voice.agi.hotline import SOUNDS_PREFIX, sound_file

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
RENDER_VERSION = 1  # bump when the pipeline changes what it writes: every prompt is rendered again
MANIFEST = ".render-manifest.json"
ESPEAK = "espeak-ng"
DEFAULT_VOICES: Mapping[str, str] = {"zh": "cmn", "en": "en"}
DEFAULT_SPEED = 150  # words per minute; espeak-ng's own default (175) is hurried on the phone


class PromptRenderError(CallcenterError):
    """A prompt could not be rendered (no synthesiser, or it failed)."""


# A synthesiser turns (text, voice, speed) into the bytes of a PCM WAV file at any sample rate.
Synthesiser = Callable[[str, str, int], bytes]


def espeak_ng(executable: str | None = None, *, timeout_s: float = 60.0) -> Synthesiser:
    """The espeak-ng synthesiser; raises PromptRenderError at once if it is not installed."""
    found = executable or shutil.which(ESPEAK)
    if not found or not Path(found).exists():
        raise PromptRenderError(
            "espeak-ng is not installed: install the Debian package 'espeak-ng' "
            "(apt-get install espeak-ng), or provide the sound files yourself"
        )

    def synthesise(text: str, voice: str, speed: int) -> bytes:
        with tempfile.TemporaryDirectory(prefix="callcenter-tts-") as folder:
            text_file, wav_file = Path(folder) / "text.txt", Path(folder) / "out.wav"
            text_file.write_text(text, encoding="utf-8")  # a file, so a text starting with "-" is text
            result = subprocess.run(
                [found, "-v", voice, "-s", str(speed), "-b", "1", "-f", str(text_file), "-w", str(wav_file)],
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
            if result.returncode != 0 or not wav_file.exists():
                error = result.stderr.decode("utf-8", "replace").strip() or f"exit code {result.returncode}"
                raise PromptRenderError(f"espeak-ng failed for voice {voice!r}: {error}")
            return wav_file.read_bytes()

    return synthesise


def to_telephone_wav(wav: bytes) -> bytes:
    """Any 16-bit PCM WAV → 8 kHz mono 16-bit PCM WAV."""
    rate, samples = audio.read_pcm16_mono(wav)
    return audio.pcm16_wav(audio.resample(samples, rate, SAMPLE_RATE), SAMPLE_RATE)


@dataclass(frozen=True)
class PromptJob:
    flow: str
    language: str
    prompt: str
    text: str
    voice: str
    speed: int

    @property
    def relative_path(self) -> str:
        return sound_file(self.flow, self.language, self.prompt) + ".wav"

    @property
    def fingerprint(self) -> str:
        identity = json.dumps(
            [RENDER_VERSION, SAMPLE_RATE, self.voice, self.speed, self.text], ensure_ascii=False
        )
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()


@dataclass
class RenderResult:
    rendered: list[str] = field(default_factory=list)  # relative paths
    unchanged: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time spent synthesising and resampling
    audio_s: float = 0.0  # length of the audio rendered


def prompt_jobs(
    flows: Iterable[Flow], voices: Mapping[str, str] = DEFAULT_VOICES, speed: int = DEFAULT_SPEED
) -> list[PromptJob]:
    """Every (flow, language, prompt) to render, in a stable order."""
    jobs = []
    for flow in flows:
        for language in flow.flow.languages:
            voice = voices.get(language, language)
            for prompt in sorted(flow.prompts):
                jobs.append(PromptJob(flow.name, language, prompt, flow.text(prompt, language), voice, speed))
    return jobs


def render_prompts(
    flows: Iterable[Flow],
    out_dir: Path,
    synthesiser: Callable[[], Synthesiser] = espeak_ng,
    *,
    voices: Mapping[str, str] = DEFAULT_VOICES,
    speed: int = DEFAULT_SPEED,
    force: bool = False,
    progress: Callable[[PromptJob, bool], None] | None = None,
) -> RenderResult:
    """Render the flows' prompts under ``out_dir``; skip those whose text and settings did not change.

    ``synthesiser`` is a factory, called only when something has to be rendered: a run where every
    file is current does not need espeak-ng installed.
    """
    root = out_dir / SOUNDS_PREFIX
    manifest_path = root / MANIFEST
    manifest = _read_manifest(manifest_path)
    result = RenderResult()
    synthesise: Synthesiser | None = None
    try:
        for job in prompt_jobs(flows, voices, speed):
            target = out_dir / job.relative_path
            if not force and manifest.get(job.relative_path) == job.fingerprint and target.is_file():
                result.unchanged.append(job.relative_path)
                if progress:
                    progress(job, False)
                continue
            if synthesise is None:
                synthesise = synthesiser()
            started = time.perf_counter()
            wav = to_telephone_wav(synthesise(job.text, job.voice, job.speed))
            result.seconds += time.perf_counter() - started
            result.audio_s += (len(wav) - 44) / (2 * SAMPLE_RATE)
            _write_atomically(target, wav)
            manifest[job.relative_path] = job.fingerprint
            result.rendered.append(job.relative_path)
            if progress:
                progress(job, True)
    finally:
        if result.rendered:
            _write_atomically(manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n")
    return result


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("prompt manifest %s unreadable (%s): rendering every prompt", path, exc)
        return {}
    return {str(key): str(value) for key, value in data.items()} if isinstance(data, dict) else {}


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)  # Asterisk runs as another user and must read the files
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
