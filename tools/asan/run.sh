#!/usr/bin/env bash
# Run the C extensions' tests under AddressSanitizer (and UndefinedBehaviorSanitizer).
#
# Builds imds_detect's C extensions with -fsanitize=address,undefined into a scratch copy of the source
# tree, then runs the tests that drive them (property tests on generated, mutated and hostile input, the
# hostile-input matrix, the parsers' fuzz tests) with the sanitizer runtime preloaded and Python's allocator
# switched to malloc, so that a read past a bytes object is caught. Exits non-zero on any report.
#   tools/asan/run.sh            # about 20 minutes on 2 cores
#   tools/asan/run.sh --quick    # the C extensions' own comparisons only (CI runs this)
set -euo pipefail
tests=(tests/test_auditd_tiles.py tests/test_numeric_native.py tests/test_native.py tests/test_csv_records.py)
if [ "${1:-}" = "--quick" ]; then  # the CSV fast reading on its fixed cases (its property tests take ~10 min here)
  shift
  for case in fast_reading_takes_plain_rows_and_hands_the_others_over a_field_over_the_csv_limit_is_reported_as_the_reference_reports_it \
              block_gate_finds_each_kind_where_it_is scan_of_a_csv_export_is_the_same_without_the_fast_reading; do
    tests+=("tests/test_csv_fast.py::test_$case")
  done
else
  tests+=(tests/test_csv_fast.py)
  tests+=(tests/test_auditd_prefilter.py tests/test_hostile_inputs.py tests/test_fuzz_parsers.py tests/test_prefilter.py)
fi
cd "$(dirname "$0")/../.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r src setup.py pyproject.toml README.md "$scratch"/
(cd "$scratch" && CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -O1" \
  python3 setup.py -q build_ext --inplace >/dev/null 2>&1)
for module in _audit_tiles _numeric_tokens _line_numbers _csv_records; do
  ls "$scratch"/src/imds_detect/"$module".*.so >/dev/null || { echo "asan: $module was not built"; exit 1; }
done
runtime=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$runtime:$ubsan" PYTHONMALLOC=malloc
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$scratch/report"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$scratch/report"
export PYTHONPATH="$scratch/src"
python3 -c "import imds_detect, imds_detect.accelerators as a; assert imds_detect.__file__.startswith('$scratch'), imds_detect.__file__; assert all(a.report().values()), a.report(); print('asan: extensions', a.report())"
status=0
python3 -m pytest -q -p no:cacheprovider --rootdir=. -o pythonpath="$scratch/src" "${tests[@]}" "$@" || status=$?
if compgen -G "$scratch/report*" >/dev/null; then
  cat "$scratch"/report*
  echo "asan: SANITIZER REPORT (above)"
  exit 1
fi
[ "$status" -eq 0 ] && echo "asan: no sanitizer report"
exit "$status"
