"""What a recording file holds, read without a database: formats, broken headers, unsafe paths."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest

from recordings.media import MonitorFolderMissing, inspect, monitor_root
from tests.recordings.conftest import pcm_wav, wav49


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "monitor"
    folder.mkdir()
    return monitor_root(folder)


def test_pcm_wav_size_duration_and_checksum(root: Path) -> None:
    path = pcm_wav(root / "2026" / "a.wav", 2.5)
    check = inspect(root, "2026/a.wav")
    assert check.status == "verified" and check.problem is None
    assert check.duration_s == 2.5
    assert check.size_bytes == path.stat().st_size == 44 + 2.5 * 16000
    assert check.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert check.format == "wav/pcm"


def test_wav49_gsm_duration_from_data_bytes_over_byte_rate(root: Path) -> None:
    wav49(root / "b.WAV", blocks=250)  # 250 × 40 ms
    check = inspect(root, "b.WAV")
    assert (check.status, check.duration_s, check.format) == ("verified", 10.0, "wav/gsm")


def test_headerless_gsm_and_unknown_formats(root: Path) -> None:
    (root / "c.gsm").write_bytes(b"\xd0" * 33 * 150)  # 150 frames of 20 ms
    assert inspect(root, "c.gsm").duration_s == 3.0
    (root / "d.mp3").write_bytes(b"ID3")
    check = inspect(root, "d.mp3")
    assert (
        check.status == "verified"
        and check.duration_s is None
        and "duration unknown" in (check.problem or "")
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"RIFF", "too short"),
        (b"RIFX\x00\x00\x00\x00WAVEfmt ", "not a RIFF/WAVE"),
        (b"RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00", "data chunk before the fmt chunk"),
        (
            b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
            + struct.pack("<HHIIHH", 1, 0, 8000, 16000, 2, 16),
            "impossible fmt",
        ),
    ],
)
def test_corrupt_headers_are_invalid_with_the_reason(root: Path, content: bytes, reason: str) -> None:
    (root / "x.wav").write_bytes(content)
    check = inspect(root, "x.wav")
    assert check.status == "invalid"
    assert reason in (check.problem or "")


def test_truncated_and_unfinished_files_are_invalid(root: Path) -> None:
    path = pcm_wav(root / "t.wav", 1.0)
    path.write_bytes(path.read_bytes()[:-1000])  # the copy stopped short
    assert "truncated" in (inspect(root, "t.wav").problem or "")
    wav49(root / "u.WAV", blocks=10, data_size=0)  # Asterisk was killed before it closed the file
    check = inspect(root, "u.WAV")
    assert check.status == "invalid" and "not finalised" in (check.problem or "")
    assert check.size_bytes and check.sha256  # what is there is still described


def test_missing_file(root: Path) -> None:
    check = inspect(root, "2026/nothing.wav")
    assert check.status == "missing" and "nothing.wav" in (check.problem or "")


@pytest.mark.parametrize("uri", ["../outside.wav", "/etc/passwd", "a/../../outside.wav", ""])
def test_paths_leaving_the_folder_are_refused(root: Path, uri: str) -> None:
    pcm_wav(root.parent / "outside.wav", 1.0)
    check = inspect(root, uri)
    assert check.status == "invalid" and "monitor folder" in (check.problem or "")
    assert check.sha256 is None  # never opened


def test_a_symlink_leading_outside_is_refused_one_inside_is_followed(root: Path) -> None:
    secret = pcm_wav(root.parent / "secret.wav", 1.0)
    (root / "link.wav").symlink_to(secret)
    check = inspect(root, "link.wav")
    assert check.status == "invalid" and "outside the monitor folder" in (check.problem or "")
    pcm_wav(root / "real.wav", 1.0)
    (root / "alias.wav").symlink_to(root / "real.wav")
    assert inspect(root, "alias.wav").status == "verified"


def test_a_folder_or_fifo_is_not_a_recording(root: Path) -> None:
    (root / "dir.wav").mkdir()
    assert inspect(root, "dir.wav").problem == "not a regular file"
    os.mkfifo(root / "pipe.wav")
    assert inspect(root, "pipe.wav").problem == "not a regular file"  # and the check did not hang


def test_an_absent_monitor_folder_is_an_error_not_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MonitorFolderMissing, match="mounted"):
        monitor_root(tmp_path / "not-mounted")


def test_header_only_files_are_empty_not_verified_nor_invalid(root: Path) -> None:
    """What MixMonitor's b option leaves for a call never bridged: the header, no audio."""
    pcm_wav(root / "pcm.wav", 0.0)
    check = inspect(root, "pcm.wav")
    assert (check.status, check.size_bytes, check.duration_s, check.format) == ("empty", 44, 0.0, "wav/pcm")
    assert check.sha256 and "header-only" in (check.problem or "")
    wav49(root / "gsm.WAV", blocks=0)
    assert inspect(root, "gsm.WAV").status == "empty"
    (root / "raw.sln").write_bytes(b"")  # a headerless format has no header to leave
    assert inspect(root, "raw.sln").status == "empty"
    (root / "no-header.wav").write_bytes(b"")  # a WAV without even its header is broken
    assert inspect(root, "no-header.wav").status == "invalid"
    pcm_wav(root / "short.wav", 0.02)  # one 20 ms frame is audio
    assert inspect(root, "short.wav").status == "verified"
