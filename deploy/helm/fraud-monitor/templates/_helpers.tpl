{{/*
Names. The base name is <release>-fraud-monitor, or the release name alone when it already
contains the chart's name. It is cut to 52 characters: a StatefulSet's pods carry a
controller-revision-hash label of its name plus 11 characters, and labels end at 63.
*/}}
{{- define "fraud-monitor.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "fraud-monitor.fullname" -}}
{{- $name := include "fraud-monitor.name" . -}}
{{- $full := printf "%s-%s" .Release.Name $name -}}
{{- if contains $name .Release.Name -}}
{{- $full = .Release.Name -}}
{{- end -}}
{{- .Values.fullnameOverride | default $full | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "fraud-monitor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "fraud-monitor.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The labels every object carries; add app.kubernetes.io/component per object. */}}
{{- define "fraud-monitor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "fraud-monitor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fraud-monitor
{{- end -}}

{{/* What selects the worker pods (never changes across upgrades). */}}
{{- define "fraud-monitor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fraud-monitor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end -}}

{{/* Where the pod mounts what. */}}
{{- define "fraud-monitor.configDir" -}}/etc/fraudmon/config{{- end -}}
{{- define "fraud-monitor.tlsDir" -}}/etc/fraudmon/tls{{- end -}}
{{- define "fraud-monitor.stateMount" -}}/var/lib/fraudmon{{- end -}}
{{- define "fraud-monitor.stateDir" -}}/var/lib/fraudmon/state{{- end -}}

{{/*
The secrets the worker reads, as YAML: environment variable -> {name, key} of the Secret
that holds it. The settings file names each variable (fraud-monitor.settings), the pod
takes each from its Secret with secretKeyRef; no value ever passes through the chart.
*/}}
{{- define "fraud-monitor.secretEnv" -}}
{{- $v := .Values -}}
{{- $env := dict -}}
{{- if $v.kafka.sasl.passwordSecret.name -}}
{{- $_ := set $env "FRAUDMON_KAFKA_PASSWORD" $v.kafka.sasl.passwordSecret -}}
{{- end -}}
{{- if $v.kafka.tls.keyPasswordSecret.name -}}
{{- $_ := set $env "FRAUDMON_KAFKA_KEY_PASSWORD" $v.kafka.tls.keyPasswordSecret -}}
{{- end -}}
{{- if $v.store.passwordSecret.name -}}
{{- $_ := set $env "FRAUDMON_STORE_PASSWORD" $v.store.passwordSecret -}}
{{- end -}}
{{- if $v.api.tokenSecret.name -}}
{{- $_ := set $env "FRAUDMON_API_TOKEN" $v.api.tokenSecret -}}
{{- end -}}
{{- if $v.api.analystTokensSecret.name -}}
{{- $_ := set $env "FRAUDMON_ANALYST_TOKENS" $v.api.analystTokensSecret -}}
{{- end -}}
{{- if $v.api.adminTokensSecret.name -}}
{{- $_ := set $env "FRAUDMON_ADMIN_TOKENS" $v.api.adminTokensSecret -}}
{{- end -}}
{{- if $v.api.metricsTokenSecret.name -}}
{{- $_ := set $env "FRAUDMON_METRICS_TOKEN" $v.api.metricsTokenSecret -}}
{{- end -}}
{{- range $v.webhooks.receivers -}}
{{- $_ := set $env (include "fraud-monitor.webhookEnv" .name) .secret -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{- define "fraud-monitor.webhookEnv" -}}
{{- printf "FRAUDMON_WEBHOOK_SECRET_%s" (. | upper | replace "-" "_") -}}
{{- end -}}

{{/*
Files from Secrets, as YAML: file name under fraud-monitor.tlsDir -> {name, key}.
*/}}
{{- define "fraud-monitor.secretFiles" -}}
{{- $t := .Values.kafka.tls -}}
{{- $files := dict -}}
{{- if $t.caSecret.name -}}{{- $_ := set $files "kafka-ca.pem" $t.caSecret -}}{{- end -}}
{{- if $t.certSecret.name -}}{{- $_ := set $files "kafka-client.pem" $t.certSecret -}}{{- end -}}
{{- if $t.keySecret.name -}}{{- $_ := set $files "kafka-client.key" $t.keySecret -}}{{- end -}}
{{- if .Values.store.caSecret.name -}}
{{- $_ := set $files "store-ca.pem" .Values.store.caSecret -}}
{{- end -}}
{{- toYaml $files -}}
{{- end -}}

{{/*
The worker's settings file, as YAML: `config` with the keys the values above decide.
Settings the chart decides may not also come from `config` (one place for each), and
combinations the worker would refuse at start are refused here with the value to change.
*/}}
{{- define "fraud-monitor.settings" -}}
{{- $v := .Values -}}
{{- $k := $v.kafka -}}
{{- $tlsDir := include "fraud-monitor.tlsDir" . -}}
{{- $protocol := $k.securityProtocol -}}
{{- $kafka := dict "bootstrap_servers" $k.bootstrapServers "security_protocol" $protocol -}}
{{- if hasPrefix "SASL_" $protocol -}}
{{- if not (and $k.sasl.mechanism $k.sasl.username $k.sasl.passwordSecret.name) -}}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.passwordSecret.name" $protocol) -}}
{{- end -}}
{{- $_ := set $kafka "sasl_mechanism" $k.sasl.mechanism -}}
{{- $_ := set $kafka "sasl_username" $k.sasl.username -}}
{{- $_ := set $kafka "sasl_password_env" "FRAUDMON_KAFKA_PASSWORD" -}}
{{- else if or $k.sasl.mechanism $k.sasl.username $k.sasl.passwordSecret.name -}}
{{- fail (printf "kafka.sasl is set but kafka.securityProtocol is %s (use SASL_SSL or SASL_PLAINTEXT)" $protocol) -}}
{{- end -}}
{{- $t := $k.tls -}}
{{- if ne (empty $t.certSecret.name) (empty $t.keySecret.name) -}}
{{- fail "kafka.tls.certSecret and kafka.tls.keySecret go together (mutual TLS)" -}}
{{- end -}}
{{- if and $t.keyPasswordSecret.name (not $t.keySecret.name) -}}
{{- fail "kafka.tls.keyPasswordSecret is set without kafka.tls.keySecret" -}}
{{- end -}}
{{- if has $protocol (list "SSL" "SASL_SSL") -}}
{{- if $t.caSecret.name -}}
{{- $_ := set $kafka "ssl_cafile" (printf "%s/kafka-ca.pem" $tlsDir) -}}
{{- end -}}
{{- if $t.certSecret.name -}}
{{- $_ := set $kafka "ssl_certfile" (printf "%s/kafka-client.pem" $tlsDir) -}}
{{- $_ := set $kafka "ssl_keyfile" (printf "%s/kafka-client.key" $tlsDir) -}}
{{- end -}}
{{- if $t.keyPasswordSecret.name -}}
{{- $_ := set $kafka "ssl_key_password_env" "FRAUDMON_KAFKA_KEY_PASSWORD" -}}
{{- end -}}
{{- $_ := set $kafka "ssl_check_hostname" $t.checkHostname -}}
{{- else if or $t.caSecret.name $t.certSecret.name -}}
{{- fail (printf "kafka.tls is set but kafka.securityProtocol is %s (use SSL or SASL_SSL)" $protocol) -}}
{{- end -}}
{{- $managed := dict "kafka" $kafka -}}
{{- $_ := set $managed "processing" (dict "state_dir" (include "fraud-monitor.stateDir" .)) -}}
{{- $_ := set $managed "web" (dict "host" "0.0.0.0" "port" (int $v.web.port)) -}}
{{- $receivers := list -}}
{{- range $v.webhooks.receivers -}}
{{- $r := dict "name" .name "url" .url "secret_env" (include "fraud-monitor.webhookEnv" .name) -}}
{{- if .patterns -}}{{- $_ := set $r "patterns" .patterns -}}{{- end -}}
{{- if .minSeverity -}}{{- $_ := set $r "min_severity" .minSeverity -}}{{- end -}}
{{- $receivers = append $receivers $r -}}
{{- end -}}
{{- if $receivers -}}
{{- $_ := set $managed "webhooks" (dict "receivers" $receivers) -}}
{{- end -}}
{{- $api := dict -}}
{{- if $v.api.tokenSecret.name -}}{{- $_ := set $api "token_env" "FRAUDMON_API_TOKEN" -}}{{- end -}}
{{- if $v.api.analystTokensSecret.name -}}{{- $_ := set $api "analyst_tokens_env" "FRAUDMON_ANALYST_TOKENS" -}}{{- end -}}
{{- if $v.api.adminTokensSecret.name -}}{{- $_ := set $api "admin_tokens_env" "FRAUDMON_ADMIN_TOKENS" -}}{{- end -}}
{{- if $v.api.metricsTokenSecret.name -}}{{- $_ := set $api "metrics_token_env" "FRAUDMON_METRICS_TOKEN" -}}{{- end -}}
{{- if $api -}}{{- $_ := set $managed "api" $api -}}{{- end -}}
{{- $store := dict -}}
{{- if $v.store.url -}}
{{- if regexMatch "^[a-z]+://[^/@]*:[^/@]*@" $v.store.url -}}
{{- fail "store.url carries a password: give it in store.passwordSecret" -}}
{{- end -}}
{{- $_ := set $store "url" $v.store.url -}}
{{- else if or $v.store.passwordSecret.name $v.store.caSecret.name -}}
{{- fail "store.passwordSecret and store.caSecret are for PostgreSQL: set store.url too" -}}
{{- end -}}
{{- if $v.store.passwordSecret.name -}}{{- $_ := set $store "password_env" "FRAUDMON_STORE_PASSWORD" -}}{{- end -}}
{{- if $store -}}{{- $_ := set $managed "store" $store -}}{{- end -}}
{{- $settings := deepCopy ($v.config | default dict) -}}
{{- range $section, $keys := $managed -}}
{{- $given := index $settings $section | default dict -}}
{{- range $key, $_ := $keys -}}
{{- if hasKey $given $key -}}
{{- fail (printf "config.%s.%s is set by the chart from its own values (see values.yaml): set it there" $section $key) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $settings $section (mustMergeOverwrite (deepCopy $given) $keys) -}}
{{- end -}}
{{- $checkpoints := dig "processing" "checkpoint_store" "kafka" $settings -}}
{{- if and (eq $checkpoints "file") (or (gt (int $v.replicaCount) 1) (not $v.persistence.enabled)) -}}
{{- fail "config.processing.checkpoint_store: file keeps shard state on one pod's disk only: use kafka (the default) with several replicas or without persistence" -}}
{{- end -}}
{{- toYaml $settings -}}
{{- end -}}
