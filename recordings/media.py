"""What a recording file on disk holds: size, duration, sha256, or why it cannot be used.

Formats Asterisk's MixMonitor and Record() write, by file extension:

* ``.wav``: 16-bit PCM in RIFF/WAVE (read with the standard library's ``wave``);
* ``.WAV`` (Asterisk's ``wav49``) and any other RIFF/WAVE codec: GSM 06.10 (format tag 0x31), a-law,
  µ-law…: the RIFF chunks are parsed here and the duration is data bytes / average bytes per second;
* headerless ``.gsm``, ``.ulaw``, ``.alaw``, ``.sln``…: duration from the size and the codec's rate.

A file that holds no audio at all (a RIFF/WAVE file whose data chunk is empty, e.g. the 44-byte
header MixMonitor's ``b`` option leaves for a call that was never bridged; a zero-byte headerless
file) is ``empty``: not verified, and not an error either.

Paths are relative to the monitor folder; one that escapes it (``..``, an absolute path, a symlink
leading outside) is refused without being opened.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from callcenter.audio import PCM, WavError, pcm_duration, read_wav_info

CHUNK_BYTES = 1 << 20

# Headerless formats Asterisk writes: bytes per second of audio.
RAW_BYTES_PER_S = {
    ".gsm": 1650,  # 33-byte frames, 50 per second
    ".ulaw": 8000,
    ".ul": 8000,
    ".mu": 8000,
    ".alaw": 8000,
    ".al": 8000,
    ".pcm": 8000,  # Asterisk's "pcm" is µ-law
    ".sln": 16000,
    ".raw": 16000,
    ".sln16": 32000,
    ".g722": 8000,
    ".g729": 1000,
}

Status = Literal["verified", "empty", "missing", "invalid"]

EMPTY = "no audio: a header-only file (MixMonitor's b option writes nothing until the call is bridged)"


@dataclass(frozen=True)
class MediaCheck:
    status: Status
    problem: str | None = None
    size_bytes: int | None = None
    duration_s: float | None = None
    sha256: str | None = None
    format: str | None = None


class MonitorFolderMissing(RuntimeError):
    """The monitor folder itself is absent (not mounted?): nothing can be judged missing."""


def monitor_root(folder: Path) -> Path:
    if not folder.is_dir():
        raise MonitorFolderMissing(
            f"monitor folder {folder} does not exist or is not a folder (not mounted?)"
        )
    return folder.resolve()


def locate(root: Path, uri: str) -> Path:
    """The file ``uri`` names under ``root`` (already resolved); ValueError if it escapes the folder."""
    relative = PurePosixPath(uri)
    if not uri or relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"path {uri!r} is not inside the monitor folder")
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"path {uri!r} leads outside the monitor folder (to {resolved})")
    return resolved


def inspect(root: Path, uri: str) -> MediaCheck:
    """Check one recording file. Never raises for a bad file: the result says what is wrong."""
    try:
        path = locate(root, uri)
    except ValueError as exc:
        return MediaCheck("invalid", str(exc))
    try:
        # O_NOFOLLOW: the path was resolved, so a symlink here appeared since; O_NONBLOCK: a FIFO
        # must not hang the check.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return MediaCheck("missing", f"no file {uri} in the monitor folder")
    except OSError as exc:
        return MediaCheck("invalid", f"cannot open: {exc.strerror or exc}")
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        return MediaCheck("invalid", "not a regular file")
    with os.fdopen(descriptor, "rb") as handle:
        return _describe(handle, path.suffix)


def _describe(handle: BinaryIO, suffix: str) -> MediaCheck:
    size = os.fstat(handle.fileno()).st_size
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK_BYTES):
        digest.update(chunk)
    sha256 = digest.hexdigest()
    if suffix.lower() == ".wav":
        return _describe_wav(handle, size, sha256)
    return _describe_raw(suffix.lower(), size, sha256)


def _describe_wav(handle: BinaryIO, size: int, sha256: str) -> MediaCheck:
    if size == 0:
        return MediaCheck("invalid", "empty file", 0, None, sha256)
    try:
        handle.seek(0)
        wav = read_wav_info(handle, size)
        duration = wav.duration_s
        if wav.format_tag == PCM:
            handle.seek(0)
            duration = pcm_duration(handle)
    except WavError as exc:
        return MediaCheck("invalid", f"unreadable WAV header: {exc}", size, None, sha256)
    status: Status = "empty" if wav.data_bytes == 0 else "verified"
    problem = EMPTY if status == "empty" else None
    return MediaCheck(status, problem, size, round(duration, 3), sha256, f"wav/{wav.format_name}")


def _describe_raw(suffix: str, size: int, sha256: str) -> MediaCheck:
    """A headerless file: its duration from its size (a known codec) or unknown."""
    rate = RAW_BYTES_PER_S.get(suffix)
    if rate is None:
        if size == 0:
            return MediaCheck("invalid", "empty file", 0, None, sha256)
        problem = f"duration unknown for {suffix or 'files without extension'}"
        return MediaCheck("verified", problem, size, None, sha256)
    if size == 0:  # what MixMonitor's b option leaves in a headerless format: nothing was bridged
        return MediaCheck("empty", EMPTY, 0, 0.0, sha256, suffix.lstrip("."))
    return MediaCheck("verified", None, size, round(size / rate, 3), sha256, suffix.lstrip("."))
