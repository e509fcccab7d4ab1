"""Process settings: embedded defaults, a TOML file, then ``MRF_*`` environment variables.

Precedence is defaults < file < environment.  Every value is validated once, at
start, and a bad one raises :class:`SettingsError` naming where it came from
(``mrf.toml: sip.port: ...`` or ``MRF_SIP_PORT: ...``) and what is wrong with it.
Unknown keys in the file are rejected with a did-you-mean suggestion.

The defaults listen on loopback only (see ``docs/configuration.md`` and the
interfaces contract); listening anywhere else is an explicit setting, and
:meth:`Settings.non_loopback_listeners` lets the server warn about it.

Relative paths (``data_dir``, ``tls.keylog_file``, SQLite file names) are relative
to the current directory.  When ``database_url`` is not set it follows
``data_dir``: ``sqlite:///<data_dir>/mrf.db``.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from focus.sip.message import SipError
from focus.sip.uri import SipUri

logger = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_DATA_DIR = Path("var")
MIN_MESSAGE_SIZE = 1500  # RFC 3261 §18.1.1: a request within 200 bytes of a 1500-byte MTU
MAX_MESSAGE_SIZE = 1 << 20


class SettingsError(ValueError):
    """A setting is missing its file, malformed, unknown or out of range."""


@dataclass(frozen=True, slots=True)
class SipSettings:
    """SIP listeners (UDP+TCP on ``port``, TLS on ``tls_port``; 0 = ephemeral)."""

    host: str = "127.0.0.1"
    port: int = 5060
    tls_port: int = 5061
    domain: str = "127.0.0.1"
    trusted_proxies: tuple[str, ...] = ()
    max_message_size: int = 65535
    outbound_proxy: str | None = None  # next hop of dial-out INVITEs, e.g. the P-CSCF
    ring_timeout: float = 30.0  # seconds before an unanswered dial-out is CANCELled
    sdes_requires_tls: bool | None = None  # None: on unless ``host`` is a loopback address

    @property
    def sdes_needs_protection(self) -> bool:
        """SDES keys only over SIP/TLS or a trusted proxy (``sdes_requires_tls`` resolved)."""
        if self.sdes_requires_tls is not None:
            return self.sdes_requires_tls
        return not ipaddress.ip_address(self.host).is_loopback


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The web UI and REST API listener; ``metrics_token_file`` holds the scrape token
    that lets ``GET /metrics`` name conferences and participants (web/metrics.py)."""

    host: str = "127.0.0.1"
    port: int = 8080
    metrics_token_file: Path | None = None


@dataclass(frozen=True, slots=True)
class MediaSettings:
    """Media plane address and the RTP/RTCP port range (inclusive, starts even)."""

    host: str = "127.0.0.1"
    rtp_ports: tuple[int, int] = (40000, 40999)


@dataclass(frozen=True, slots=True)
class MixerSettings:
    """Audio mixer: how many active speakers are mixed at once (floor holders come on top)."""

    max_speakers: int = 3


@dataclass(frozen=True, slots=True)
class MsrpSettings:
    """MSRP over TLS listener port (0 = ephemeral)."""

    port: int = 2855


@dataclass(frozen=True, slots=True)
class BfcpSettings:
    """BFCP over TLS listener port (0 = ephemeral) and floors per conference (IDs 1..floors)."""

    port: int = 2856
    floors: int = 1


DEFAULT_KMS_URL = "http://127.0.0.1:8090/kms"


@dataclass(frozen=True, slots=True)
class KmsSettings:
    """KMS location; ``embedded`` unset: embedded only at the default URL.

    ``database_url``: keep the KMS keys and replay cache in that database
    instead of ``<data_dir>/kms/keys.json`` (several nodes, docs/scaling.md).
    """

    url: str = DEFAULT_KMS_URL
    embedded: bool | None = None  # True: serve the embedded KMS at ``url`` (any URL)
    database_url: str | None = None

    @property
    def serves_embedded(self) -> bool:
        return self.embedded if self.embedded is not None else self.url == DEFAULT_KMS_URL


