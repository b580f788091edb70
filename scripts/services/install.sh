#!/usr/bin/env bash
# Install the real servers the test suite talks to: Dovecot (IMAP), PostgreSQL,
# Chromium and Request Tracker 5, from Debian packages.
#
# Idempotent and cheap when nothing is missing: every package is checked with
# dpkg/command -v first, and `apt-get update` only runs when something has to
# be installed. Needs root (CI and the dev machines run as root).
set -euo pipefail

log() { printf 'install.sh: %s\n' "$*" >&2; }

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

postgres_server_present() {
    local bin_dir
    for bin_dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$bin_dir/pg_ctl" || -x "$bin_dir/initdb" ]]; then
            return 0
        fi
    done
    return 1
}

# Request Tracker 5 (the helpdesk tests) has its own script: preseeded answers, its own packages.
bash "$(dirname "$0")/request_tracker.sh"

missing=()
package_installed dovecot-imapd || missing+=(dovecot-imapd)
postgres_server_present || missing+=(postgresql)
[[ -x /usr/bin/chromium ]] || command -v chromium >/dev/null || missing+=(chromium)
# tests/servers/dovecot.py makes its self-signed certificate with openssl.
command -v openssl >/dev/null || missing+=(openssl)

if [[ ${#missing[@]} -eq 0 ]]; then
    log "all service packages already installed"
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    log "missing packages: ${missing[*]}; run this script as root (or with sudo) to install them"
    exit 1
fi

dovecot_was_missing=false
[[ " ${missing[*]} " == *" dovecot-imapd "* ]] && dovecot_was_missing=true

apt_options=(-o DPkg::Lock::Timeout=300)
export DEBIAN_FRONTEND=noninteractive
log "installing: ${missing[*]}"
apt-get "${apt_options[@]}" update -q >&2
apt-get "${apt_options[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2

# The tests start their own Dovecot instances on high ports with private
# configs. A system Dovecot started by the package's postinst (on 143/993)
# would only confuse people probing ports, so stop it and keep it off.
# (Under Docker, /usr/sbin/policy-rc.d usually prevents the start already.)
if $dovecot_was_missing; then
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        systemctl disable --now dovecot.service dovecot.socket >&2 || \
            log "warning: could not stop/disable dovecot via systemctl"
    else
        if [[ -s /run/dovecot/master.pid ]] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
            doveadm stop >&2 || log "warning: could not stop the system dovecot (doveadm stop)"
        fi
        if command -v update-rc.d >/dev/null; then
            update-rc.d dovecot disable >&2 || log "warning: update-rc.d dovecot disable failed"
        fi
    fi
fi

log "done"
