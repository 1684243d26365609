# Sourced by scripts/test and scripts/bench-*: the build (cargo's own ./target, so
# `cargo run` and the tests share one build of DataFusion) and the pinned Python
# venv (rebuilt whenever scripts/requirements-test.txt changes).
NASLAKE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${NASLAKE_CACHE:-$HOME/.cache/naslake}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$NASLAKE_ROOT/target}"
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

# The build the benchmarks time: the release profile, as a deployment builds it
# (`cargo build --release`, which the Dockerfiles name), not the tests' dev
# profile, whose naslake code keeps debug assertions and overflow checks. Its
# first build compiles DataFusion a second time (17 minutes on two cores here).
# NASLAKE_BENCH_PROFILE=dev times the tests' build instead. Arguments are cargo's
# (which binaries and examples); NASLAKE_BIN is set to the built binary.
bench_build() {
  cargo build --workspace --profile "${NASLAKE_BENCH_PROFILE:-release}" --quiet "$@"
  bench_bin
}

# NASLAKE_BIN: the benchmarks' binary, as `bench_build` builds it.
bench_bin() {
  local profile="${NASLAKE_BENCH_PROFILE:-release}" dir
  case "$profile" in dev) dir=debug ;; *) dir="$profile" ;; esac
  export NASLAKE_BIN="$CARGO_TARGET_DIR/$dir/naslake"
}

# Debian packages the tests use: acl (setfacl/getfacl, for the POSIX ACL tests),
# a Java 17 runtime (pyspark's local mode), binutils (objdump, for the glibc
# symbol versions of the binary) and slapd (OpenLDAP's server, for the ACL job's
# live directory; the tests run their own, the package's is not started).
ensure_debian_packages() {
  local missing=() sudo=""
  { command -v setfacl && command -v getfacl; } >/dev/null 2>&1 || missing+=(acl)
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
  command -v objdump >/dev/null 2>&1 || missing+=(binutils)
  [[ -x /usr/sbin/slapd && -x /usr/sbin/slapadd ]] || missing+=(slapd)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "== installing Debian packages: ${missing[*]}"
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  # No questions (slapd's debconf would ask for an admin password).
  local apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q)
  "${apt[@]}" "${missing[@]}" >/dev/null || { $sudo apt-get update -q >/dev/null && "${apt[@]}" "${missing[@]}" >/dev/null; }
}

# Starts moto server on a free loopback port; exports NASLAKE_TEST_MOTO (its URL) and
# stops it by PID when the calling script exits.
start_moto() {
  local port log
  port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log="${TMPDIR:-/tmp}/naslake-moto-$port.log"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "$log" 2>&1 &
  MOTO_PID=$!
  trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/reset', data=b'', timeout=1)" 2>/dev/null; then
      export NASLAKE_TEST_MOTO="http://127.0.0.1:$port"
      echo "== moto server on 127.0.0.1:$port (pid $MOTO_PID)"
      return 0
    fi
    sleep 0.2
  done
  echo "moto server did not start; its log:" >&2
  cat "$log" >&2
  return 1
}