@dataclass(frozen=True, slots=True)
class MikeySettings:
    """MIKEY Prot Type code points of TS 33.328 outside the IANA registry (decision (a))."""

    prot_type_tls: int = 241
    prot_type_psk_smime: int = 242
    prot_type_application: int = 243


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Conference event package (docs/notify.md): rate cap, Expires bounds, NOTIFY algorithm."""

    min_interval: float = 5.0  # seconds between two NOTIFYs of a subscription (RFC 4575 §3.9)
    min_expires: int = 60  # below: 423 with Min-Expires (RFC 6665 §4.2.1.1)
    max_expires: int = 3600  # above: the cap is granted
    algorithm: str = "aes128_gcm"  # PSK S/MIME content encryption (TS 33.328 Annex I)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Opt-in TLS debugging: NSS key-log file, and the DTLS-SRTP keys the media plane
    exports (off by default, house style §5)."""

    keylog_file: Path | None = None
    srtp_keylog_file: Path | None = None


def default_node_name() -> str:
    """The host name, cut to what ``node.name`` allows (``node`` when nothing is left)."""
    cleaned = re.sub(r"[^a-z0-9._-]", "-", socket.gethostname().lower()).strip("-.")
    return cleaned[:64] or "node"


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """This process as one node of a cluster (docs/scaling.md).

    ``name`` must differ between nodes sharing a database; ``homes`` turns on
    conference homes (claim, lease, 302 to the home); ``contact`` is the SIP
    URI other nodes redirect this node's conferences to (default
    ``sip:<sip.host>:<sip.port>``); ``lease`` is in seconds.
    """

    name: str = field(default_factory=default_node_name)
    homes: bool = False
    lease: float = 4.0
    contact: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """The one settings object of an ``mrf`` process."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = "sqlite:///var/mrf.db"
    log_level: str = "INFO"
    sip: SipSettings = field(default_factory=SipSettings)
    web: WebSettings = field(default_factory=WebSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    mixer: MixerSettings = field(default_factory=MixerSettings)
    msrp: MsrpSettings = field(default_factory=MsrpSettings)
    bfcp: BfcpSettings = field(default_factory=BfcpSettings)
    kms: KmsSettings = field(default_factory=KmsSettings)
    mikey: MikeySettings = field(default_factory=MikeySettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    node: NodeSettings = field(default_factory=NodeSettings)

    @property
    def node_contact(self) -> str:
        """The SIP URI that reaches this node (``node.contact``, else the SIP listener)."""
        if self.node.contact:
            return self.node.contact
        host = f"[{self.sip.host}]" if ":" in self.sip.host else self.sip.host
        return f"sip:{host}:{self.sip.port}"

    def non_loopback_listeners(self) -> tuple[str, ...]:
        """``("sip.host=0.0.0.0", ...)`` for every listener address not on loopback."""
        hosts = {"sip.host": self.sip.host, "web.host": self.web.host}
        hosts["media.host"] = self.media.host
        return tuple(
            f"{key}={host}"
            for key, host in hosts.items()
            if not ipaddress.ip_address(host).is_loopback
        )


# --- validators: (label, raw value) -> clean value -------------------------------------

Validator = Callable[[str, object], object]


def _integer(label: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{label}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{label}: must be in {low}..{high}, got {value}")
    return value


def _string(label: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{label}: must be a non-empty string, got {value!r}")
    return value.strip()


def _listen_port(label: str, value: object) -> int:
    return _integer(label, value, 0, 65535)


def _floors(label: str, value: object) -> int:
    return _integer(label, value, 1, 16)  # mrf.bfcp.floor.MAX_FLOORS


def _message_size(label: str, value: object) -> int:
    return _integer(label, value, MIN_MESSAGE_SIZE, MAX_MESSAGE_SIZE)


def _ip(label: str, value: object) -> str:
    text = _string(label, value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise SettingsError(f"{label}: not an IP address: {text!r}") from None


def _ip_list(label: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"{label}: must be a list of IP addresses, got {value!r}")
    return tuple(dict.fromkeys(_ip(f"{label}[{i}]", item) for i, item in enumerate(value)))


_HOSTNAME = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?\.?"
)


def _domain(label: str, value: object) -> str:
    """RFC 3261 §25.1 ``host``: hostname, IPv4 or IPv6 (stored as a URI host, bracketed)."""
    text = _string(label, value).lower()
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        if len(text) > 253 or not _HOSTNAME.fullmatch(text):
            raise SettingsError(f"{label}: not a host name or IP address: {text!r}") from None
        return text.rstrip(".")
    return f"[{address}]" if address.version == 6 else str(address)


def _rtp_ports(label: str, value: object) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SettingsError(f"{label}: must be [first, last], got {value!r}")
    first = _integer(f"{label}[0]", value[0], 1, 65535)
    last = _integer(f"{label}[1]", value[1], 1, 65535)
    if first % 2:
        raise SettingsError(
            f"{label}: must start on an even port (RTP even, RTCP odd), got {first}"
        )
    if last <= first:
        raise SettingsError(f"{label}: needs at least 2 ports, first < last, got {first}-{last}")
    return (first, last)


def _url(label: str, value: object) -> str:
    text = _string(label, value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{label}: must be an http:// or https:// URL with a host, got {text!r}"
        )
    try:
        parts.port  # noqa: B018  (validates the port)
    except ValueError:
        raise SettingsError(f"{label}: bad port in URL {text!r}") from None
    return text


_DATABASE_URL = re.compile(r"(sqlite|postgresql)(\+[a-z0-9_]+)?://.*", re.DOTALL)


def _database_url(label: str, value: object) -> str:
    text = _string(label, value)
    if not _DATABASE_URL.fullmatch(text):
        scheme = text.split(":", 1)[0]
        raise SettingsError(
            f"{label}: scheme must be sqlite:// or postgresql:// (with an optional +driver), "
            f"got {scheme!r}"
        )
    return text


def _node_name(label: str, value: object) -> str:
    text = _string(label, value)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", text):
        raise SettingsError(f"{label}: 1-64 characters of A-Z a-z 0-9 . _ -, got {text!r}")
    return text


def _lease(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 3600:
        raise SettingsError(f"{label}: must be a number of seconds from 1 to 3600, got {value!r}")
    return float(value)


def _log_level(label: str, value: object) -> str:
    text = _string(label, value).upper()
    if text not in LOG_LEVELS:
        raise SettingsError(f"{label}: must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return text


def _path(label: str, value: object) -> Path:
    return Path(_string(label, value)).expanduser()


def _optional_path(label: str, value: object) -> Path | None:
    if isinstance(value, str) and not value.strip():
        return None
    return _path(label, value)


MIN_TOKEN_LENGTH = 16  # characters of a scrape token (``openssl rand -hex 32`` gives 64)


def read_token_file(path: Path, label: str = "web.metrics_token_file") -> str:
    """The token in ``path`` (one line, surrounding whitespace dropped).

    Raises :class:`SettingsError` naming ``label`` when the file cannot be read,
    or holds an empty, too short, or more than one-word token.
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{label}: cannot read {path}: {exc}") from None
    if len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or " " in token:
        raise SettingsError(
            f"{label}: {path} must hold one token of at least {MIN_TOKEN_LENGTH} printable "
            "characters without spaces (e.g. openssl rand -hex 32)"
        )
    return token


