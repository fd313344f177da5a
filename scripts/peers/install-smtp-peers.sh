#!/usr/bin/env bash
# Installs the real SMTP peers the SMTP tests talk to (docs: /work/shared/design/TEST-PEERS.md):
#   swaks                      scripted SMTP client (STARTTLS, AUTH, pipelining)   — Debian `swaks`
#   smtp-source / smtp-sink    Postfix's load generator and sink                   — Debian `postfix`
#   openssl s_client           TLS version checks                                  — Debian `openssl`
#   perl IO::Socket::SSL       swaks' STARTTLS/TLS support                         — Debian `libio-socket-ssl-perl`
#   perl Authen::SASL          swaks' AUTH support                                  — Debian `libauthen-sasl-perl`
# Python 3 (smtplib) is expected to be present already.
#
# Idempotent: does nothing when everything is installed. Must run as root. Postfix is installed
# with debconf "No configuration", so its binaries are there but no mail system is set up or started.
set -euo pipefail

need=()
command -v swaks >/dev/null 2>&1 || need+=(swaks)
[ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
perl -MIO::Socket::SSL -e 1 >/dev/null 2>&1 || need+=(libio-socket-ssl-perl)
perl -MAuthen::SASL -e 1 >/dev/null 2>&1 || need+=(libauthen-sasl-perl)
perl -MNet::SSLeay -e 1 >/dev/null 2>&1 || need+=(libnet-ssleay-perl)

if [ ${#need[@]} -eq 0 ]; then
  echo "smtp peers: already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "smtp peers: missing ${need[*]}; run this script as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

install() { apt-get install -y --no-install-recommends "${need[@]}"; }
if ! install; then
  # A fresh machine may have no package lists yet.
  apt-get update
  install
fi
echo "smtp peers: installed ${need[*]}"
