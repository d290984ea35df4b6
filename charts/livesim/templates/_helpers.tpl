{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "livesim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: fullnameOverride, or the release name when it already contains the chart name, or
"<release>-<chart>". Truncated to 63 characters.
*/}}
{{- define "livesim.fullname" -}}
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

{{- define "livesim.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the release, without app.kubernetes.io/component. */}}
{{- define "livesim.commonLabels" -}}
helm.sh/chart: {{ include "livesim.chart" . }}
app.kubernetes.io/name: {{ include "livesim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: livesim
{{- end }}

{{/* Labels of the operator's objects. */}}
{{- define "livesim.labels" -}}
{{ include "livesim.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Selector labels of the operator's pods (never change across upgrades: Deployment selectors are immutable). */}}
{{- define "livesim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "livesim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "livesim.serviceAccountName" -}}
{{- default (include "livesim.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "livesim.leaseName" -}}
{{- default (include "livesim.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The image of the operator and of the simulation pods: repository@digest or repository:tag. */}}
{{- define "livesim.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Namespaces where SimClusters run, as a JSON list (use with fromJsonArray): networkPolicy.namespaces,
else watchNamespace, else the release namespace. Checks that watchNamespace is among them.
*/}}
{{- define "livesim.simulationNamespaces" -}}
{{- $ns := .Values.networkPolicy.namespaces }}
{{- if not $ns }}
{{- $ns = list (default .Release.Namespace .Values.watchNamespace) }}
{{- end }}
{{- if and .Values.watchNamespace (not (has .Values.watchNamespace $ns)) }}
{{- fail (printf "networkPolicy.namespaces %v must include watchNamespace %q: the operator only runs SimClusters there" $ns .Values.watchNamespace) }}
{{- end }}
{{- toJson $ns }}
{{- end }}

{{/* Checks of value combinations that a JSON schema cannot express simply. */}}
{{- define "livesim.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "leaderElection.enabled=false needs replicaCount=1 (got %d): without a Lease, replicas would reconcile the same objects at once" (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
