"""mrf.settings: defaults, TOML, environment precedence and every validation message."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mrf.settings import ENVIRONMENT, KEYS, Settings, SettingsError, load_settings

EXAMPLE = """\
data_dir = "var"
database_url = "sqlite:///var/mrf.db"
[sip]
host = "127.0.0.1"
port = 5060
tls_port = 5061
domain = "127.0.0.1"
trusted_proxies = ["127.0.0.2"]
[web]
host = "127.0.0.1"
port = 8080
[media]
host = "127.0.0.1"
rtp_ports = [40000, 40999]
[msrp]
port = 2855
[bfcp]
port = 2856
[kms]
url = "http://127.0.0.1:8090/kms"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mrf.toml"
    path.write_text(text)
    return path


def test_embedded_defaults_are_loopback() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.data_dir == Path("var")
    assert settings.database_url == "sqlite:///var/mrf.db"
    assert (settings.sip.host, settings.sip.port, settings.sip.tls_port) == (
        "127.0.0.1",
        5060,
        5061,
    )
    assert settings.sip.domain == "127.0.0.1"
    assert settings.sip.trusted_proxies == ()
    assert (settings.web.host, settings.web.port) == ("127.0.0.1", 8080)
    assert settings.media.rtp_ports == (40000, 40999)
    assert (settings.msrp.port, settings.bfcp.port) == (2855, 2856)
    assert settings.kms.url == "http://127.0.0.1:8090/kms"
    assert settings.tls.keylog_file is None
    assert settings.log_level == "INFO"
    assert settings.non_loopback_listeners() == ()


def test_interfaces_example_file_loads(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, EXAMPLE), environ={})
    assert settings.sip.trusted_proxies == ("127.0.0.2",)
    assert settings == Settings(sip=settings.sip, database_url="sqlite:///var/mrf.db"), (
        "every other value equals the defaults"
    )


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[sip]\nport = 5070\ndomain = "file.example"\n[web]\nport = 9000\n')
    environ = {
        "MRF_SIP_PORT": "6060",
        "MRF_SIP_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2,",
        "MRF_MEDIA_RTP_PORTS": "50000-50099",
        "MRF_LOG_LEVEL": "debug",
        "MRF_SIP_HOST": "0.0.0.0",
        "MRF_MIXER_MAX_SPEAKERS": "5",
    }
    settings = load_settings(path, environ)
    assert settings.sip.port == 6060  # env beats file
    assert settings.sip.domain == "file.example"  # file beats default
    assert settings.web.port == 9000
    assert settings.sip.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert settings.media.rtp_ports == (50000, 50099)
    assert settings.mixer.max_speakers == 5
    assert settings.log_level == "DEBUG"
    assert settings.non_loopback_listeners() == ("sip.host=0.0.0.0",)


def test_every_setting_has_an_environment_variable() -> None:
    assert sorted(key for key, _ in ENVIRONMENT.values()) == sorted(KEYS)
    assert "MRF_SIP_TLS_PORT" in ENVIRONMENT and "MRF_KMS_URL" in ENVIRONMENT


