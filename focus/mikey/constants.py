"""MIKEY code points (RFC 3830 §6, RFC 6043 §6, IANA "MIKEY Payload Name Spaces").

Every wire code is an ``IntEnum`` named after its registry.  The Prot Type
values for "TLS", "PSK S/MIME" and "Application Specific" (TS 33.328) are not
IANA-assigned: they are private-use defaults (project decision (a), see
``docs/mikey.md``) held in :class:`MikeyProtTypes`, which callers
may configure to match a peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

VERSION = 1  # RFC 3830 §6.1: MIKEY version 1


class MikeyDataType(IntEnum):
    """HDR data type. RFC 3830 §6.1; RFC 6043 §6.1 Table 6.1; IANA."""

    PSK_INIT = 0
    PSK_RESP = 1
    PK_INIT = 2
    PK_RESP = 3
    DH_INIT = 4
    DH_RESP = 5
    ERROR = 6
    DHHMAC_INIT = 7  # RFC 4650
    DHHMAC_RESP = 8  # RFC 4650
    RSA_R_INIT = 9  # RFC 4738
    RSA_R_RESP = 10  # RFC 4738
    REQUEST_INIT_PSK = 11  # RFC 6043
    REQUEST_INIT_PK = 12  # RFC 6043
    REQUEST_RESP = 13  # RFC 6043
    TRANSFER_INIT = 14  # RFC 6043
    TRANSFER_RESP = 15  # RFC 6043
    RESOLVE_INIT_PSK = 16  # RFC 6043
    RESOLVE_INIT_PK = 17  # RFC 6043
    RESOLVE_RESP = 18  # RFC 6043


class MikeyPayloadType(IntEnum):
    """Next Payload values. RFC 3830 §6.1; RFC 6043 §6.1 Table 6.2."""

    LAST = 0
    KEMAC = 1
    PKE = 2
    DH = 3
    SIGN = 4
    T = 5
    ID = 6
    CERT = 7
    CHASH = 8
    V = 9
    SP = 10
    RAND = 11
    ERR = 12
    TR = 13  # RFC 6043 §6.4
    IDR = 14  # RFC 6043 §6.6
    RANDR = 15  # RFC 6043 §6.8
    TP = 16  # RFC 6043 §6.10
    TICKET = 17  # RFC 6043 §6.10
    KEY_DATA = 20
    GENERAL_EXT = 21


class MikeyPrfFunc(IntEnum):
    """HDR / TP PRF func (7 bits). RFC 3830 §6.1; RFC 6043 §6.1 Table 6.3."""

    MIKEY_1 = 0  # P-function with HMAC-SHA-1 (RFC 3830 §4.1.2)
    HMAC_SHA_256 = 1  # PRF-HMAC-SHA-256 (RFC 6043 §6.1)


class MikeyMapType(IntEnum):
    """CS ID map type. RFC 3830 §6.1; RFC 4563; RFC 6043 Table 6.4."""

    SRTP_ID = 0
    EMPTY = 1
    GENERIC_ID = 2


class MikeyEncrAlg(IntEnum):
    """KEMAC encryption algorithm. RFC 3830 §6.2; RFC 6043 §6.2."""

    NULL = 0
    AES_CM_128 = 1
    AES_KW_128 = 2
    AES_CM_256 = 3  # RFC 6043


class MikeyMacAlg(IntEnum):
    """KEMAC / V MAC algorithm. RFC 3830 §6.2; RFC 6043 §6.2."""

    NULL = 0
    HMAC_SHA_1_160 = 1
    HMAC_SHA_256_256 = 2  # RFC 6043


MAC_LENGTHS = {
    MikeyMacAlg.NULL: 0,
    MikeyMacAlg.HMAC_SHA_1_160: 20,
    MikeyMacAlg.HMAC_SHA_256_256: 32,
}


class MikeyKeyType(IntEnum):
    """Key data sub-payload type (4 bits). RFC 3830 §6.13; RFC 6043 §6.2.1."""

    TGK = 0
    TGK_SALT = 1
    TEK = 2
    TEK_SALT = 3
    GTGK = 4  # RFC 6043
    GTGK_SALT = 5  # RFC 6043
    MPK = 6  # RFC 6043
    K_PR = 7  # RFC 6267


SALTED_KEY_TYPES = frozenset({MikeyKeyType.TGK_SALT, MikeyKeyType.TEK_SALT, MikeyKeyType.GTGK_SALT})


class MikeyKeyValidity(IntEnum):
    """Key validity (KV) type. RFC 3830 §6.13, §6.14."""

    NULL = 0
    SPI = 1
    INTERVAL = 2


class MikeyTsType(IntEnum):
    """Timestamp type. RFC 3830 §6.6; RFC 6043 §6.3."""

    NTP_UTC = 0
    NTP = 1
    COUNTER = 2
    NTP_UTC_32 = 3  # RFC 6043


TS_LENGTHS = {
    MikeyTsType.NTP_UTC: 8,
    MikeyTsType.NTP: 8,
    MikeyTsType.COUNTER: 4,
    MikeyTsType.NTP_UTC_32: 4,
}


class MikeyTsRole(IntEnum):
    """TR timestamp role. RFC 6043 §6.4."""

    TRI = 1  # time of issue
    TRS = 2  # start of validity
    TRE = 3  # end of validity
    TRR = 4  # rekeying interval


class MikeyIdType(IntEnum):
    """ID type. RFC 3830 §6.7; RFC 6043 §6.5."""

    NAI = 0
    URI = 1
    BYTE_STRING = 2  # RFC 6043


class MikeyCertType(IntEnum):
    """Cert type. RFC 3830 §6.7."""

    X509V3 = 0
    X509V3_URL = 1
    X509V3_SIGN = 2
    X509V3_ENCR = 3


class MikeyIdRole(IntEnum):
    """IDR role. RFC 6043 §6.6; IANA (6, 7 RFC 6509)."""

    IDRI = 1
    IDRR = 2
    IDRKMS = 3
    IDRPSK = 4
    IDRAPP = 5
    IDRKMSI = 6
    IDRKMSR = 7


class MikeyRandRole(IntEnum):
    """RANDR role. RFC 6043 §6.8."""

    RANDRI = 1
    RANDRR = 2
    RANDRKMS = 3


class MikeyHashFunc(IntEnum):
    """CHASH hash function. RFC 3830 §6.8; RFC 6043 §6.7."""

    SHA_1 = 0
    MD5 = 1
    SHA_256 = 2


HASH_LENGTHS = {MikeyHashFunc.SHA_1: 20, MikeyHashFunc.MD5: 16, MikeyHashFunc.SHA_256: 32}


class MikeyDhGroup(IntEnum):
    """DH group. RFC 3830 §6.4 (value length implied by the group)."""

    OAKLEY_5 = 0
    OAKLEY_1 = 1
    OAKLEY_2 = 2


DH_LENGTHS = {MikeyDhGroup.OAKLEY_5: 192, MikeyDhGroup.OAKLEY_1: 96, MikeyDhGroup.OAKLEY_2: 128}


class MikeyProtType(IntEnum):
    """SP / GENERIC-ID Prot type, IANA-assigned values. RFC 3830 §6.10; RFC 4442."""

    SRTP = 0
    TESLA = 1


@dataclass(frozen=True, slots=True)
class MikeyProtTypes:
    """TS 33.328 Prot types outside the IANA registry (private use 241-255).

    Project decision (a): TLS 241, PSK S/MIME 242, Application Specific 243.
    UNCONFIRMED by any published source: a peer using other values needs the
    same setting.
    """

    tls: int = 241
    psk_smime: int = 242
    application: int = 243


class MikeySrtpParam(IntEnum):
    """SRTP policy parameter types. RFC 3830 §6.10.1; RFC 4771; RFC 7714; IANA."""

    ENCR_ALG = 0
    SESSION_ENCR_KEY_LENGTH = 1
    AUTH_ALG = 2
    SESSION_AUTH_KEY_LENGTH = 3
    SESSION_SALT_KEY_LENGTH = 4
    SRTP_PRF = 5
    KEY_DERIVATION_RATE = 6
    SRTP_ENCRYPTION = 7
    SRTCP_ENCRYPTION = 8
    FEC_ORDER = 9
    SRTP_AUTHENTICATION = 10
    AUTH_TAG_LENGTH = 11
    SRTP_PREFIX_LENGTH = 12
    ROC_TRANSMISSION_RATE = 13  # RFC 4771
    SRTP_AUTH_ALG = 14
    SRTCP_AUTH_ALG = 15
    SRTP_SESSION_AUTH_KEY_LENGTH = 16
    SRTCP_SESSION_AUTH_KEY_LENGTH = 17
    SRTP_AUTH_TAG_LENGTH = 18
    SRTCP_AUTH_TAG_LENGTH = 19
    AEAD_AUTH_TAG_LENGTH = 20  # RFC 7714


class MikeySrtpEncrAlg(IntEnum):
    """SRTP encryption algorithm values. RFC 3830 §6.10.1; RFC 7714; IANA."""

    NULL = 0
    AES_CM = 1
    AES_F8 = 2
    SEED_CTR = 3
    SEED_CCM = 4
    SEED_GCM = 5
    AES_GCM = 6  # RFC 7714
    ARIA_CTR = 7
    ARIA_GCM = 8


class MikeySrtpAuthAlg(IntEnum):
    """SRTP authentication algorithm values. RFC 3830 §6.10.1; IANA."""

    NULL = 0
    HMAC_SHA_1 = 1
    RCCM1 = 2
    RCCM2 = 3
    RCCM3 = 4


class MikeyErrorCode(IntEnum):
    """ERR error number. RFC 3830 §6.12; RFC 4738; RFC 6043 §6.9."""

    AUTH_FAILURE = 0
    INVALID_TS = 1
    INVALID_PRF = 2
    INVALID_MAC = 3
    INVALID_EA = 4
    INVALID_HA = 5
    INVALID_DH = 6
    INVALID_ID = 7
    INVALID_CERT = 8
    INVALID_SP = 9
    INVALID_SPPAR = 10
    INVALID_DT = 11
    UNSPECIFIED = 12
    UNSUPPORTED_MESSAGE = 13  # RFC 4738
    INVALID_TICKET = 14  # RFC 6043
    INVALID_TPPAR = 15  # RFC 6043


class MikeyTicketType(IntEnum):
    """TP / TICKET Ticket Type (16 bits). RFC 6043 §6.10; IANA."""

    MIKEY_BASE = 1  # RFC 6043 Appendix A
    THREEGPP_BASE = 2  # "used and specified by 3GPP"


class MikeyTicketFlag(IntEnum):
    """TP / TICKET flags D..O as bit masks of the 12-bit field. RFC 6043 §6.10."""

    D = 1 << 11  # ticket generated by the KMS
    E = 1 << 10  # Ticket Resolve mandatory
    F = 1 << 9  # TRANSFER_RESP shall be sent
    G = 1 << 8  # Responder shall generate RANDRr
    H = 1 << 7  # RANDRi used in key derivation
    I = 1 << 6  # noqa: E741  key forking
    J = 1 << 5  # ticket may be reused
    K = 1 << 4  # KMS changed TP or KEMAC
    L = 1 << 3  # Initiator may supply session keys
    M = 1 << 2  # Responder may supply session keys
    N = 1 << 1  # Initiator can send TRANSFER_INIT with it
    O = 1 << 0  # noqa: E741  Responder can process it


WILDCARD_IDENTITY = b"?@?"  # TS 33.328 §6.2.3.5: any resolver, keys forked by its identity
