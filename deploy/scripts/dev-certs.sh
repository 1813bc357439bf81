#!/usr/bin/env bash
# Development TLS for deploy/kubernetes/overlays/dev, made with `secretsvc pki init` (docs/tls.md): one
# private CA and one server certificate for both secretsvc and the webhook, kept in $PKI_DIR on this machine.
# Production uses cert-manager instead (deploy/kubernetes/components/cert-manager).
#
#   deploy/scripts/dev-certs.sh [APP_NAMESPACE...]     # before `kubectl apply -k deploy/kubernetes/overlays/dev`
#   deploy/scripts/dev-certs.sh [APP_NAMESPACE...]     # again after it: fills in the webhook's caBundle
#
# Makes, in namespace secretsvc: the Secrets secretsvc-tls and injector-webhook-tls, the ConfigMap
# secretsvc-ca (key ca.crt), and the Secret secretsvc-keyring (a random passphrase, made once and never
# replaced: losing it loses the keyring). In each APP_NAMESPACE (default: payments, the worked example's):
# the ConfigMap secretsvc-ca the agents read. Idempotent.
set -euo pipefail

PKI_DIR=${PKI_DIR:-.secretsvc-dev-pki}
NS=secretsvc
APP_NAMESPACES=("$@")
[ "${#APP_NAMESPACES[@]}" -gt 0 ] || APP_NAMESPACES=(payments)

if [ ! -f "$PKI_DIR/server.pem" ]; then
    secretsvc pki init --dir "$PKI_DIR" \
        --dns secretsvc --dns secretsvc.$NS --dns secretsvc.$NS.svc --dns secretsvc.$NS.svc.cluster.local \
        --dns injector-webhook.$NS.svc --dns injector-webhook.$NS.svc.cluster.local
fi

apply() { kubectl apply -f - >/dev/null; }
ensure_namespace() {
    kubectl get namespace "$1" >/dev/null 2>&1 || kubectl create namespace "$1" --dry-run=client -o yaml | apply
}

ensure_namespace $NS
for name in secretsvc-tls injector-webhook-tls; do
    kubectl -n $NS create secret tls "$name" --cert "$PKI_DIR/server.pem" --key "$PKI_DIR/server-key.pem" \
        --dry-run=client -o yaml | apply
done
for ns in $NS "${APP_NAMESPACES[@]}"; do
    ensure_namespace "$ns"
    kubectl -n "$ns" create configmap secretsvc-ca --from-file=ca.crt="$PKI_DIR/ca.pem" --dry-run=client -o yaml | apply
done
if ! kubectl -n $NS get secret secretsvc-keyring >/dev/null 2>&1; then
    # Straight from the random source into the Secret: never on disk here, never on a command line.
    head -c 32 /dev/urandom | base64 | tr -d '\n' |
        kubectl -n $NS create secret generic secretsvc-keyring --from-file=passphrase=/dev/stdin
fi

if kubectl get mutatingwebhookconfiguration secretsvc-injector >/dev/null 2>&1; then
    bundle=$(base64 -w0 "$PKI_DIR/ca.pem")
    kubectl patch mutatingwebhookconfiguration secretsvc-injector --type=json \
        -p "[{\"op\": \"add\", \"path\": \"/webhooks/0/clientConfig/caBundle\", \"value\": \"$bundle\"}]" >/dev/null
    echo "dev-certs: caBundle set on secretsvc-injector"
else
    echo "dev-certs: now kubectl apply -k deploy/kubernetes/overlays/dev, then run this again for the caBundle"
fi
