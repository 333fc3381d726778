"""Audio helpers in pure Python: RIFF/WAVE headers, 16-bit PCM, and a windowed-sinc resampler.

Used to check Asterisk's recordings (``recordings/``) and to render prompt sound files
(``voice/prompts.py``). No third-party audio library and no ``audioop`` (deprecated).
"""

from __future__ import annotations

import io
import math
import operator
import struct
import sys
import wave
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

PCM = 0x0001
GSM610 = 0x0031  # Asterisk's "wav49" (file extension .WAV): GSM 06.10 in Microsoft's packing
EXTENSIBLE = 0xFFFE
FORMAT_NAMES = {PCM: "pcm", 0x0003: "float", 0x0006: "alaw", 0x0007: "ulaw", GSM610: "gsm", EXTENSIBLE: "ext"}


class WavError(ValueError):
    """The file is not a readable RIFF/WAVE file; the message says why."""


@dataclass(frozen=True)
class WavInfo:
    format_tag: int
    channels: int
    sample_rate: int
    avg_bytes_per_s: int
    block_align: int
    bits_per_sample: int
    data_offset: int
    data_bytes: int
    fact_samples: int | None = None

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.format_tag, f"0x{self.format_tag:04x}")

    @property
    def duration_s(self) -> float:
        """Data bytes over the average byte rate: right for PCM, GSM (WAV49), a-law, µ-law alike."""
        return self.data_bytes / self.avg_bytes_per_s


def read_wav_info(handle: BinaryIO, file_size: int) -> WavInfo:
    """Walk the RIFF chunks up to ``data``; refuse truncated, unfinished and malformed headers.

    An unfinished header (data size 0 or -1 with audio after it) is what a recorder leaves when it
    is killed before it closes the file: the audio is there but its length is not known.
    """
    head = handle.read(12)
    if len(head) < 12:
        raise WavError(f"too short for a RIFF header ({file_size} bytes)")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    position = 12
    fmt: tuple[int, ...] | None = None
    fact: int | None = None
    while True:
        header = handle.read(8)
        if len(header) < 8:
            raise WavError("no data chunk" if fmt else "no fmt chunk")
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        position += 8
        if chunk_id == b"data":
            return _data_chunk(fmt, fact, position, size, file_size - position)
        if size > file_size - position:
            raise WavError(f"truncated {chunk_id!r} chunk")
        body = handle.read(size + (size & 1))  # chunks are padded to an even length
        if chunk_id == b"fmt ":
            if size < 16:
                raise WavError(f"fmt chunk too short ({size} bytes)")
            fmt = struct.unpack("<HHIIHH", body[:16])
            _tag, channels, rate, avg, align, _bits = fmt
            if channels < 1 or rate < 1 or avg < 1 or align < 1:
                raise WavError(
                    f"impossible fmt: channels={channels} rate={rate} bytes/s={avg} block align={align}"
                )
        elif chunk_id == b"fact" and size >= 4:
            fact = struct.unpack("<I", body[:4])[0]
        position += len(body)


def _data_chunk(
    fmt: tuple[int, ...] | None, fact: int | None, position: int, size: int, remaining: int
) -> WavInfo:
    if fmt is None:
        raise WavError("data chunk before the fmt chunk")
    if size in (0, 0xFFFFFFFF) and remaining > 0:
        raise WavError(f"header not finalised: data size {size}, {remaining} bytes follow")
    if size > remaining:
        raise WavError(f"truncated: data chunk claims {size} bytes, {remaining} present")
    tag, channels, rate, avg, align, bits = fmt
    return WavInfo(tag, channels, rate, avg, align, bits, position, size, fact)


def pcm_duration(handle: BinaryIO) -> float:
    """Duration of a PCM WAV file through the standard library's reader."""
    try:
        with wave.open(handle, "rb") as reader:
            return reader.getnframes() / reader.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError) as exc:
        raise WavError(f"PCM reader: {exc}") from exc


# --- 16-bit PCM samples --------------------------------------------------------------------------


