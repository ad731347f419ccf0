{{/*
Names: "<release>-<chart>" unless the release name already holds the chart's name, at most
20 characters: a node id is "<region>.<pod name>", and the pod name is this, the workload, the
ReplicaSet hash and a suffix; with a region of at most 15 characters it stays within the 63
that FAIRLANE_NODE_ID allows.
*/}}
{{- define "fairlane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fairlane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 20 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 20 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 20 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fairlane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fairlane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fairlane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "fairlane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.region }}
fairlane.dev/region: {{ . }}
{{- end }}
{{- end }}

{{- define "fairlane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fairlane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fairlane.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.env }}
{{- include "fairlane.fullname" . }}
{{- end }}
{{- end }}

{{/*
The workloads this install runs, as JSON: name -> the roles it runs (FAIRLANE_ROLES).
Embedded mode: one pod with every role. Cluster mode: by layout.
*/}}
{{- define "fairlane.workloads" -}}
{{- $all := list "ingress" "actor" "worker" }}
{{- $workloads := dict }}
{{- if or (eq .Values.mode "embedded") (eq .Values.layout "combined") }}
{{- $_ := set $workloads "node" $all }}
{{- else }}
{{- $_ := set $workloads "ingress" (list "ingress") }}
{{- $_ := set $workloads "owner" (list "actor") }}
{{- if .Values.workloads.worker.enabled }}
{{- $_ := set $workloads "worker" (list "worker") }}
{{- end }}
{{- end }}
{{- toJson $workloads }}
{{- end }}

{{/* How long a pod may take to stop: the preStop sleep, the drain, the hand-over bound. */}}
{{- define "fairlane.terminationGracePeriodSeconds" -}}
{{- $graceMs := dig "server" "shutdownGraceMs" 10000 .Values.config | int }}
{{- $graceS := div (add $graceMs 999) 1000 }}
{{- /* STOP_AFTER_GRACE_MS in services/fairlane/src/node/node.ts: the rest of a stop. */}}
{{- add .Values.drain.preStopSleepSeconds $graceS 5 .Values.drain.slackSeconds }}
{{- end }}
