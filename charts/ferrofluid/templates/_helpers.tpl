{{/* Names, labels and shared snippets. */}}

{{- define "ferrofluid.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* `<release>-<chart>`, or the release name when it already contains the chart name. */}}
{{- define "ferrofluid.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ferrofluid.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "dataset-controller"). */}}
{{- define "ferrofluid.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferrofluid.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects. */}}
{{- define "ferrofluid.labels" -}}
helm.sh/chart: {{ include "ferrofluid.chart" .ctx }}
{{ include "ferrofluid.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ferrofluid
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{/* Object name of one component: `<fullname>-<component>`. */}}
{{- define "ferrofluid.componentName" -}}
{{- printf "%s-%s" (include "ferrofluid.fullname" .ctx) .component -}}
{{- end -}}

{{/* ServiceAccount name of one component: (dict "ctx" $ "component" "…" "values" .Values.<component>). */}}
{{- define "ferrofluid.serviceAccountName" -}}
{{- if .values.serviceAccount.create -}}
{{- default (include "ferrofluid.componentName" .) .values.serviceAccount.name -}}
{{- else -}}
{{- required (printf "%s.serviceAccount.name is required when serviceAccount.create is false" .component) .values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference: (dict "ctx" $ "image" .Values.image); the tag defaults to the appVersion. */}}
{{- define "ferrofluid.image" -}}
{{- printf "%s:%s" .image.repository (toString (default .ctx.Chart.AppVersion .image.tag)) -}}
{{- end -}}

{{/* Environment every component gets: its pod name and namespace, logging, API rate limits. */}}
{{- define "ferrofluid.commonEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: RUST_LOG
  value: {{ .Values.logging.level | quote }}
- name: FERROFLUID_LOG_JSON
  value: {{ .Values.logging.json | quote }}
- name: FERROFLUID_API_QPS
  value: {{ .Values.apiRateLimit.qps | quote }}
- name: FERROFLUID_API_BURST
  value: {{ .Values.apiRateLimit.burst | quote }}
{{- end -}}

{{/* Leader-election environment of a Deployment component. */}}
{{- define "ferrofluid.leaderEnv" -}}
- name: FERROFLUID_LEADER_ELECT
  value: {{ .Values.leaderElection.enabled | quote }}
- name: FERROFLUID_LEASE_SECONDS
  value: {{ .Values.leaderElection.leaseSeconds | quote }}
{{- end -}}

{{/* Prometheus discovery annotations: (dict "ctx" $ "port" 8080). */}}
{{- define "ferrofluid.scrapeAnnotations" -}}
{{- if .ctx.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/* Lease name a component elects its leader on; fixed in the binaries. */}}
{{- define "ferrofluid.leaseName" -}}
{{- printf "ferrofluid-%s" .component -}}
{{- end -}}

{{/* The webhook's Service and MutatingWebhookConfiguration name (its Deployment's too): (dict "ctx" $). */}}
{{- define "ferrofluid.webhookName" -}}
{{- include "ferrofluid.componentName" (dict "ctx" .ctx "component" "webhook") -}}
{{- end -}}

{{/* The Secret in the release namespace where the webhook keeps its CA and serving certificate: (dict "ctx" $). */}}
{{- define "ferrofluid.webhookCertSecret" -}}
{{- printf "%s-cert" (include "ferrofluid.webhookName" .) -}}
{{- end -}}
