# scripts/lib/common.sh — shared by scripts/dev, scripts/test and scripts/bench.
# Installs missing Debian packages and builds; sourced, not run.

LP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Everything a build, the tests and the benchmarks need (DESIGN.md lists why).
LP_PACKAGES=(
  build-essential cmake pkg-config clang-format
  libuv1-dev node-llhttp libluajit-5.1-dev luajit lua-cjson-dev lua-cjson
  libpq-dev libhiredis-dev libcurl4-openssl-dev libsodium-dev
  lua-busted lua-socket lua-posix
  postgresql postgresql-contrib redis-server wrk curl ca-certificates procps
)

lp_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

lp_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs whatever of LP_PACKAGES is missing (apt-get update first).
lp_install_packages() {
  local missing=()
  for p in "${LP_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  lp_log "installing ${missing[*]}"
  lp_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  lp_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# lp_build DIR [cmake args...] — configure once, build with every core.
lp_build() {
  local dir=$1; shift
  cmake -S "$LP_ROOT" -B "$LP_ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$LP_ROOT/$dir" -j"$(nproc)"
}
