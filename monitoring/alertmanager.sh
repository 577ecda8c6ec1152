#!/bin/sh
# Alertmanager's start (docker-compose.yml): alertmanager.yml with the receiver's parts the
# settings ask for, each secret (the webhook's URL, the SMTP password) in a file of the data
# folder rather than in the configuration. scripts/check.py has refused values that would
# break the YAML (quotes, backslashes, line breaks).
#   alertmanager.sh [alertmanager's own options]
set -eu
here=$(dirname "$0")
data=${ALERTMANAGER_DATA:-/alertmanager}
config="$data/alertmanager.yml"
umask 077
{
    cat "$here/alertmanager.yml"
    printf '\nreceivers:\n  - name: team\n'
    if [ -n "${NOTIFY_WEBHOOK_URL:-}" ]; then
        printf %s "$NOTIFY_WEBHOOK_URL" > "$data/webhook-url"
        cat <<YAML
    slack_configs:
      - api_url_file: $data/webhook-url
        send_resolved: true
        title: '{{ template "stack.title" . }}'
        text: '{{ template "stack.text" . }}'
YAML
    fi
    if [ -n "${ALERT_EMAIL_TO:-}" ]; then
        printf %s "${SMTP_PASSWORD:-}" > "$data/smtp-password"
        cat <<YAML
    email_configs:
      - to: "$ALERT_EMAIL_TO"
        from: "${SMTP_FROM:-prefect-alerts@localhost}"
        smarthost: "$SMTP_SMARTHOST"
        require_tls: ${SMTP_REQUIRE_TLS:-true}
        send_resolved: true
        headers: {Subject: '{{ template "stack.title" . }} {{ .CommonLabels.flow }}'}
        text: '{{ template "stack.text" . }}'
YAML
        if [ -n "${SMTP_USER:-}" ]; then
            printf '        auth_username: "%s"\n        auth_password_file: %s\n' "$SMTP_USER" "$data/smtp-password"
        fi
    fi
} > "$config"
cp "$here/alertmanager.tmpl" "$data/alertmanager.tmpl"
exec alertmanager --config.file="$config" --storage.path="$data" "$@"
