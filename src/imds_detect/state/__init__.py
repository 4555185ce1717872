"""Memory between runs: an embedded DuckDB store of what each (host, executable) reached, the alerts already
reported and the scans run (`--state`, `--remember`, `--new-only`), and the `hunt` questions answered from it.

- `location`: where the store lives by default (the user's data directory);
- `store`: the DuckDB schema, recording a scan, the first-seen and deduplication filters;
- `hunt`: the hunting questions as SQL, and the `imds-detect hunt` command.
"""
