"""PSK S/MIME: CMS AuthEnvelopedData under a pre-shared KEK (TS 33.328 Annex I).

Sans-I/O core (bytes in, bytes out; the only I/O is ``os.urandom`` for fresh
keys and nonces, injectable as ``random``).

Structure (RFC 5083 §2.1, RFC 5652 §6.2.3, RFC 5084, RFC 3565; TS 33.328 I.2.1)::

    ContentInfo { contentType id-ct-authEnvelopedData,
      AuthEnvelopedData { version 0,
        recipientInfos { kekri [2] { version 4,
            kekid { keyIdentifier = SPI of the PSK S/MIME crypto session },
            keyEncryptionAlgorithm id-aes128-wrap | id-aes256-wrap (no parameters),
            encryptedKey = AES-WRAP(KEK, CEK) } },                  -- RFC 3394
        authEncryptedContentInfo { contentType id-data,
            contentEncryptionAlgorithm id-aes{128,256}-{GCM,CCM} { aes-nonce, aes-ICVlen },
            encryptedContent [0] = ciphertext without the tag },
        mac = the tag } }

The content-encryption key (CEK) is random per message; the KEK is the TEK of
the subscriber's "PSK S/MIME" MIKEY-TICKET crypto session and ``keyIdentifier``
that crypto session's SPI bytes (project decision (b), ``docs/mikey.md``).
The AES key-wrap size follows the KEK length: 16 bytes → AES-WRAP-128, 32 bytes
→ AES-WRAP-256.  ``authAttrs`` are not sent; when a received message carries
them their DER with the SET OF tag is the AAD (RFC 5083 §2.2).

Decryption is all-or-nothing: a wrong KEK, a changed wrapped key, ciphertext or
tag raise :class:`SmimeRemoteError` and no plaintext is returned.

The inner MIME entity is prepared as for S/MIME (RFC 8551 §3.1): a
``Content-Type`` header, CRLF, the body; the carrying SIP body is
``application/pkcs7-mime; smime-type=authEnveloped-data`` (RFC 8551 §3.2.2).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum

from asn1crypto import algos, cms, core  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

SMIME_CONTENT_TYPE = "application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m"
MAX_SMIME_SIZE = 262_144  # bytes of DER we agree to parse
MAX_MIME_HEADER_SIZE = 4096
NONCE_SIZE = 12  # RFC 5084 §3.2 (GCM, recommended) and §3.1 (CCM 7..13; 12 chosen)
TAG_SIZE = 16  # aes-ICVlen we send; 12..16 accepted (RFC 5084 §3.1, §3.2)
KEK_SIZES = {16: "aes128_wrap", 32: "aes256_wrap"}  # RFC 3565 §2.3.2, decision (b)


class SmimeError(Exception):
    """Base of the PSK S/MIME errors::

    SmimeError
     ├── SmimeLocalError   our misuse (bad KEK length, unknown algorithm): raised at once
     └── SmimeRemoteError  the message is malformed, not for this KEK, or not authentic
    """


class SmimeLocalError(SmimeError):
    """A caller error: bad key size, unsupported algorithm."""


class SmimeRemoteError(SmimeError):
    """The peer's message cannot be opened; ``reason`` says why (never the key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SmimeContentAlgorithm(StrEnum):
    """Content-authenticated-encryption algorithms (TS 33.328 Table I.2, RFC 5084 §3)."""

    AES128_GCM = "aes128_gcm"  # id-aes128-GCM 2.16.840.1.101.3.4.1.6
    AES256_GCM = "aes256_gcm"  # id-aes256-GCM 2.16.840.1.101.3.4.1.46
    AES128_CCM = "aes128_ccm"  # id-aes128-CCM 2.16.840.1.101.3.4.1.7
    AES256_CCM = "aes256_ccm"  # id-aes256-CCM 2.16.840.1.101.3.4.1.47

    @property
    def key_size(self) -> int:
        return 16 if self.value.startswith("aes128") else 32

    @property
    def is_gcm(self) -> bool:
        return self.value.endswith("gcm")