def _token_file(label: str, value: object) -> Path | None:
    path = _optional_path(label, value)
    if path is not None:
        read_token_file(path, label)
    return path


def _sip_uri(label: str, value: object) -> str | None:
    """A SIP URI naming a host (``sip:127.0.0.2:5062;transport=udp``); empty = none."""
    text = _string(label, value).strip()
    if not text:
        return None
    try:
        uri = SipUri.parse(text)
    except SipError:
        raise SettingsError(f"{label}: not a SIP URI: {text!r}") from None
    if uri.scheme not in ("sip", "sips") or uri.user is not None:
        raise SettingsError(f"{label}: must be sip:host[:port][;transport=...], got {text!r}")
    return text


def _ring_timeout(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 600:
        raise SettingsError(f"{label}: must be a number of seconds in 1..600, got {value!r}")
    return float(value)


def _bool(label: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{label}: must be true or false, got {value!r}")
    return value


def _notify_interval(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
        raise SettingsError(f"{label}: must be a number of seconds in 0..3600, got {value!r}")
    return float(value)


def _expires(label: str, value: object) -> int:
    return _integer(label, value, 1, 86400)


NOTIFY_ALGORITHMS = ("aes128_gcm", "aes256_gcm", "aes128_ccm", "aes256_ccm")


def _notify_algorithm(label: str, value: object) -> str:
    if value not in NOTIFY_ALGORITHMS:
        choices = ", ".join(NOTIFY_ALGORITHMS)
        raise SettingsError(f"{label}: must be one of {choices}, got {value!r}")
    return str(value)


def _max_speakers(label: str, value: object) -> int:
    """Active speakers mixed at once: each costs one decode and one encode per tick."""
    return _integer(label, value, 1, 32)


def _prot_type(label: str, value: object) -> int:
    """A MIKEY Prot Type other than SRTP (0) and TESLA (1) (IANA, RFC 3830 §6.10)."""
    return _integer(label, value, 2, 255)


KEYS: dict[str, Validator] = {
    "data_dir": _path,
    "database_url": _database_url,
    "log_level": _log_level,
    "sip.host": _ip,
    "sip.port": _listen_port,
    "sip.tls_port": _listen_port,
    "sip.domain": _domain,
    "sip.trusted_proxies": _ip_list,
    "sip.max_message_size": _message_size,
    "sip.outbound_proxy": _sip_uri,
    "sip.ring_timeout": _ring_timeout,
    "sip.sdes_requires_tls": _bool,
    "web.host": _ip,
    "web.port": _listen_port,
    "web.metrics_token_file": _token_file,
    "media.host": _ip,
    "media.rtp_ports": _rtp_ports,
    "mixer.max_speakers": _max_speakers,
    "msrp.port": _listen_port,
    "bfcp.port": _listen_port,
    "bfcp.floors": _floors,
    "kms.url": _url,
    "kms.embedded": _bool,
    "kms.database_url": _database_url,
    "node.name": _node_name,
    "node.homes": _bool,
    "node.lease": _lease,
    "node.contact": _sip_uri,
    "mikey.prot_type_tls": _prot_type,
    "mikey.prot_type_psk_smime": _prot_type,
    "mikey.prot_type_application": _prot_type,
    "notify.min_interval": _notify_interval,
    "notify.min_expires": _expires,
    "notify.max_expires": _expires,
    "notify.algorithm": _notify_algorithm,
    "tls.keylog_file": _optional_path,
    "tls.srtp_keylog_file": _optional_path,
}
SECTIONS = frozenset(key.split(".")[0] for key in KEYS if "." in key)


# --- environment: text -> raw value, then the same validators ---------------------------


def _env_text(name: str, text: str) -> object:
    return text


def _env_int(name: str, text: str) -> object:
    try:
        return int(text.strip())
    except ValueError:
        raise SettingsError(f"{name}: must be an integer, got {text!r}") from None


def _env_float(name: str, text: str) -> object:
    try:
        return float(text.strip())
    except ValueError:
        raise SettingsError(f"{name}: must be a number, got {text!r}") from None


def _env_bool(name: str, text: str) -> object:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{name}: must be true or false, got {text!r}")
    return value in ("true", "1", "yes")


def _env_list(name: str, text: str) -> object:
    return [item.strip() for item in text.split(",") if item.strip()]


def _env_range(name: str, text: str) -> object:
    first, dash, last = text.strip().partition("-")
    if not dash:
        raise SettingsError(f"{name}: must look like 40000-40999, got {text!r}")
    return [_env_int(name, first), _env_int(name, last)]


ENVIRONMENT: dict[str, tuple[str, Callable[[str, str], object]]] = {
    f"MRF_{key.replace('.', '_').upper()}": (key, convert)
    for key, convert in {
        "data_dir": _env_text,
        "database_url": _env_text,
        "log_level": _env_text,
        "sip.host": _env_text,
        "sip.port": _env_int,
        "sip.tls_port": _env_int,
        "sip.domain": _env_text,
        "sip.trusted_proxies": _env_list,
        "sip.max_message_size": _env_int,
        "sip.outbound_proxy": _env_text,
        "sip.ring_timeout": _env_float,
        "sip.sdes_requires_tls": _env_bool,
        "web.host": _env_text,
        "web.port": _env_int,
        "web.metrics_token_file": _env_text,
        "media.host": _env_text,
        "media.rtp_ports": _env_range,
        "mixer.max_speakers": _env_int,
        "msrp.port": _env_int,
        "bfcp.port": _env_int,
        "bfcp.floors": _env_int,
        "kms.url": _env_text,
        "kms.embedded": _env_bool,
        "kms.database_url": _env_text,
        "node.name": _env_text,
        "node.homes": _env_bool,
        "node.lease": _env_float,
        "node.contact": _env_text,
        "mikey.prot_type_tls": _env_int,
        "mikey.prot_type_psk_smime": _env_int,
        "mikey.prot_type_application": _env_int,
        "notify.min_interval": _env_float,
        "notify.min_expires": _env_int,
        "notify.max_expires": _env_int,
        "notify.algorithm": _env_text,
        "tls.keylog_file": _env_text,
        "tls.srtp_keylog_file": _env_text,
    }.items()
}
# MRF_* variables read elsewhere (not settings); anything else is probably a typo.
OTHER_ENVIRONMENT = frozenset({"MRF_ADMIN_PASSWORD"})


def _unknown(key: str, label: str) -> SettingsError:
    guess = difflib.get_close_matches(key, list(KEYS), n=1, cutoff=0.6)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return SettingsError(f"{label}: unknown setting {key!r}{hint}")


def _read_file(path: Path) -> dict[str, tuple[str, object]]:
    """Flatten the TOML document to ``{"sip.port": (label, value)}``."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"{path}: config file not found") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from None
    flat: dict[str, tuple[str, object]] = {}
    for key, value in document.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise SettingsError(f"{path}: {key}: must be a table ([{key}])")
            items = [(f"{key}.{sub}", item) for sub, item in value.items()]
        else:
            items = [(key, value)]
        for dotted, item in items:
            if dotted not in KEYS:
                raise _unknown(dotted, str(path))
            flat[dotted] = (f"{path}: {dotted}", item)
    return flat


def _read_environment(environ: Mapping[str, str]) -> dict[str, tuple[str, object]]:
    flat: dict[str, tuple[str, object]] = {}
    for name, text in environ.items():
        if name in ENVIRONMENT:
            key, convert = ENVIRONMENT[name]
            flat[key] = (name, convert(name, text))
        elif name.startswith("MRF_") and name not in OTHER_ENVIRONMENT:
            guess = difflib.get_close_matches(name, list(ENVIRONMENT), n=1, cutoff=0.8)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            logger.warning("ignoring unknown environment variable %s%s", name, hint)
    return flat


def _build(values: dict[str, object]) -> Settings:
    """Assemble the frozen dataclasses from validated ``{"sip.port": 5060}`` values."""
    sections: dict[str, dict[str, object]] = {name: {} for name in SECTIONS}
    top: dict[str, object] = {}
    for key, value in values.items():
        section, _, name = key.rpartition(".")
        (sections[section] if section else top)[name] = value
    data_dir = top.get("data_dir", DEFAULT_DATA_DIR)
    assert isinstance(data_dir, Path)
    top.setdefault("database_url", f"sqlite:///{data_dir / 'mrf.db'}")
    return Settings(
        **top,  # type: ignore[arg-type]
        sip=SipSettings(**sections["sip"]),  # type: ignore[arg-type]
        web=WebSettings(**sections["web"]),  # type: ignore[arg-type]
        media=MediaSettings(**sections["media"]),  # type: ignore[arg-type]
        mixer=MixerSettings(**sections["mixer"]),  # type: ignore[arg-type]
        msrp=MsrpSettings(**sections["msrp"]),  # type: ignore[arg-type]
        bfcp=BfcpSettings(**sections["bfcp"]),  # type: ignore[arg-type]
        kms=KmsSettings(**sections["kms"]),  # type: ignore[arg-type]
        mikey=_mikey(sections["mikey"]),
        notify=_notify(sections["notify"]),
        tls=TlsSettings(**sections["tls"]),  # type: ignore[arg-type]
        node=NodeSettings(**sections["node"]),  # type: ignore[arg-type]
    )


def _mikey(values: dict[str, object]) -> MikeySettings:
    mikey = MikeySettings(**values)  # type: ignore[arg-type]
    codes = (mikey.prot_type_tls, mikey.prot_type_psk_smime, mikey.prot_type_application)
    if len(set(codes)) != 3:
        raise SettingsError(f"mikey: the three prot_type_* values must differ, got {codes}")
    return mikey


def _notify(values: dict[str, object]) -> NotifySettings:
    notify = NotifySettings(**values)  # type: ignore[arg-type]
    if notify.min_expires > notify.max_expires:
        raise SettingsError(
            f"notify: min_expires ({notify.min_expires}) exceeds max_expires ({notify.max_expires})"
        )
    return notify


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] = os.environ
) -> Settings:
    """Defaults, then the TOML file at ``path`` (if given), then ``MRF_*`` from ``environ``."""
    raw = _read_file(Path(path)) if path is not None else {}
    raw.update(_read_environment(environ))
    values = {key: KEYS[key](label, value) for key, (label, value) in raw.items()}
    return _build(values)
