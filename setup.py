"""Build hook for the optional C accelerator; everything else is declared in pyproject.toml.

The extension is optional: when it cannot be compiled (no compiler, no Python headers), the install goes on and
imds-detect uses the pure-Python code it replaces (``imds-detect version`` and the benchmarks say which runs).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("imds_detect._audit_tiles", ["src/imds_detect/native/audit_tiles.c"], optional=True,
                  depends=["src/imds_detect/native/shared.h"]),
        Extension("imds_detect._numeric_tokens", ["src/imds_detect/native/numeric_tokens.c"], optional=True,
                  depends=["src/imds_detect/native/shared.h"]),
        Extension("imds_detect._line_numbers", ["src/imds_detect/native/line_numbers.c"], optional=True,
                  depends=["src/imds_detect/native/shared.h"]),
        Extension("imds_detect._csv_records", ["src/imds_detect/native/csv_records.c"], optional=True,
                  depends=["src/imds_detect/native/shared.h"]),
    ],
)
