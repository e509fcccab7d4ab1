"""Sans-I/O SDP (RFC 8866) and offer/answer (RFC 3264) with SDES keys (RFC 4568).

See ``focus.sdp.session`` for the parser and error tree,
``focus.sdp.attributes`` for typed attribute codecs, ``focus.sdp.sdes`` for the
SRTP suites table and ``focus.sdp.offer_answer`` for the focus's answer.
"""

from focus.sdp.attributes import (
    SdesKeyParam,
    SdpCrypto,
    SdpDirection,
    SdpFingerprint,
    SdpFmtp,
    SdpKeyMgmt,
    SdpRtcp,
    SdpRtpmap,
    SdpSetup,
    SdpTcpConnection,
)
from focus.sdp.offer_answer import (
    SdpAnswerPlan,
    SdpCodec,
    SdpCryptoChoice,
    SdpFocusPolicy,
    SdpStreamPlan,
    build_answer,
    plan_answer,
)
from focus.sdp.sdes import SDES_SUITES, SdesSuite, generate_key_salt
from focus.sdp.session import (
    SdpAttribute,
    SdpConnection,
    SdpError,
    SdpLocalError,
    SdpMedia,
    SdpOrigin,
    SdpRemoteError,
    SdpSession,
    SdpTiming,
)

__all__ = [
    "SDES_SUITES",
    "SdesKeyParam",
    "SdesSuite",
    "SdpAnswerPlan",
    "SdpAttribute",
    "SdpCodec",
    "SdpConnection",
    "SdpCrypto",
    "SdpCryptoChoice",
    "SdpDirection",
    "SdpError",
    "SdpFingerprint",
    "SdpFmtp",
    "SdpFocusPolicy",
    "SdpKeyMgmt",
    "SdpLocalError",
    "SdpMedia",
    "SdpOrigin",
    "SdpRemoteError",
    "SdpRtcp",
    "SdpRtpmap",
    "SdpSession",
    "SdpSetup",
    "SdpStreamPlan",
    "SdpTcpConnection",
    "SdpTiming",
    "build_answer",
    "generate_key_salt",
    "plan_answer",
]
