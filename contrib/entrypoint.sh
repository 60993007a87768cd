#!/bin/sh
# Container entry point: initialise the data volume on first start, then run the command.
#   MAIL_DOMAIN    the first mail domain (default: example.org)
#   MAIL_HOSTNAME  the host name in banners and certificates (default: mail.$MAIL_DOMAIN)
set -eu
data=${COURRIEL_DATA:-/var/lib/courriel}
if [ ! -f "$data/courriel.toml" ]; then
    domain=${MAIL_DOMAIN:-example.org}
    courriel init "$data" --production --domain "$domain" --hostname "${MAIL_HOSTNAME:-mail.$domain}"
fi
if [ "$#" -eq 0 ]; then
    set -- serve
fi
exec courriel -d "$data" "$@"
