"""The conference focus: SIP signalling, policy and key management (TS 33.328 Annex G)."""
