"""The ``mrf`` command line (see the interfaces contract, "Command line: mrf").

``mrf serve`` runs the server (:func:`mrf.server.run`); ``mrf conference ...``
manages conferences in the database named by the settings; ``mrf version``
prints the version and the features this installation has.  ``--config FILE``
is accepted before or after the subcommand.

Exit status: 0 on success, 1 when the command failed, 2 for a usage error.
Errors are one line on stderr: ``mrf: error: ...``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import ssl
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mrf import __version__
from mrf.settings import Settings, SettingsError, load_settings

logger = logging.getLogger("mrf")

# feature name -> modules that must all be present for it to be enabled
FEATURES: dict[str, tuple[str, ...]] = {
    "sip-udp": ("focus.sip.message", "focus.transport"),
    "sip-tcp": ("focus.sip.message", "focus.transport"),
    "sip-tls": ("focus.sip.message", "focus.transport", "mrf.tls"),
    "sdes-srtp": ("focus.sdp", "mrf.rtp", "pylibsrtp"),
    "mikey-ticket": ("focus.mikey",),
    "kms": ("focus.kms",),
    "msrp": ("mrf.msrp",),
    "bfcp": ("mrf.bfcp",),
    "conference-event": ("notify.conference_info", "notify.subscription"),
    "web": ("web",),
}


class UsageError(Exception):
    """Bad command line; exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Reports errors as one ``mrf: error: ...`` line instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def enabled_features() -> list[str]:
    """Features whose modules are installed, plus TLS-PSK when ``ssl`` supports it."""
    features = [name for name, modules in FEATURES.items() if all(map(_module_present, modules))]
    if hasattr(ssl.SSLContext, "set_psk_server_callback"):
        features.append("tls-psk")
    return features


def _participant(text: str) -> tuple[str, str]:
    """``URI`` or ``URI,chair`` / ``URI,participant``."""
    from focus.conference import ROLES, InvalidInput, normalize_aor

    uri, _, role = text.rpartition(",") if "," in text else (text, "", "participant")
    role = role.strip() or "participant"
    if role not in ROLES:
        raise argparse.ArgumentTypeError(f"role must be one of {', '.join(ROLES)}: {text!r}")
    try:
        return normalize_aor(uri), role
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _conference_name(text: str) -> str:
    from focus.conference import InvalidInput, validate_conference_name

    try:
        return validate_conference_name(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _config_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="TOML settings file (MRF_* environment variables override it)",
    )


