"""Prompt sound files: the resampler, the render loop (layout, manifest, skipping) and real espeak-ng."""

from __future__ import annotations

import io
import itertools
import math
import os
import shutil
import time
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from callcenter import audio
from callcenter.cli import cli
from callcenter.ivr.flow import load_flows
from callcenter.voice import prompts
from callcenter.voice.agi.hotline import sound_file

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ESPEAK = os.environ.get("CALLCENTER_REQUIRE_ESPEAK") == "1" or os.environ.get("CI") == "true"


def tone(freq: float, rate: int, seconds: float, amplitude: float = 10_000.0) -> list[float]:
    return [amplitude * math.sin(2 * math.pi * freq * i / rate) for i in range(int(rate * seconds))]


def level(samples: list[float], freq: float, rate: int) -> float:
    """Amplitude of ``freq`` in ``samples`` (Goertzel)."""
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for value in samples:
        s1, s2 = value + coeff * s1 - s2, s1
    return 2 * math.sqrt(max(s1 * s1 + s2 * s2 - coeff * s1 * s2, 0.0)) / len(samples)


def rms(samples: list[float]) -> float:
    return math.sqrt(sum(value * value for value in samples) / len(samples))


# --- the resampler -------------------------------------------------------------------------------


def test_a_1khz_tone_stays_1khz_at_full_level() -> None:
    out = audio.resample(tone(1000, 22050, 1.0), 22050, 8000)
    assert len(out) == 8000
    core = out[100:-100]  # away from the zero padding at the edges
    assert level(core, 1000, 8000) == pytest.approx(10_000, rel=0.01)
    assert level(core, 1100, 8000) < 100 and level(core, 900, 8000) < 100
    crossings = sum(1 for a, b in itertools.pairwise(core) if a < 0 <= b)
    assert crossings == pytest.approx(1000 * len(core) / 8000, abs=2)


@pytest.mark.parametrize("freq", [4500, 6000, 9000])
def test_tones_above_the_new_nyquist_are_removed_not_folded(freq: int) -> None:
    out = audio.resample(tone(freq, 22050, 1.0), 22050, 8000)[100:-100]
    assert 20 * math.log10(rms(out) / (10_000 / math.sqrt(2))) < -60  # 6 kHz would alias to 2 kHz
    assert level(out, abs(8000 - freq), 8000) < 10


def test_the_telephone_band_passes() -> None:
    for freq in (300, 2000, 3000):
        out = audio.resample(tone(freq, 22050, 0.5), 22050, 8000)[100:-100]
        assert rms(out) == pytest.approx(10_000 / math.sqrt(2), rel=0.02), freq


def test_dc_and_same_rate() -> None:
    assert audio.resample([1000.0] * 2205, 22050, 8000)[400] == pytest.approx(1000.0, abs=0.5)
    assert audio.resample([1, 2, 3], 8000, 8000) == [1.0, 2.0, 3.0]
    up = audio.resample(tone(500, 8000, 0.5), 8000, 16000)
    assert len(up) == 8000 and level(up[200:-200], 500, 16000) == pytest.approx(10_000, rel=0.01)


def test_wav_round_trip_clips_to_16_bits() -> None:
    data = audio.pcm16_wav([0, 40_000, -40_000, 1.6], 8000)
    assert audio.read_pcm16_mono(data) == (8000, [0, 32767, -32768, 2])


# --- rendering, with a stand-in synthesiser ------------------------------------------------------


class FakeSynth:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.factory_calls = 0

    def factory(self) -> prompts.Synthesiser:
        self.factory_calls += 1
        return self.synthesise

    def synthesise(self, text: str, voice: str, speed: int) -> bytes:
        self.calls.append((text, voice, speed))
        return audio.pcm16_wav(tone(440, 22050, 0.1 * len(text) / 10 + 0.1), 22050)


def test_every_prompt_of_every_language_lands_where_the_agi_script_looks(tmp_path: Path) -> None:
    flows = load_flows(ROOT / "ivr_flows")
    synth = FakeSynth()
    result = prompts.render_prompts(flows.values(), tmp_path, synth.factory)
    expected = {
        sound_file(flow.name, language, prompt) + ".wav"
        for flow in flows.values()
        for language in flow.flow.languages
        for prompt in flow.prompts
    }
    assert set(result.rendered) == expected and not result.unchanged
    welcome = tmp_path / "callcenter" / "hotline" / "zh" / "welcome.wav"
    with wave.open(str(welcome)) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (8000, 1, 2)
    assert (flows["hotline"].text("welcome", "zh"), "cmn", prompts.DEFAULT_SPEED) in synth.calls
    voices = {voice for _text, voice, _speed in synth.calls}
    assert voices == {"cmn", "en"}
    assert oct(welcome.stat().st_mode & 0o777) == oct(0o644)


