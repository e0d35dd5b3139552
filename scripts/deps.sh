#!/bin/sh
# Installs the Debian packages listed in scripts/deps.txt that are not installed yet.
# Used by `make deps` (and so by `make run` and `make test`) and by .ci/run.
# A line "PACKAGE COMMAND" installs PACKAGE only when COMMAND is not on PATH either
# (Node.js may come from elsewhere with its own npm, which Debian's npm would conflict with).
set -eu
list="$(dirname "$0")/deps.txt"
missing=""
while read -r pkg cmd; do
	case "$pkg" in '' | '#'*) continue ;; esac
	if [ -n "${cmd:-}" ] && command -v "$cmd" >/dev/null 2>&1; then
		continue
	fi
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $pkg" ;;
	esac
done <"$list"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
