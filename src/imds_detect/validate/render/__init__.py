"""Observations written in the log formats users have (each read back by imds-detect's own parsers)."""
