"""Conference event package (RFC 4575, RFC 6665), PSK S/MIME NOTIFYs (TS 33.328 Annex I)."""