def test_unchanged_prompts_are_skipped_changed_ones_rendered(tmp_path: Path) -> None:
    flows = list(load_flows(ROOT / "ivr_flows").values())
    prompts.render_prompts(flows, tmp_path, FakeSynth().factory)
    again = FakeSynth()
    result = prompts.render_prompts(flows, tmp_path, again.factory)
    assert result.rendered == [] and again.factory_calls == 0  # espeak-ng not even needed

    # A new speed changes every fingerprint; a deleted file is rendered again.
    (tmp_path / "callcenter" / "hotline" / "en" / "welcome.wav").unlink()
    result = prompts.render_prompts(flows, tmp_path, again.factory)
    assert result.rendered == ["callcenter/hotline/en/welcome.wav"]
    assert (
        len(prompts.render_prompts(flows, tmp_path, again.factory, speed=120).rendered)
        == len(result.unchanged) + 1
    )
    forced = prompts.render_prompts(flows, tmp_path, again.factory, speed=120, force=True)
    assert forced.unchanged == []


def test_a_changed_text_re_renders_that_prompt_only(tmp_path: Path) -> None:
    flow = load_flows(ROOT / "ivr_flows")["hotline"]
    prompts.render_prompts([flow], tmp_path, FakeSynth().factory)
    texts = {**flow.prompts, "welcome": {**flow.prompts["welcome"], "en": "Hello."}}
    changed = flow.model_copy(update={"prompts": texts})
    result = prompts.render_prompts([changed], tmp_path, FakeSynth().factory)
    assert result.rendered == ["callcenter/hotline/en/welcome.wav"]


def test_missing_espeak_names_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(prompts.PromptRenderError, match="apt-get install espeak-ng"):
        prompts.espeak_ng()
    with pytest.raises(prompts.PromptRenderError, match="espeak-ng"):
        prompts.render_prompts(load_flows(ROOT / "ivr_flows").values(), tmp_path)


# --- the real espeak-ng --------------------------------------------------------------------------


@pytest.fixture
def espeak() -> prompts.Synthesiser:
    if shutil.which("espeak-ng") is None:
        message = "espeak-ng is not installed (apt-get install espeak-ng)"
        if REQUIRE_ESPEAK:
            pytest.fail(message)  # CI installs it: a silent skip would hide a broken renderer
        pytest.skip(message)
    return prompts.espeak_ng()


@pytest.mark.espeak
@pytest.mark.parametrize(("text", "voice"), [("您好,欢迎致电。", "cmn"), ("-Press one.", "en")])
def test_espeak_renders_a_telephone_wav(espeak: prompts.Synthesiser, text: str, voice: str) -> None:
    started = time.perf_counter()
    wav = prompts.to_telephone_wav(espeak(text, voice, prompts.DEFAULT_SPEED))
    elapsed = time.perf_counter() - started
    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (8000, 1, 2)
        seconds = reader.getnframes() / 8000
    assert 0.5 < seconds < 5.0
    _rate, samples = audio.read_pcm16_mono(wav)
    assert rms([float(value) for value in samples]) > 300  # speech, not silence
    assert elapsed < 5.0


@pytest.mark.espeak
def test_render_prompts_command(
    espeak: prompts.Synthesiser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCENTER_SETTINGS", str(ROOT / "settings.toml"))
    monkeypatch.setenv("CALLCENTER_STORAGE__SOUNDS_DIR", str(tmp_path / "sounds"))
    runner = CliRunner()
    result = runner.invoke(cli, ["render-prompts"], obj={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "rendered callcenter/hotline/zh/welcome.wav" in result.output
    assert (tmp_path / "sounds" / "callcenter" / "hotline" / "zh" / "main_menu.wav").is_file()
    result = runner.invoke(cli, ["render-prompts"], obj={}, catch_exceptions=False)
    assert result.output.startswith("0 rendered, ")
    result = runner.invoke(cli, ["render-prompts", "--voice", "zh"], obj={})
    assert result.exit_code == 2 and "LANG=VOICE" in result.output
