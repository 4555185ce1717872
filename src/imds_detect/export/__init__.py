"""Exports of the detection for SIEMs: Sigma rules, pySigma conversions and native Microsoft Sentinel content.

Everything is generated from the knowledge base (`imds_detect.knowledge`) and the user's tuning file
(`imds_detect.config`), deterministically: the same inputs give byte-identical files.

Modules, one job each:

- `meta`: tool version, rule dates, stable ids, file headers;
- `hostforms`: the host spellings a SIEM query can express (numeric, IPv4-mapped IPv6, percent-encoded);
- `globs`: allowlist globs as Sigma values and as RE2 regular expressions;
- `allowfilters`: allowlist entries as conditions per rule family;
- `sigma_rules`: the Sigma rules;
- `convert`: conversions through pySigma backends found by its plugin mechanism;
- `kql`: the native KQL (Defender / Sentinel) query of the analytic rule and the hunting queries;
- `sentinel`: the Sentinel analytic rule YAML, its ARM template and the hunting-query YAML;
- `targets`: the export targets and writing them to a directory;
- `command`: the `imds-detect export` click command.
"""
