#!/usr/bin/env bash
# Drift benchmark in one command:  bench/drift.sh
# Times mlops_core against a scipy.stats.ks_2samp loop and Evidently's DataDriftPreset.
# Evidently (0.7.x, with pandas<3) goes into bench/.venv-evidently only; it is never a
# dependency of the project. If it cannot be installed, the other figures are still printed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=bench/.venv-evidently
if ! "$VENV/bin/python" -c "import evidently, pandas" >/dev/null 2>&1; then
    echo "bench/drift.sh: installing Evidently 0.7 and pandas<3 into $VENV (once) ..." >&2
    if ! { "$PYTHON" -m venv --system-site-packages "$VENV" \
        && "$VENV/bin/python" -m pip install -q "evidently==0.7.*" "pandas<3"; } >&2; then
        echo "bench/drift.sh: could not install Evidently; printing the other figures" >&2
    fi
fi
exec "$PYTHON" bench/bench_drift.py --evidently-python "$VENV/bin/python" "$@"
