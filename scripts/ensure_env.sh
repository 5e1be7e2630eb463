#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with the tested pins.
# Idempotent: does nothing when .venv is already up to date with pyproject.toml and constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${HEBBLIB_VENV:-.venv}
stamp="$VENV/.hebblib-installed"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
# JupyterLab without the "Jupyter news" pop-up and the update check on first start (settings overrides
# of this environment only; the user's own settings still win where they set these).
write_lab_overrides() {
  local dir="$VENV/share/jupyter/lab/settings"
  mkdir -p "$dir"
  [ -f "$dir/overrides.json" ] || cat > "$dir/overrides.json" <<'JSON'
{
  "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}
}
JSON
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  write_lab_overrides
  exit 0
fi
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
write_lab_overrides
echo "$want" > "$stamp"
echo "environment ready in $VENV ($(( $(date +%s) - start )) s)"
