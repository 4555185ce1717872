"""Responder knowledge shipped with the package: per-rule investigation guide, response playbook, tuning
guidance and hunting queries (`imds-detect explain RULE_ID`, the HTML report, the `guide` field of alerts).

- `content`: loads the per-rule TOML files of `data/` into `RuleGuide` objects;
- `render`: a guide as terminal text or Markdown;
- `command`: the `imds-detect explain` click command.
"""

from .content import RuleGuide, all_guides, guide_for, guide_reference

__all__ = ["RuleGuide", "all_guides", "guide_for", "guide_reference"]
