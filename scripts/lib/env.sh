# Sourced by scripts/test and scripts/bench-*: the shared build cache and the pinned
# Python venv (rebuilt whenever scripts/requirements-test.txt changes).
NASLAKE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${NASLAKE_CACHE:-$HOME/.cache/naslake}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
VENV="$CACHE/venv"
export NASLAKE_BIN="$CARGO_TARGET_DIR/debug/naslake"

ensure_venv() {
  local req="$NASLAKE_ROOT/scripts/requirements-test.txt" stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "== setting up the Python venv in $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}
