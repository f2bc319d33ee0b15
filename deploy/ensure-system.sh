#!/usr/bin/env bash
# Make sure the system tools the embedded Kafka needs are present: Java 17+ and Maven.
# As root with apt-get (Debian/Ubuntu, CI), missing ones are installed; otherwise we say how.
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] || [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[zhucan] installing ${missing[*]} with apt-get (needed for the embedded Kafka)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "[zhucan] missing: ${missing[*]}. Install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})," >&2
  echo "         or set KAFKA_BOOTSTRAP_SERVERS to a running Kafka." >&2
  exit 1
fi
