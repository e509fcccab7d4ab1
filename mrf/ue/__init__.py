"""``mrf ue``: the reference participant client (interfaces.md, "mrf ue").

``client`` (SIP UAC, offer/answer, the session), ``chat`` (MSRP over TLS with
fingerprints), ``cli`` (argparse, stdin commands, JSON events).
"""
