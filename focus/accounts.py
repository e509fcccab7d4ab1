"""Web/API accounts and bearer tokens: password hashing, token digests, queries.

Passwords are hashed with scrypt (RFC 7914, a memory-hard KDF; ``hashlib.scrypt``)
with a random 16-byte salt and stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>``
(base64).  Bearer tokens are 256 random bits; only their SHA-256 digest is stored:
a token is not a human-chosen secret, so a fast hash cannot be brute-forced and
lets every API request be checked in microseconds.

:class:`AccountQueries` is mixed into :class:`focus.store.ConferenceStore`; like
the conference queries it returns frozen :class:`AccountInfo` snapshots.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from focus.conference import InvalidInput, StoreError, normalize_aor
from focus.tables import Account, ApiToken, aware

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB per hash
SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "mrf_"
FIRST_ADMIN = "admin"

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class AccountExists(StoreError):
    """An account with that name exists already."""


class AccountNotFound(StoreError, LookupError):
    """No account with that name."""


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Snapshot of one account (never the password hash)."""

    id: int
    name: str
    is_admin: bool
    created_at: datetime
    sip_uri: str | None = None  # the identity a signed-in browser participant joins as
    disabled: bool = False


def validate_account_name(name: object) -> str:
    """1-64 characters of ``A-Z a-z 0-9 . _ @ -``."""
    if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid account name {name!r}: use 1-64 characters of A-Z, a-z, 0-9, '.', '_', "
            "'@' and '-'"
        )
    return name


