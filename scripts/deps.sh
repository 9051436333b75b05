#!/usr/bin/env bash
# Installs, on a Debian machine, what ringfence's tests need when it is
# missing: PostgreSQL 15 server with contrib (amcheck), localedef and the
# locale sources, and Chromium for the browser tests of the pages.
# Idempotent; quiet when everything is present.
set -euo pipefail

need=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql-15 postgresql-contrib)
elif ! ls /usr/share/postgresql/*/extension/amcheck.control >/dev/null 2>&1; then
  need+=(postgresql-contrib)
fi
if ! command -v localedef >/dev/null 2>&1 || [ ! -f /usr/share/i18n/locales/en_US ]; then
  need+=(locales)
fi

if ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium fonts-dejavu-core)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "scripts/deps.sh: missing Debian packages: ${need[*]} (install them as root)" >&2
  exit 1
fi
echo "scripts/deps.sh: installing ${need[*]}" >&2
# Tests start their own throwaway clusters: don't let the package create and
# start a system cluster.
mkdir -p /etc/postgresql-common
grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
  echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