def _subparser(
    group: argparse._SubParsersAction[Any], name: str, text: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=text, description=text)
    _config_option(parser, argparse.SUPPRESS)  # keeps a --config given before the command
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``mrf`` argument parser."""
    parser = _Parser(prog="mrf", description="Secure SIP conference server (MRF/focus).")
    _config_option(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = _subparser(commands, "serve", "run SIP, media, notifier, web UI and KMS in one process")
    serve.set_defaults(handler=_serve)
    cluster = _subparser(commands, "cluster", "a local cluster: PostgreSQL, Kamailio, N nodes")
    from mrf.cluster.runner import add_arguments as add_cluster_arguments

    add_cluster_arguments(cluster)
    cluster.set_defaults(handler=_cluster)
    version = _subparser(commands, "version", "print the version and enabled features (JSON)")
    version.set_defaults(handler=_version)
    _admin_parsers(commands)
    _kms_parsers(commands)
    from mrf.ue.cli import add_parser as add_ue_parser  # the reference client, `mrf ue`

    add_ue_parser(commands, _subparser)
    conference = _subparser(commands, "conference", "create, list and delete conferences")
    actions = conference.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = _subparser(actions, "create", "create a conference and print its SIP URI")
    create.add_argument("name", type=_conference_name, help="1-64 of a-z 0-9 . _ -")
    create.add_argument(
        "--participant",
        metavar="URI[,chair]",
        action="append",
        default=[],
        type=_participant,
        help="authorize a participant (repeatable); append ',chair' for the chair role",
    )
    create.add_argument(
        "--allow-anonymous", action="store_true", help="admit callers without an identity"
    )
    create.add_argument(
        "--key-mode",
        dest="key_modes",
        action="append",
        choices=("sdes", "mikey-ticket", "dtls", "fingerprint"),
        help="accepted key management, to narrow the default (repeatable; default: every "
        "mode: sdes, mikey-ticket and dtls for RTP, fingerprint and mikey-ticket for "
        "MSRP/BFCP)",
    )
    create.set_defaults(handler=_conference_create)
    listing = _subparser(actions, "list", "print every conference, one JSON object a line")
    listing.set_defaults(handler=_conference_list)
    remove = _subparser(actions, "delete", "delete a conference and its authorized list")
    remove.add_argument("name", help="conference name")
    remove.set_defaults(handler=_conference_delete)
    return parser


def _cluster(args: argparse.Namespace, settings: Settings) -> int:
    from mrf.cluster.runner import run as run_cluster  # docs/scaling.md

    return run_cluster(args)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    try:
        server = importlib.import_module("mrf.server")
    except ModuleNotFoundError as exc:
        if exc.name != "mrf.server":
            raise
        _fail("this installation has no server (module mrf.server is missing)")
        return 1
    try:
        status = server.run(settings)
    except KeyboardInterrupt:
        return 130
    return 0 if status is None else int(status)


def _version(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps({"version": __version__, "features": enabled_features()}))
    return 0


def _conference_create(args: argparse.Namespace, settings: Settings) -> int:
    from focus.conference import ConferencePolicy
    from focus.store import ConferenceStore

    policy = ConferencePolicy(key_modes=tuple(args.key_modes)) if args.key_modes else None
    with ConferenceStore(settings.database_url) as store:
        store.create_all()
        info = store.create_conference(
            args.name, args.participant, allow_anonymous=args.allow_anonymous, policy=policy
        )
    print(info.uri(settings.sip.domain))
    return 0


def _conference_list(args: argparse.Namespace, settings: Settings) -> int:
    from focus.store import ConferenceStore

    with ConferenceStore(settings.database_url) as store:
        store.create_all()
        conferences = store.list_conferences()
    for info in conferences:
        print(json.dumps(info.to_json(settings.sip.domain)))
    return 0


def _conference_delete(args: argparse.Namespace, settings: Settings) -> int:
    from focus.store import ConferenceStore

    with ConferenceStore(settings.database_url) as store:
        store.create_all()
        deleted = store.delete_conference(args.name)
    if not deleted:
        _fail(f"no conference named {args.name!r}")
        return 1
    return 0


def _admin_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    admin = _subparser(commands, "admin", "web/API accounts and bearer tokens")
    actions = admin.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = _subparser(
        actions, "create", "create an account (password read from stdin, or prompted)"
    )
    create.add_argument("name", help="account name: 1-64 of A-Z a-z 0-9 . _ @ -")
    create.add_argument(
        "--admin", action="store_true", help="an administrator (sees every conference)"
    )
    create.add_argument(
        "--sip-uri", type=_kms_user, metavar="SIP-URI",
        help="the SIP identity this account joins conferences as from the browser",
    )  # fmt: skip
    create.set_defaults(handler=_admin_create)
    update = _subparser(actions, "set", "change an account's settings")
    update.add_argument("name", help="account name")
    update.add_argument(
        "--sip-uri", type=_sip_uri_or_none, metavar="SIP-URI", required=True,
        help="the account's SIP identity for browser participation ('' clears it)",
    )  # fmt: skip
    update.set_defaults(handler=_admin_set)
    token = _subparser(actions, "token", "print a new REST API bearer token for an account")
    token.add_argument("name", help="account name")
    token.set_defaults(handler=_admin_token)


def _kms_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    kms = _subparser(commands, "kms", "the embedded MIKEY-TICKET key management service")
    actions = kms.add_subparsers(dest="action", metavar="ACTION", required=True)
    enroll = _subparser(actions, "enroll", "enrol a user; prints the user's KMS key (hex) once")
    enroll.add_argument("uri", type=_kms_user, metavar="SIP-URI", help="the user's identity")
    enroll.set_defaults(handler=_kms_enroll)


def _kms_user(text: str) -> str:
    from focus.conference import InvalidInput, normalize_aor

    try:
        return normalize_aor(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sip_uri_or_none(text: str) -> str | None:
    return None if text == "" else _kms_user(text)


def _kms_enroll(args: argparse.Namespace, settings: Settings) -> int:
    """A fresh per-user key in the KMS's own keys file (``<data_dir>/kms/keys.json``),
    or in ``kms.database_url`` when that is set (several nodes, docs/scaling.md)."""
    from focus.kms.keys import KmsKeys, KmsKeysError

    try:
        if settings.kms.database_url:
            from focus.kms.http import shared_kms_state

            shared, _ = shared_kms_state(settings.kms.database_url, 0.0)
            key = shared.enroll(args.uri)
            shared.engine.dispose()
        else:
            key = KmsKeys.in_data_dir(settings.data_dir).enroll(args.uri)
    except KmsKeysError as exc:
        _fail(str(exc))
        return 1
    print(key.hex())
    return 0


def _read_password() -> str | None:
    """The password: prompted twice on a terminal (None if they differ), else stdin's line."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("password: ")
        return first if getpass.getpass("again: ") == first else None
    return sys.stdin.readline().rstrip("\r\n")


def _admin_create(args: argparse.Namespace, settings: Settings) -> int:
    from focus.store import ConferenceStore

    password = _read_password()
    if password is None:
        _fail("the passwords differ")
        return 1
    with ConferenceStore(settings.database_url) as store:
        store.create_all()
        account = store.create_account(
            args.name, password, is_admin=args.admin, sip_uri=args.sip_uri
        )
    print(json.dumps({"id": account.id, "name": account.name, "admin": account.is_admin,
                      "sip_uri": account.sip_uri}))  # fmt: skip
    return 0


def _admin_set(args: argparse.Namespace, settings: Settings) -> int:
    from focus.store import AccountNotFound, ConferenceStore

    with ConferenceStore(settings.database_url) as store:
        store.create_all()
        try:
            account = store.set_sip_uri(args.name, args.sip_uri)
        except AccountNotFound as exc:
            _fail(str(exc))
            return 1
    print(json.dumps({"id": account.id, "name": account.name, "sip_uri": account.sip_uri}))
    return 0


def _admin_token(args: argparse.Namespace, settings: Settings) -> int:
    from focus.store import ConferenceStore

    with ConferenceStore(settings.database_url) as store:
        store.create_all()
        print(store.create_token(args.name))
    return 0


def _fail(message: str) -> None:
    print(f"mrf: error: {message}", file=sys.stderr)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mrf`` command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        _fail(str(exc))
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    if args.command == "version":  # needs no settings: works with a broken config too
        return _version(args, Settings())
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        _fail(str(exc))
        return 1
    _configure_logging(settings.log_level)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        return handler(args, settings)
    except Exception as exc:
        if not _is_failure(exc):
            raise
        logger.debug("command failed", exc_info=True)
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return 1


def _is_failure(exc: Exception) -> bool:
    """Expected failures (bad input, database or file problems) get one line, not a trace."""
    from focus.conference import StoreError

    expected: tuple[type[Exception], ...] = (StoreError, OSError)
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import SQLAlchemyError

        expected += (SQLAlchemyError,)
    return isinstance(exc, expected)


if __name__ == "__main__":
    sys.exit(main())
