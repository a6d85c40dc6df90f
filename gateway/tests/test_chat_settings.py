"""The chat socket's settings (D8, D9, D12)."""

from __future__ import annotations

import pytest

from gateway.settings import Settings, SettingsError


def test_defaults_are_the_contracts():
    settings = Settings.from_env({})
    assert settings.socket_origin_hosts == ("localhost", "127.0.0.1")
    assert (settings.socket_max_frame_bytes, settings.socket_rate, settings.socket_burst) == (16384, 5.0, 10)
    assert settings.socket_send_queue == 256
    assert settings.socket_recheck_seconds <= 30
    assert settings.chat_rooms_exchange == "edusphere.chat.rooms"


def test_from_the_environment():
    settings = Settings.from_env(
        {
            "SOCKET_ORIGIN_HOSTS": "Chat.Example.com, localhost",
            "SOCKET_MAX_FRAME_BYTES": "4096",
            "SOCKET_RATE": "2.5",
            "SOCKET_BURST": "3",
            "SOCKET_SEND_QUEUE": "16",
            "SOCKET_RECHECK_SECONDS": "5",
            "CHAT_ROOMS_EXCHANGE": "other.rooms",
        }
    )
    assert settings.socket_origin_hosts == ("chat.example.com", "localhost")
    assert (settings.socket_max_frame_bytes, settings.socket_rate, settings.socket_burst) == (4096, 2.5, 3)
    assert (settings.socket_send_queue, settings.socket_recheck_seconds) == (16, 5.0)
    assert settings.chat_rooms_exchange == "other.rooms"


@pytest.mark.parametrize(
    "name, value",
    [
        ("SOCKET_RECHECK_SECONDS", "31"),  # D12: at least every 30 s
        ("SOCKET_RECHECK_SECONDS", "0"),
        ("SOCKET_SEND_QUEUE", "0"),
        ("SOCKET_BURST", "0"),
        ("SOCKET_MAX_FRAME_BYTES", "0"),
        ("SOCKET_RATE", "-1"),
        ("SOCKET_RATE", "fast"),
    ],
)
def test_unusable_values_are_refused(name, value):
    with pytest.raises(SettingsError):
        Settings.from_env({name: value})
