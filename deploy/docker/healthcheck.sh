#!/usr/bin/env bash
# The image's HEALTHCHECK: GET /health/live on the port the gateway listens on, as .NET picks it:
# the first URL of ASPNETCORE_URLS when set, else the first of ASPNETCORE_HTTP_PORTS, else 8080.
# The aspnet image has no curl or wget, so bash's /dev/tcp asks; `timeout` bounds the whole exchange,
# so a gateway that accepts the connection and never answers fails the check instead of hanging it.
set -u
port=""
if [ -n "${ASPNETCORE_URLS:-}" ]; then
  url=${ASPNETCORE_URLS%%;*}       # first URL
  hostport=${url#*://}             # drop the scheme
  hostport=${hostport%%/*}         # drop any path
  case "$hostport" in
    *:*) port=${hostport##*:} ;;
    *) case "$url" in https://*) port=443 ;; *) port=80 ;; esac ;;
  esac
fi
if [ -z "$port" ]; then
  port=${ASPNETCORE_HTTP_PORTS:-8080}
  port=${port%%[,;]*}
fi
exec timeout "${HEALTHCHECK_TIMEOUT_SECONDS:-4}" bash -c '
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf "GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3
  head -n 1 <&3 | grep -q " 200 "
' healthcheck "$port"
