"""Configuration is validated at start; a wrong value is named with its variable."""

from __future__ import annotations

import pytest

from steward.settings import ConfigError, load_settings


def test_gateway_defaults_leave_room_for_two_batches_in_flight() -> None:
    s = load_settings()
    assert s.max_in_flight >= 2 * s.batch_size and 1 <= s.db_writers <= 8


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"STEWARD_BATCH_SIZE": "20000", "STEWARD_MAX_IN_FLIGHT": "10000"}, "max_in_flight (STEWARD_MAX_IN_FLIGHT)"),
        ({"STEWARD_DB_WRITERS": "0"}, "db_writers (STEWARD_DB_WRITERS)"),
        ({"STEWARD_MAX_IN_FLIGHT": "70000"}, "max_in_flight (STEWARD_MAX_IN_FLIGHT)"),
    ],
)
def test_wrong_gateway_settings_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], words: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert words in str(info.value)
