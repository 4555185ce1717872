"""Live queries: pull only the candidate rows from Microsoft Sentinel (Log Analytics) or Defender XDR advanced
hunting and run the full detection on them (`imds-detect scan --sentinel WORKSPACE_ID` / `--defender`).

- `candidates`: the KQL that selects candidate rows (the knowledge base's indicator patterns, as the local
  prefilter uses them) from DeviceNetworkEvents, DeviceProcessEvents and DeviceEvents;
- `slices`: splitting the time window so that no answer is truncated;
- `sentinel`: Log Analytics through azure-monitor-query's LogsQueryClient;
- `defender`: Microsoft Graph `security/runHuntingQuery` through an azure-core pipeline;
- `runner`: the two sources behind one function that returns a scan result.
"""


class LiveQueryError(Exception):
    """A live query failed: one line that says why (authentication, permission, throttling, bad answer)."""
