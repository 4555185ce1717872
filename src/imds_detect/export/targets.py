"""Export targets: every file of an export as (relative path -> text), then written to a directory."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..config import Config
from . import meta, sentinel
from .allowfilters import skipped_entries
from .convert import DROP_FIELDS, backend_targets, convert_rules
from .sigma_rules import ENGINE_ONLY, Notes, SigmaRuleDoc, build_rules
from .yamlout import dump

NATIVE = ("sigma", "sentinel-rule", "arm", "hunting")


def available_targets() -> list[str]:
    """Native targets, then pySigma conversion targets found installed."""
    return [*NATIVE, *backend_targets()]


def sigma_text(doc: SigmaRuleDoc) -> str:
    return dump(doc.data, meta.comment_header("#", (f"mirrors imds-detect rule {doc.engine_rule}",)))


def _converted_file(target: str, doc: SigmaRuleDoc, queries: list[str]) -> tuple[str, str]:
    _backend, _pipeline, ext, comment = backend_targets()[target]
    stem = doc.filename.removesuffix(".yml")
    if ext == "json":
        payload = {"generator": meta.generator_note(), "rule": doc.name, "id": doc.data["id"],
                   "level": doc.data["level"], "queries": queries}
        return f"{target}/{stem}.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    extra = (f"{doc.data['title']} (level {doc.data['level']}, sigma id {doc.data['id']})",)
    if comment:
        header = meta.comment_header(comment, extra)
    else:  # SPL: triple-backtick comments
        header = "".join(f"``` {line} ```\n" for line in (meta.generator_note(), *extra))
    return f"{target}/{stem}.{ext}", header + "\n\n".join(q.rstrip("\n") for q in queries) + "\n"


def build_export(config: Config, targets: list[str]) -> dict[str, str]:
    """Every file of the export (relative path -> text), the manifest included. Deterministic."""
    chosen = available_targets() if "all" in targets else list(dict.fromkeys(targets))
    notes = Notes([])
    docs = build_rules(config, notes=notes)
    files: dict[str, str] = {}
    manifest: dict[str, object] = {
        "generator": meta.generator_note(),
        "version": meta.tool_version(),
        "date": meta.release_date(),
        "what_a_siem_query_cannot_see": ENGINE_ONLY,
        "allowlist_entries_not_expressible": skipped_entries(config.allowlist),
        "targets": {},
    }
    target_info: dict[str, object] = {}
    for target in chosen:
        produced: list[str] = []
        not_converted: dict[str, str] = {}
        if target == "sigma":
            for doc in docs:
                path = f"sigma/{doc.filename}"
                files[path] = sigma_text(doc)
                produced.append(path)
        elif target == "sentinel-rule":
            rule = sentinel.analytic_rule(config)
            files["sentinel/imds_metadata_access.yaml"] = dump(rule, meta.comment_header("#"))
            produced.append("sentinel/imds_metadata_access.yaml")
        elif target == "arm":
            files["sentinel/imds_metadata_access.arm.json"] = sentinel.arm_json(sentinel.analytic_rule(config))
            produced.append("sentinel/imds_metadata_access.arm.json")
        elif target == "hunting":
            for name, hunting in sentinel.hunting_docs(config).items():
                path = f"sentinel/hunting/{name}.yaml"
                files[path] = dump(hunting, meta.comment_header("#"))
                produced.append(path)
        else:
            target_docs = build_rules(config, DROP_FIELDS[target]) if target in DROP_FIELDS else docs
            by_name = {doc.name: doc for doc in target_docs}
            for result in convert_rules(target, {doc.name: sigma_text(doc) for doc in target_docs}):
                if result.error:
                    not_converted[result.rule] = result.error
                    continue
                path, text = _converted_file(target, by_name[result.rule], result.queries)
                files[path] = text
                produced.append(path)
        info: dict[str, object] = {"files": produced}
        if not_converted:
            info["not_converted"] = not_converted
        if target in DROP_FIELDS:
            info["allowlist_fields_missing"] = sorted(DROP_FIELDS[target])
        target_info[target] = info
    manifest["targets"] = target_info
    manifest["allowlist_notes"] = notes.skipped
    files["manifest.json"] = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    return dict(sorted(files.items()))


def write_export(files: dict[str, str], out_dir: str) -> list[Path]:
    """Write every file atomically (temporary file + rename); returns the paths written."""
    written = []
    root = Path(out_dir)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(path)
    return written