def validate_password(password: object) -> str:
    if not isinstance(password, str) or not (
        MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
    ):
        raise InvalidInput(
            f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` for ``password`` (RFC 7914)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
        maxmem=SCRYPT_MAXMEM, dklen=32,
    )  # fmt: skip
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
            p=int(p), maxmem=SCRYPT_MAXMEM, dklen=len(base64.b64decode(expected)),
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


# verified against when the account does not exist, so both cases take as long
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def new_token() -> str:
    """A fresh bearer token: ``mrf_`` and 43 URL-safe characters (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the store keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _info(row: Account) -> AccountInfo:
    assert row.id is not None
    return AccountInfo(
        row.id, row.name, row.is_admin, aware(row.created_at), row.sip_uri, row.disabled
    )


class AccountQueries:
    """Account and token queries (mixed into :class:`focus.store.ConferenceStore`)."""

    engine: Engine

    def create_account(
        self, name: str, password: str, *, is_admin: bool = False, sip_uri: str | None = None
    ) -> AccountInfo:
        """A new account; :class:`AccountExists` if the name is taken."""
        validate_account_name(name)
        uri = None if sip_uri is None else normalize_aor(sip_uri)
        row = Account(name=name, password_hash=hash_password(validate_password(password)))
        row.is_admin = is_admin
        row.sip_uri = uri
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                raise AccountExists(f"an account named {name!r} exists already") from None
            session.refresh(row)
            return _info(row)

    def get_account(self, name: str) -> AccountInfo | None:
        with Session(self.engine) as session:
            row = session.exec(select(Account).where(Account.name == name)).first()
            return None if row is None else _info(row)

    def get_account_by_id(self, account_id: int) -> AccountInfo | None:
        with Session(self.engine) as session:
            row = session.get(Account, account_id)
            return None if row is None else _info(row)

    def list_accounts(self) -> list[AccountInfo]:
        with Session(self.engine) as session:
            return [_info(r) for r in session.exec(select(Account).order_by(col(Account.name)))]

    def count_accounts(self) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(Account)).one())

    def authenticate(self, name: str, password: str) -> AccountInfo | None:
        """The account when ``password`` is right, else ``None`` (same cost either way).

        A name no account can have (say with NUL, which PostgreSQL cannot hold) is
        not looked up."""
        row = None
        if _ACCOUNT_NAME.fullmatch(name):
            with Session(self.engine) as session:
                row = session.exec(select(Account).where(Account.name == name)).first()
        if row is None:
            verify_password(password, _DUMMY_HASH)
            return None
        right = verify_password(password, row.password_hash)
        return _info(row) if right and not row.disabled else None

    def set_password(self, name: str, password: str) -> None:
        encoded = hash_password(validate_password(password))
        with Session(self.engine) as session:
            row = session.exec(select(Account).where(Account.name == name)).first()
            if row is None:
                raise AccountNotFound(f"no account named {name!r}")
            row.password_hash = encoded
            session.add(row)
            session.commit()

    def set_sip_uri(self, name: str, sip_uri: str | None) -> AccountInfo:
        """Set (``None``: clear) the SIP identity of account ``name`` (normalised AOR)."""
        uri = None if sip_uri is None else normalize_aor(sip_uri)
        with Session(self.engine) as session:
            row = session.exec(select(Account).where(Account.name == name)).first()
            if row is None:
                raise AccountNotFound(f"no account named {name!r}")
            row.sip_uri = uri
            session.add(row)
            session.commit()
            session.refresh(row)
            return _info(row)

    def ensure_first_admin(self, password: str | None) -> tuple[AccountInfo, str] | None:
        """Create ``admin`` when there is no account at all; ``(account, password)``.

        ``password`` (``MRF_ADMIN_PASSWORD``) or, when ``None``, a random one that
        the caller prints once.  ``None`` when accounts exist already.
        """
        if self.count_accounts():
            return None
        chosen = password if password is not None else secrets.token_urlsafe(15)
        try:
            return self.create_account(FIRST_ADMIN, chosen, is_admin=True), chosen
        except AccountExists:  # another process was first
            return None

    def create_token(self, name: str) -> str:
        """A new bearer token for account ``name`` (returned once, stored hashed)."""
        with Session(self.engine) as session:
            row = session.exec(select(Account).where(Account.name == name)).first()
            if row is None or row.id is None:
                raise AccountNotFound(f"no account named {name!r}")
            token = new_token()
            session.add(ApiToken(account_id=row.id, digest=token_digest(token)))
            session.commit()
            return token

    def account_for_token(self, token: str) -> AccountInfo | None:
        """The account a bearer token belongs to, or ``None``."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        with Session(self.engine) as session:
            query = select(Account).join(ApiToken).where(ApiToken.digest == token_digest(token))
            row = session.exec(query).first()
            return None if row is None or row.disabled else _info(row)

    def revoke_tokens(self, name: str) -> int:
        """Delete every token of account ``name``; how many there were."""
        with Session(self.engine) as session:
            account = session.exec(select(Account).where(Account.name == name)).first()
            if account is None:
                raise AccountNotFound(f"no account named {name!r}")
            rows = list(session.exec(select(ApiToken).where(ApiToken.account_id == account.id)))
            for row in rows:
                session.delete(row)
            session.commit()
            return len(rows)

    def set_disabled(self, name: str, disabled: bool) -> AccountInfo:
        """Disable (no sign-in, tokens refused) or enable account ``name``."""
        with Session(self.engine) as session:
            row = session.exec(select(Account).where(Account.name == name)).first()
            if row is None:
                raise AccountNotFound(f"no account named {name!r}")
            row.disabled = disabled
            session.add(row)
            session.commit()
            session.refresh(row)
            return _info(row)

    def list_tokens(self, name: str) -> list[tuple[int, datetime]]:
        """``(token id, created_at)`` of account ``name``'s tokens, oldest first."""
        with Session(self.engine) as session:
            account = session.exec(select(Account).where(Account.name == name)).first()
            if account is None:
                raise AccountNotFound(f"no account named {name!r}")
            query = select(ApiToken).where(ApiToken.account_id == account.id)
            return [(int(r.id or 0), aware(r.created_at))
                    for r in session.exec(query.order_by(col(ApiToken.id)))]  # fmt: skip

    def revoke_token(self, name: str, token_id: int) -> bool:
        """Delete one token of account ``name`` (by id); False if it has none such."""
        with Session(self.engine) as session:
            account = session.exec(select(Account).where(Account.name == name)).first()
            if account is None:
                return False
            row = session.get(ApiToken, token_id)
            if row is None or row.account_id != account.id:
                return False
            session.delete(row)
            session.commit()
            return True
