#!/usr/bin/env bash
# Make sure the system tools the project needs are present, from Debian's packages:
#   kafka     Java 17+ and Maven, for the embedded Kafka (skipped when KAFKA_BOOTSTRAP_SERVERS is set)
#   chromium  headless Chromium, for the dashboard's browser test, and a CJK font (WenQuanYi Zen Hei)
#             so that its Chinese labels are drawn (and its screenshot shows them)
# As root with apt-get (Debian/Ubuntu, CI), missing ones are installed; otherwise we say how.
set -euo pipefail
missing=()
for need in "$@"; do
  case "$need" in
    kafka)
      if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
        command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
        command -v mvn >/dev/null 2>&1 || missing+=(maven)
      fi ;;
    chromium)
      command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
      { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh | grep -q .; } || missing+=(fonts-wqy-zenhei) ;;
    *) echo "ensure-system.sh: unknown need '$need'" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[zhucan] installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "[zhucan] missing: ${missing[*]}. Install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})," >&2
  echo "         or, for Kafka, set KAFKA_BOOTSTRAP_SERVERS to a running broker." >&2
  exit 1
fi
