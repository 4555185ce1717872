"""`imds-detect validate`: the atomic tests for T1552.005 run for real against a mock metadata service.

Pieces: :mod:`.catalog` (the tests), :mod:`.namespace` (the sandbox), :mod:`.audit` and :mod:`.strace`
(telemetry capture, chosen in :mod:`.capture`), :mod:`.render` (observations as audit.log, Defender and
Sysmon records), :mod:`.detection` (scan and verdict), :mod:`.runner` (the real run), :mod:`.synthetic`
(``--synthetic``), :mod:`.report` (table and JSON).
"""
