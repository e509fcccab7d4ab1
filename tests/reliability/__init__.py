"""Reliability and security under load, faults and hostile input (issue 10)."""
