"""mrf/settings.py: the ``node`` section and ``kms.database_url`` (docs/scaling.md)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mrf.settings import SettingsError, default_node_name, load_settings


def test_node_defaults_are_hostname_derived_and_homes_off() -> None:
    settings = load_settings(environ={})
    assert settings.node.name == default_node_name()
    assert settings.node.name.startswith(socket.gethostname().lower()[:8].strip("-."))
    assert settings.node.homes is False and settings.node.lease == 4.0
    assert settings.node_contact == "sip:127.0.0.1:5060"
    assert settings.kms.database_url is None


def test_node_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "mrf.toml"
    config.write_text(
        '[node]\nname = "mrf-1"\nhomes = true\nlease = 4\n'
        '[kms]\ndatabase_url = "postgresql://postgres@127.0.0.1:5432/kms"\n'
        '[sip]\nhost = "127.0.0.11"\nport = 5070\n'
    )
    settings = load_settings(config, environ={"MRF_NODE_NAME": "mrf-2"})
    assert (settings.node.name, settings.node.homes, settings.node.lease) == ("mrf-2", True, 4.0)
    assert settings.node_contact == "sip:127.0.0.11:5070"
    assert settings.kms.database_url == "postgresql://postgres@127.0.0.1:5432/kms"
    env = {"MRF_NODE_CONTACT": "sip:10.0.0.5:5060"}
    assert load_settings(environ=env).node_contact == "sip:10.0.0.5:5060"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MRF_NODE_NAME": "two words"}, "MRF_NODE_NAME: 1-64 characters"),
        ({"MRF_NODE_NAME": "-x"}, "MRF_NODE_NAME: 1-64 characters"),
        ({"MRF_NODE_LEASE": "0.5"}, "MRF_NODE_LEASE: must be a number of seconds"),
        ({"MRF_NODE_CONTACT": "sip:user@host"}, "MRF_NODE_CONTACT: must be sip:host"),
        ({"MRF_KMS_DATABASE_URL": "mysql://x"}, "MRF_KMS_DATABASE_URL: scheme must be"),
    ],
)
def test_bad_node_settings_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=env)
