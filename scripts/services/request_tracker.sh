#!/usr/bin/env bash
# Install Request Tracker 5 from Debian's packages, for the helpdesk tests.
#
# Only the packages: the tests (tests/servers/request_tracker.py) build their own configuration
# and SQLite database in a temporary folder and start the standalone server on a loopback port.
# Nothing is configured system-wide and nothing is started here.
#
# Idempotent and quick when everything is present (a dpkg query per package). Needs root to
# install. Answers to the packages' questions are preseeded so the install never prompts:
# no dbconfig database (the tests make their own), no cron jobs. `msmtp-mta` satisfies the
# packages' need for a mail transport agent without pulling in a mail server; RT never uses it
# (the tests point RT's sendmail at a script that writes to a file). `w3m` is RT's HTML-to-text
# converter; without it RT warns on every start.
set -euo pipefail

log() { printf 'request_tracker.sh: %s\n' "$*" >&2; }

packages=(request-tracker5 rt5-db-sqlite rt5-standalone w3m)
# Any mail transport agent satisfies RT's dependency; add msmtp-mta only when there is none, since
# it would replace (remove) one that is installed.
[[ -e /usr/sbin/sendmail ]] || packages+=(msmtp-mta)

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for package in "${packages[@]}"; do
    package_installed "$package" || missing+=("$package")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    log "Request Tracker 5 already installed"
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    log "missing packages: ${missing[*]}; run this script as root (or with sudo) to install them"
    exit 1
fi

debconf-set-selections <<'EOF'
request-tracker5 request-tracker5/dbconfig-install boolean false
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/rtname string rt.test
request-tracker5 request-tracker5/correspondaddress string support@rt.test
request-tracker5 request-tracker5/webpath string
request-tracker5 request-tracker5/database-type select sqlite3
rt5-db-sqlite rt5-db-sqlite/available boolean true
msmtp msmtp/apparmor boolean false
EOF

apt_options=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
export DEBIAN_FRONTEND=noninteractive
started=$(date +%s)
log "installing: ${missing[*]}"
if ! apt-get "${apt_options[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2; then
    log "install failed; refreshing the package lists and trying once more"
    apt-get "${apt_options[@]}" update -q >&2
    apt-get "${apt_options[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2
fi
log "done in $(($(date +%s) - started)) s"