class GcmParameters(core.Sequence):  # type: ignore[misc]
    """``GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen DEFAULT 12 }``.

    RFC 5084 §3.2; asn1crypto ships only the CCM twin (``algos.CcmParams``).
    """

    _fields = [
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


def _content_parameters(algorithm: SmimeContentAlgorithm, nonce: bytes) -> core.Sequence:
    if algorithm.is_gcm:
        return GcmParameters({"aes_nonce": nonce, "aes_icvlen": TAG_SIZE})
    return algos.CcmParams({"aes_nonce": nonce, "aes_icvlen": TAG_SIZE})


def _check_kek(kek: bytes) -> str:
    wrap = KEK_SIZES.get(len(kek))
    if wrap is None:
        raise SmimeLocalError(f"KEK must be 16 or 32 bytes, got {len(kek)}")
    return wrap


def encrypt_auth_enveloped(
    content: bytes,
    kek: bytes,
    key_id: bytes,
    *,
    algorithm: SmimeContentAlgorithm = SmimeContentAlgorithm.AES128_GCM,
    random: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """DER ``ContentInfo(AuthEnvelopedData)`` protecting ``content`` under ``kek``."""
    wrap = _check_kek(kek)
    if not key_id:
        raise SmimeLocalError("the KEK identifier (crypto session SPI) must not be empty")
    algorithm = SmimeContentAlgorithm(algorithm)
    cek, nonce = random(algorithm.key_size), random(NONCE_SIZE)
    sealed = _seal(algorithm, cek, nonce, content)
    ciphertext, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
    recipient = cms.KEKRecipientInfo(
        {
            "version": "v4",
            "kekid": cms.KEKIdentifier({"key_identifier": key_id}),
            "key_encryption_algorithm": cms.KeyEncryptionAlgorithm({"algorithm": wrap}),
            "encrypted_key": aes_key_wrap(kek, cek),
        }
    )
    encrypted = cms.EncryptedContentInfo(
        {
            "content_type": "data",
            "content_encryption_algorithm": algos.EncryptionAlgorithm(
                {
                    "algorithm": algorithm.value,
                    "parameters": _content_parameters(algorithm, nonce),
                }
            ),
            "encrypted_content": ciphertext,
        }
    )
    enveloped = cms.AuthEnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [cms.RecipientInfo(name="kekri", value=recipient)],
            "auth_encrypted_content_info": encrypted,
            "mac": tag,
        }
    )
    info = cms.ContentInfo({"content_type": "authenticated_enveloped_data", "content": enveloped})
    return bytes(info.dump())


def _seal(algorithm: SmimeContentAlgorithm, cek: bytes, nonce: bytes, content: bytes) -> bytes:
    if algorithm.is_gcm:
        return AESGCM(cek).encrypt(nonce, content, None)
    return AESCCM(cek, tag_length=TAG_SIZE).encrypt(nonce, content, None)


def decrypt_auth_enveloped(data: bytes, kek: bytes, key_id: bytes | None = None) -> bytes:
    """The content of a DER ``AuthEnvelopedData`` for ``kek`` (and ``key_id`` if given).

    Raises :class:`SmimeRemoteError` for anything that is not an authentic
    message for this KEK; never returns partial plaintext.
    """
    wrap = _check_kek(kek)
    if len(data) > MAX_SMIME_SIZE:
        raise SmimeRemoteError(f"CMS message of {len(data)} bytes exceeds {MAX_SMIME_SIZE}")
    try:
        parsed = _parse(data, wrap, key_id)
    except SmimeRemoteError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise SmimeRemoteError(f"malformed CMS AuthEnvelopedData: {type(exc).__name__}") from exc
    algorithm, wrapped, nonce, tag, ciphertext, aad = parsed
    try:
        cek = aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError) as exc:
        raise SmimeRemoteError("the content key does not unwrap under this KEK") from exc
    if len(cek) != algorithm.key_size:
        raise SmimeRemoteError(f"content key of {len(cek)} bytes for {algorithm.value}")
    try:
        return _open(algorithm, cek, nonce, tag, ciphertext, aad)
    except InvalidTag as exc:
        raise SmimeRemoteError("authentication failed (ciphertext, tag or attributes)") from exc


type _Parsed = tuple[SmimeContentAlgorithm, bytes, bytes, bytes, bytes, bytes | None]


