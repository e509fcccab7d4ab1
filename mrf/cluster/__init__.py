"""Several ``mrf serve`` nodes behind Kamailio on one PostgreSQL (docs/scaling.md)."""