def test_database_url_follows_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={"MRF_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path
    assert settings.database_url == f"sqlite:///{tmp_path}/mrf.db"
    explicit = load_settings(
        environ={"MRF_DATA_DIR": str(tmp_path), "MRF_DATABASE_URL": "postgresql://db/mrf"}
    )
    assert explicit.database_url == "postgresql://db/mrf"


def test_addresses_are_normalised() -> None:
    settings = load_settings(environ={"MRF_SIP_DOMAIN": "Conf.Example.COM", "MRF_WEB_HOST": "::1"})
    assert settings.sip.domain == "conf.example.com"
    assert settings.web.host == "::1"
    v6 = load_settings(environ={"MRF_SIP_DOMAIN": "2001:DB8::1"})
    assert v6.sip.domain == "[2001:db8::1]"


def test_zero_means_ephemeral_port() -> None:
    settings = load_settings(environ={"MRF_SIP_PORT": "0", "MRF_MSRP_PORT": "0"})
    assert (settings.sip.port, settings.msrp.port) == (0, 0)


def test_floors_per_conference(tmp_path: Path) -> None:
    assert load_settings(environ={}).bfcp.floors == 1
    assert load_settings(write(tmp_path, "[bfcp]\nfloors = 3\n"), {}).bfcp.floors == 3
    assert load_settings(environ={"MRF_BFCP_FLOORS": "2"}).bfcp.floors == 2


@pytest.mark.parametrize(
    ("text", "environ", "required"),
    [
        ("", {}, False),  # loopback: off, so local tests and demos need no TLS
        ('[sip]\nhost = "0.0.0.0"\n', {}, True),  # anywhere else: on
        ('[sip]\nhost = "192.0.2.7"\nsdes_requires_tls = false\n', {}, False),
        ("", {"MRF_SIP_SDES_REQUIRES_TLS": "true"}, True),
    ],
)
def test_sdes_requires_tls_defaults_to_the_listener(
    tmp_path: Path, text: str, environ: dict[str, str], required: bool
) -> None:
    assert load_settings(write(tmp_path, text), environ).sip.sdes_needs_protection is required


def test_metrics_token_file(tmp_path: Path) -> None:
    token = tmp_path / "scrape.token"
    token.write_text("f" * 64 + "\n")
    path = write(tmp_path, f'[web]\nmetrics_token_file = "{token}"\n')
    assert load_settings(path, {}).web.metrics_token_file == token
    assert load_settings(environ={}).web.metrics_token_file is None
    for bad in ("short", "two words here " * 2, ""):
        token.write_text(bad)
        with pytest.raises(SettingsError, match="web.metrics_token_file: .* at least 16"):
            load_settings(path, {})
    token.unlink()
    with pytest.raises(SettingsError, match="web.metrics_token_file: cannot read"):
        load_settings(path, {})


def test_keylog_file_is_opt_in(tmp_path: Path) -> None:
    path = write(tmp_path, f'[tls]\nkeylog_file = "{tmp_path}/keys.log"\n')
    assert load_settings(path, {}).tls.keylog_file == tmp_path / "keys.log"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sip_port = 1\n", "mrf.toml: unknown setting 'sip_port' (did you mean 'sip.port'?)"),
        ("[sip]\nprot = 1\n", "unknown setting 'sip.prot' (did you mean 'sip.port'?)"),
        ("[sip]\nfrobnicate = 1\n", "unknown setting 'sip.frobnicate'"),
        ("sip = 5\n", "sip: must be a table ([sip])"),
        ("[sip]\nport = 70000\n", "mrf.toml: sip.port: must be in 0..65535, got 70000"),
        ("[sip]\nport = true\n", "sip.port: must be an integer, got True"),
        ('[web]\nport = "80"\n', "web.port: must be an integer, got '80'"),
        ('[sip]\nhost = "localhost"\n', "sip.host: not an IP address: 'localhost'"),
        ('[sip]\ndomain = "bad_domain!"\n', "sip.domain: not a host name or IP address"),
        ('[sip]\ntrusted_proxies = "127.0.0.2"\n', "sip.trusted_proxies: must be a list"),
        ('[sip]\ntrusted_proxies = ["x"]\n', "sip.trusted_proxies[0]: not an IP address: 'x'"),
        ("[sip]\nmax_message_size = 100\n", "sip.max_message_size: must be in 1500..1048576"),
        ("[media]\nrtp_ports = [40001, 40999]\n", "media.rtp_ports: must start on an even port"),
        ("[media]\nrtp_ports = [40000, 40000]\n", "media.rtp_ports: needs at least 2 ports"),
        ("[media]\nrtp_ports = [40000]\n", "media.rtp_ports: must be [first, last]"),
        ("[media]\nrtp_ports = [0, 10]\n", "media.rtp_ports[0]: must be in 1..65535, got 0"),
        ("[bfcp]\nfloors = 0\n", "mrf.toml: bfcp.floors: must be in 1..16, got 0"),
        ("[mixer]\nmax_speakers = 0\n", "mixer.max_speakers: must be in 1..32, got 0"),
        ('[kms]\nurl = "ftp://kms"\n', "kms.url: must be an http:// or https:// URL"),
        ('[kms]\nurl = "http://kms:99999/"\n', "kms.url: bad port in URL"),
        (
            'database_url = "mysql://db"\n',
            "database_url: scheme must be sqlite:// or postgresql://",
        ),
        ('log_level = "LOUD"\n', "log_level: must be one of DEBUG, INFO"),
        ('data_dir = ""\n', "data_dir: must be a non-empty string"),
        ("[sip\n", "mrf.toml: invalid TOML"),
    ],
)
def test_file_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MRF_SIP_PORT": "five"}, "MRF_SIP_PORT: must be an integer, got 'five'"),
        ({"MRF_WEB_PORT": "-1"}, "MRF_WEB_PORT: must be in 0..65535, got -1"),
        ({"MRF_MEDIA_RTP_PORTS": "40000"}, "MRF_MEDIA_RTP_PORTS: must look like 40000-40999"),
        ({"MRF_MEDIA_RTP_PORTS": "40000-x"}, "MRF_MEDIA_RTP_PORTS: must be an integer"),
        ({"MRF_SIP_TRUSTED_PROXIES": "1.2.3.4,nope"}, "MRF_SIP_TRUSTED_PROXIES[1]: not an IP"),
        ({"MRF_DATABASE_URL": "postgres://x"}, "MRF_DATABASE_URL: scheme must be sqlite://"),
        ({"MRF_MEDIA_HOST": "999.1.1.1"}, "MRF_MEDIA_HOST: not an IP address"),
    ],
)
def test_environment_errors_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ=environ)
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_unknown_environment_variable_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mrf.settings"):
        settings = load_settings(environ={"MRF_SIP_PROT": "1", "MRF_ADMIN_PASSWORD": "x"})
    assert settings == Settings()
    assert caplog.messages == [
        "ignoring unknown environment variable MRF_SIP_PROT (did you mean MRF_SIP_PORT?)"
    ]


def test_kms_embedded_and_mikey_prot_types(tmp_path: Path) -> None:
    default = load_settings(environ={})
    assert default.kms.serves_embedded and default.mikey.prot_type_tls == 241
    external = load_settings(write(tmp_path, '[kms]\nurl = "http://10.0.0.1/kms"\n'), environ={})
    assert not external.kms.serves_embedded
    forced = write(tmp_path, '[kms]\nurl = "http://127.0.0.1:9/k"\nembedded = true\n')
    assert load_settings(forced, environ={}).kms.serves_embedded
    env = {"MRF_KMS_EMBEDDED": "false", "MRF_MIKEY_PROT_TYPE_TLS": "250"}
    settings = load_settings(environ=env)
    assert not settings.kms.serves_embedded and settings.mikey.prot_type_tls == 250
    with pytest.raises(SettingsError, match="embedded: must be true or false"):
        load_settings(write(tmp_path, '[kms]\nembedded = "yes"\n'), environ={})
    with pytest.raises(SettingsError, match="must be in 2..255"):
        load_settings(write(tmp_path, "[mikey]\nprot_type_tls = 0\n"), environ={})
    with pytest.raises(SettingsError, match="must differ"):
        load_settings(write(tmp_path, "[mikey]\nprot_type_tls = 242\n"), environ={})