def _parse(data: bytes, wrap: str, key_id: bytes | None) -> _Parsed:
    info = cms.ContentInfo.load(data, strict=True)
    if info["content_type"].native != "authenticated_enveloped_data":
        raise SmimeRemoteError(f"not AuthEnvelopedData: {info['content_type'].dotted}")
    enveloped = info["content"]
    if enveloped["version"].native != "v0":
        raise SmimeRemoteError("AuthEnvelopedData version must be 0 (RFC 5083 §2.1)")
    wrapped = _wrapped_key(enveloped["recipient_infos"], wrap, key_id)
    content_info = enveloped["auth_encrypted_content_info"]
    if content_info["content_type"].native != "data":
        raise SmimeRemoteError("encapsulated content type must be id-data (TS 33.328 I.2.1)")
    algorithm_id = content_info["content_encryption_algorithm"]
    try:
        algorithm = SmimeContentAlgorithm(algorithm_id["algorithm"].native)
    except ValueError:
        raise SmimeRemoteError(
            f"unsupported algorithm {algorithm_id['algorithm'].dotted}"
        ) from None
    parameters = algorithm_id["parameters"]
    spec = GcmParameters if algorithm.is_gcm else algos.CcmParams
    params = spec.load(parameters.dump(), strict=True)
    nonce, icvlen = bytes(params["aes_nonce"].native), int(params["aes_icvlen"].native)
    tag = bytes(enveloped["mac"].native)
    if len(tag) != icvlen or not 12 <= icvlen <= 16:
        raise SmimeRemoteError(f"tag of {len(tag)} bytes, aes-ICVlen {icvlen}")
    if not 7 <= len(nonce) <= 13 or (algorithm.is_gcm and len(nonce) < 12):
        raise SmimeRemoteError(f"nonce of {len(nonce)} bytes")
    encrypted = content_info["encrypted_content"]
    if encrypted.native is None:
        raise SmimeRemoteError("detached content is not supported")
    ciphertext = bytes(encrypted.native)
    attrs = enveloped["auth_attrs"]
    aad = bytes(attrs.untag().dump(force=True)) if attrs.native is not None else None
    return algorithm, wrapped, nonce, tag, ciphertext, aad


def _wrapped_key(recipients: cms.RecipientInfos, wrap: str, key_id: bytes | None) -> bytes:
    for recipient in recipients:
        if recipient.name != "kekri":
            continue
        kekri = recipient.chosen
        if key_id is not None and kekri["kekid"]["key_identifier"].native != key_id:
            continue
        if kekri["key_encryption_algorithm"]["algorithm"].native != wrap:
            raise SmimeRemoteError("key-encryption algorithm does not match the KEK size")
        return bytes(kekri["encrypted_key"].native)
    raise SmimeRemoteError("no KEKRecipientInfo for this key identifier")


def _open(
    algorithm: SmimeContentAlgorithm,
    cek: bytes,
    nonce: bytes,
    tag: bytes,
    ciphertext: bytes,
    aad: bytes | None,
) -> bytes:
    if algorithm.is_gcm:
        decryptor = Cipher(
            algorithms.AES(cek), modes.GCM(nonce, tag, min_tag_length=len(tag))
        ).decryptor()
        if aad:
            decryptor.authenticate_additional_data(aad)
        # the tag is checked in finalize(); nothing is returned before it passes
        plaintext = decryptor.update(ciphertext)
        return plaintext + decryptor.finalize()
    try:
        return AESCCM(cek, tag_length=len(tag)).decrypt(nonce, ciphertext + tag, aad)
    except ValueError as exc:  # unsupported CCM tag length / nonce length
        raise SmimeRemoteError(f"CCM parameters refused: {exc}") from exc


def prepare_mime_entity(body: bytes, content_type: str) -> bytes:
    """The MIME entity to protect (RFC 8551 §3.1): header, CRLF, body."""
    if "\r" in content_type or "\n" in content_type:
        raise SmimeLocalError("content type must be one line")
    return f"Content-Type: {content_type}\r\n\r\n".encode("ascii") + body


def parse_mime_entity(entity: bytes) -> tuple[str, bytes]:
    """``(content type, body)`` of a decrypted MIME entity (header names case-insensitive)."""
    head, sep, body = entity.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = entity.partition(b"\n\n")
    if not sep or len(head) > MAX_MIME_HEADER_SIZE:
        raise SmimeRemoteError("MIME entity without a header/body separator")
    content_type = "text/plain"
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        name, colon, value = line.partition(b":")
        if not colon:
            raise SmimeRemoteError("malformed MIME header line")
        if name.strip().lower() == b"content-type":
            content_type = value.decode("ascii", errors="replace").strip()
    return content_type, body
