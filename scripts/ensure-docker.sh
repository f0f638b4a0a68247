#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, installing and starting it when we may.
# Root with apt and no engine: installs Debian's docker.io (plus debootstrap, bubblewrap, tmux) and
# starts dockerd in the background. Otherwise it says exactly what to install or start, and fails.
set -uo pipefail

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
need_packages=()
command -v dockerd >/dev/null 2>&1 || need_packages+=(docker.io)
command -v docker >/dev/null 2>&1 || need_packages+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_packages+=(debootstrap)
command -v bwrap >/dev/null 2>&1 || need_packages+=(bubblewrap)
command -v tmux >/dev/null 2>&1 || need_packages+=(tmux)

if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "rsi: missing ${need_packages[*]}. Install them (Debian: sudo apt-get install ${need_packages[*]})," >&2
    echo "     start the engine (sudo dockerd &), then run this again." >&2
    engine_up && exit 0
    exit 1
  fi
  echo "rsi: installing ${need_packages[*]} with apt-get …" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null \
    || { echo "rsi: apt-get could not install ${need_packages[*]}." >&2; exit 1; }
fi

engine_up && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "rsi: the Docker engine is not running and only root can start it here: sudo dockerd &" >&2
  exit 1
fi
echo "rsi: starting dockerd (log: /var/log/rsi-dockerd.log) …" >&2
nohup setsid dockerd >/var/log/rsi-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  engine_up && { echo "rsi: Docker engine $(docker version --format '{{.Server.Version}}') is up." >&2; exit 0; }
  sleep 1
done
echo "rsi: dockerd did not come up within 60 s; see /var/log/rsi-dockerd.log." >&2
tail -n 20 /var/log/rsi-dockerd.log >&2
exit 1
