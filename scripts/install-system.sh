#!/usr/bin/env bash
# System packages the project runs against: the real redis-server (and, with --bench, wrk;
# with --browser, Debian's chromium). Installs only what is missing.
set -euo pipefail
want=(redis-server)
for arg in "$@"; do
  case "$arg" in
    --bench) want+=(wrk) ;;
    --browser) want+=(chromium) ;;
  esac
done
missing=()
for pkg in "${want[@]}"; do
  bin=$pkg; [ "$pkg" = redis-server ] && bin=redis-server
  command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing with apt: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
