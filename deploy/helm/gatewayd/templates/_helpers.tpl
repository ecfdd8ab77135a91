{{/* The chart's name, overridable with nameOverride. */}}
{{- define "gatewayd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The objects' base name: the release name when it already contains the
chart's name (`helm install gatewayd ...` gives gatewayd, gatewayd-config,
gatewayd-admin, gatewayd-secrets, as deploy/k8s), else RELEASE-gatewayd.
*/}}
{{- define "gatewayd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gatewayd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods: never change them on an installed release. */}}
{{- define "gatewayd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatewayd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatewayd.labels" -}}
helm.sh/chart: {{ include "gatewayd.chart" . }}
{{ include "gatewayd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gatewayd
{{- end }}

{{/* The Secret that holds JWT_SECRET and REDIS_PASSWORD. */}}
{{- define "gatewayd.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "gatewayd.fullname" .) }}
{{- end }}
{{- end }}

{{- define "gatewayd.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}
