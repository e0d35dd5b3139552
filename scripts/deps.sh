#!/bin/sh
# Installs the Debian packages listed in scripts/deps.txt that are not installed yet.
# Used by `make deps` (and so by `make run` and `make test`) and by .ci/run.
set -eu
list="$(dirname "$0")/deps.txt"
missing=""
for pkg in $(grep -v '^#' "$list" | grep -v '^$'); do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $pkg" ;;
	esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
