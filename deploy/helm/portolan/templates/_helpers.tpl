{{/* Chart name, overridable. */}}
{{- define "portolan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, prefixed with the chart name unless it already
contains it (release `portolan` gives `portolan`, like the kustomize tree).
Truncated to leave room for the `-headless` and `-registry` suffixes.
*/}}
{{- define "portolan.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "portolan.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portolan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portolan.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "portolan.registryConfigMap" -}}
{{- default (printf "%s-registry" (include "portolan.fullname" .)) .Values.registry.existingConfigMap }}
{{- end }}

{{/* The server version: the image tag, defaulting to appVersion. */}}
{{- define "portolan.version" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* Selector labels: never change them on an upgrade (selectors are immutable). */}}
{{- define "portolan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portolan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels shared by every object (component set per object). */}}
{{- define "portolan.commonLabels" -}}
app.kubernetes.io/name: {{ include "portolan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: portolan
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ include "portolan.version" . | quote }}
helm.sh/chart: {{ include "portolan.chart" . }}
{{- end }}

{{- define "portolan.labels" -}}
{{ include "portolan.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/*
The gRPC port's name and appProtocol. Cleartext: `grpc` and
kubernetes.io/h2c (Istio: plaintext gRPC). TLS: `https-grpc` and `https`
(an IANA service name; Istio: TLS, passed through). deploy/README.md,
"Port names and appProtocol".
*/}}
{{- define "portolan.grpcPortName" -}}
{{- if .Values.tls.enabled }}https-grpc{{ else }}grpc{{ end }}
{{- end }}

{{- define "portolan.grpcAppProtocol" -}}
{{- if .Values.tls.enabled }}https{{ else }}kubernetes.io/h2c{{ end }}
{{- end }}
