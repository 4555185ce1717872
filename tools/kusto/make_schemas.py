"""Regenerate schemas.json: Defender XDR / Sentinel table schemas for the Kusto checker.

Columns and types come from the schemas Microsoft documents, as packaged by pySigma-backend-kusto
(sigma.pipelines.microsoftxdr.tables: advanced hunting; sigma.pipelines.sentinelasim.tables: ASIM). The
Device* tables get the columns Sentinel adds when the Defender XDR connector streams them.

    python tools/kusto/make_schemas.py
"""

from __future__ import annotations

import json
from pathlib import Path

from sigma.pipelines.microsoftxdr.tables import MICROSOFT_XDR_TABLES  # type: ignore[import-untyped]
from sigma.pipelines.sentinelasim.tables import SENTINEL_ASIM_TABLES  # type: ignore[import-untyped]

XDR = ("DeviceProcessEvents", "DeviceNetworkEvents", "DeviceEvents")
ASIM = ("imProcessCreate", "imNetworkSession", "imWebSession")
SENTINEL_COLUMNS = {"TimeGenerated": "datetime", "TenantId": "string", "Type": "string", "SourceSystem": "string",
                    "MachineGroup": "string"}
TYPES = {"boolean": "bool", "integer": "int", "date": "datetime", "datetime": "datetime", "string": "string",
         "int": "int", "long": "long", "bool": "bool", "dynamic": "dynamic", "real": "real", "double": "real",
         "guid": "guid", "timespan": "timespan"}


def _columns(table: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: TYPES.get(info.get("data_type", "string").lower(), "string") for name, info in table.items()}


def main() -> None:
    schemas: dict[str, dict[str, dict[str, str]]] = {"defender": {}, "sentinel": {}}
    for name in XDR:
        columns = _columns(MICROSOFT_XDR_TABLES[name])
        schemas["defender"][name] = columns
        schemas["sentinel"][name] = {**columns, **SENTINEL_COLUMNS}
    for name in ASIM:
        schemas["sentinel"][name] = _columns(SENTINEL_ASIM_TABLES[name])
    out = Path(__file__).with_name("schemas.json")
    out.write_text(json.dumps(schemas, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