def read_pcm16_mono(data: bytes) -> tuple[int, list[int]]:
    """(sample rate, samples) of a 16-bit PCM WAV file; several channels are mixed down."""
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            rate, width, channels = reader.getframerate(), reader.getsampwidth(), reader.getnchannels()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise WavError(f"not a PCM WAV file: {exc}") from exc
    if width != 2:
        raise WavError(f"expected 16-bit samples, got {8 * width}-bit")
    samples = array("h")
    samples.frombytes(frames[: len(frames) - len(frames) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if channels == 1:
        return rate, samples.tolist()
    mixed = [sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)]
    return rate, mixed


def pcm16_wav(samples: Sequence[float], rate: int) -> bytes:
    """A mono 16-bit PCM WAV file; samples are rounded and clipped to the 16-bit range."""
    clipped = array("h", (max(-32768, min(32767, round(value))) for value in samples))
    if sys.byteorder == "big":
        clipped.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(clipped.tobytes())
    return buffer.getvalue()


# --- resampling ----------------------------------------------------------------------------------

HALF_TAPS = 64  # taps either side of the centre: 128-tap filter, ~0.9 kHz transition at 22.05 kHz
KAISER_BETA = 8.0  # about 80 dB stop-band attenuation
PASS_FRACTION = 0.875  # cut-off as a fraction of the lower Nyquist frequency (8 kHz → 3.5 kHz)


def _bessel_i0(x: float) -> float:
    total, term, k = 1.0, 1.0, 1
    while term > 1e-12 * total:
        term *= (x / (2 * k)) ** 2
        total += term
        k += 1
    return total


@lru_cache(maxsize=8)
def _phases(up: int, down: int, cutoff: float, half: int) -> tuple[tuple[float, ...], ...]:
    """One filter per fractional input position p/up, normalised to unit gain at DC.

    ``cutoff`` is in cycles per input sample. Tap j of phase p weighs input sample k0 - half + 1 + j
    for an output instant k0 + p/up.
    """
    norm = _bessel_i0(KAISER_BETA)
    phases = []
    for phase in range(up):
        frac = phase / up
        taps = []
        for j in range(2 * half):
            offset = (j - half + 1) - frac  # input sample minus the output instant, in samples
            ratio = offset / half
            window = _bessel_i0(KAISER_BETA * math.sqrt(1 - ratio * ratio)) / norm if abs(ratio) < 1 else 0.0
            arg = 2 * cutoff * offset
            sinc = 1.0 if arg == 0 else math.sin(math.pi * arg) / (math.pi * arg)
            taps.append(2 * cutoff * sinc * window)
        gain = sum(taps)
        phases.append(tuple(tap / gain for tap in taps))
    return tuple(phases)


def resample(
    samples: Sequence[float], from_rate: int, to_rate: int, *, half_taps: int = HALF_TAPS
) -> list[float]:
    """Band-limited rational resampling with a Kaiser-windowed sinc (polyphase, pure Python).

    Going down, the low-pass sits at ``PASS_FRACTION`` of the new Nyquist frequency, so tones above it
    are removed instead of folding back into the band (6 kHz would otherwise alias to 2 kHz at 8 kHz).
    """
    if from_rate == to_rate:
        return [float(value) for value in samples]
    common = math.gcd(from_rate, to_rate)
    up, down = to_rate // common, from_rate // common  # output instant n sits at input n * down / up
    cutoff = PASS_FRACTION * 0.5 * min(from_rate, to_rate) / from_rate
    phases = _phases(up, down, cutoff, half_taps)
    padded = [0.0] * half_taps + [float(value) for value in samples] + [0.0] * half_taps
    count = len(samples) * up // down
    out = []
    mul = operator.mul
    for n in range(count):
        k0, phase = divmod(n * down, up)
        start = k0 + 1  # k0 - half + 1, shifted by the half_taps zeros in front
        out.append(sum(map(mul, phases[phase], padded[start : start + 2 * half_taps])))
    return out
