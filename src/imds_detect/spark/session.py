"""The Spark session of a scan: reuse the active one, or start one (and stop it afterwards)."""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

DEFAULT_MASTER = "local[*]"


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[") or master.startswith("local-cluster[")


def get_session(master: str | None) -> tuple[Any, bool]:
    """(session, whether this call started it). An active session is reused when `master` is None or is its
    master. Otherwise a session is started with `master`, else the master configured for spark-submit
    (``spark.master``), else ``local[*]``; Python workers then run this interpreter."""
    SparkConf = importlib.import_module("pyspark").SparkConf  # pyspark: an optional dependency
    SparkSession = importlib.import_module("pyspark.sql").SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if master is None or master == running:
            return active, False
        raise ValueError(f"a Spark session with master {running} is already active (asked for {master})")
    if is_local(master or SparkConf().get("spark.master") or DEFAULT_MASTER):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # on a cluster: spark.pyspark.python
    builder = SparkSession.builder.appName("imds-detect").config("spark.ui.showConsoleProgress", "false")
    if master is not None:
        builder = builder.master(master)
    elif not SparkConf().contains("spark.master"):
        builder = builder.master(DEFAULT_MASTER)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("IMDS_DETECT_SPARK_LOG_LEVEL", "ERROR"))
    if not is_local(session.sparkContext.master or DEFAULT_MASTER):
        ship_package(session)
    return session, True


def ship_package(session: Any) -> None:
    """Send this imds_detect package (pure Python) to the executors (`SparkContext.addPyFile`), so they run
    the driver's code; its dependencies (orjson, optionally hyperscan) must be installed there.
    IMDS_DETECT_SPARK_SHIP=0 turns it off (when the executors' environment already has the package)."""
    if os.environ.get("IMDS_DETECT_SPARK_SHIP", "1") == "0":
        return
    package = Path(__file__).resolve().parent.parent
    archive = Path(tempfile.mkdtemp(prefix="imds-detect-spark-")) / "imds_detect.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(package.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                bundle.write(file, Path("imds_detect") / file.relative_to(package))
    session.sparkContext.addPyFile(str(archive))
