"""The ``[notify]`` settings (mrf.settings) and the NotifyConfig built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrf.settings import NotifySettings, SettingsError, load_settings
from notify.service import notify_config
from notify.smime import SmimeContentAlgorithm


def test_defaults_match_the_notifier_defaults() -> None:
    config = notify_config(load_settings(environ={}).notify)
    subscription = config.subscription
    assert (subscription.min_notify_interval, subscription.min_expires) == (5.0, 60)
    assert (subscription.max_expires, subscription.default_expires) == (3600, 3600)
    assert config.algorithm is SmimeContentAlgorithm.AES128_GCM


def test_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "mrf.toml"
    path.write_text("[notify]\nmin_interval = 0\nmin_expires = 10\nmax_expires = 600\n")
    settings = load_settings(path, environ={"MRF_NOTIFY_ALGORITHM": "aes256_gcm"})
    assert settings.notify == NotifySettings(0.0, 10, 600, "aes256_gcm")
    config = notify_config(settings.notify)
    assert config.subscription.default_expires == 600  # clamped into the bounds
    assert config.algorithm is SmimeContentAlgorithm.AES256_GCM


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MRF_NOTIFY_MIN_INTERVAL": "-1"}, "MRF_NOTIFY_MIN_INTERVAL"),
        ({"MRF_NOTIFY_MIN_EXPIRES": "0"}, "MRF_NOTIFY_MIN_EXPIRES"),
        ({"MRF_NOTIFY_MIN_EXPIRES": "900", "MRF_NOTIFY_MAX_EXPIRES": "600"}, "exceeds"),
        ({"MRF_NOTIFY_ALGORITHM": "des"}, "aes128_gcm"),
    ],
)
def test_bad_values_are_clear_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=environ)
