"""The Spark engine: `imds-detect scan --engine spark` (optional extra: ``pip install imds-detect[spark]``).

The prefilter runs in the JVM (jvmfilter.py) and only candidate lines reach Python, where the same
adapter, detector and allowlist as the local engine run (executor.py); engine.py numbers lines and
merges the results so that they equal the local engine's. See docs/SPARK.md.
"""

from .engine import SparkScanError, SparkScanResult, SparkStats, scan_with_spark

__all__ = ["SparkScanError", "SparkScanResult", "SparkStats", "scan_with_spark"]
