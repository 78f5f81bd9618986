#!/bin/sh
# Entry point of the anchor-node image.
#
#   anchor-entrypoint init   issue the cluster's certificates (compose service init, as root)
#   anchor-entrypoint node   prepare this node's token and configuration, run anchor-node
#   anchor-entrypoint CMD    run CMD, such as anchorctl or sh
#
# Environment of init: ANCHOR_NODES (node1,node2,...), ANCHOR_ACME_HOSTS
# (extra names of the ACME HTTPS certificates). Environment of node:
# ANCHOR_NODE_ID, ANCHOR_NODES, ANCHOR_PUBLIC_URLS, ANCHOR_BOOTSTRAP
# (true on one node), ANCHOR_EAB_IDENTIFIERS, ANCHOR_LOG_LEVEL.
set -eu

cmd="${1:-node}"
case "$cmd" in
init)
  anchor-setup certs -nodes "${ANCHOR_NODES:?set ANCHOR_NODES}" \
    -acme-hosts "${ANCHOR_ACME_HOSTS:-localhost,127.0.0.1}" \
    -ca-dir /var/lib/anchor-ca -tls-dir /var/lib/anchor-tls -admin-dir /var/lib/anchor-admin
  # The volumes are created empty and owned by root; the nodes and
  # anchorctl run as the anchor user.
  if [ "$(id -u)" -eq 0 ]; then
    chown -R anchor:anchor /var/lib/anchor-ca /var/lib/anchor-tls /var/lib/anchor-admin
  fi
  ;;
node)
  export SOFTHSM2_CONF=/var/lib/anchor/hsm/softhsm2.conf
  set -- -id "${ANCHOR_NODE_ID:?set ANCHOR_NODE_ID}" \
    -nodes "${ANCHOR_NODES:?set ANCHOR_NODES}" \
    -public-urls "${ANCHOR_PUBLIC_URLS:?set ANCHOR_PUBLIC_URLS}" \
    -eab-identifiers "${ANCHOR_EAB_IDENTIFIERS:-}" \
    -log-level "${ANCHOR_LOG_LEVEL:-info}"
  if [ "${ANCHOR_BOOTSTRAP:-false}" = true ]; then
    set -- "$@" -bootstrap
  fi
  anchor-setup node "$@"
  exec anchor-node -config /var/lib/anchor/data/node.json
  ;;
*)
  exec "$@"
  ;;
esac
