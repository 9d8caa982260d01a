{{- define "singleton-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "singleton-operator.fullname" -}}
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

{{- define "singleton-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "singleton-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "singleton-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "singleton-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: singleton-operator
{{- end }}

{{- define "singleton-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "singleton-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "singleton-operator.leaseName" -}}
{{- default (include "singleton-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "singleton-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The elector's timing invariants (as client-go's): lease > renew deadline > 1.2 × retry period,
and a graceful shutdown that fits into the termination grace period. The schema cannot compare
two values, so the templates refuse bad combinations with a readable message.
*/}}
{{- define "singleton-operator.validate" -}}
{{- $le := .Values.leaderElection }}
{{- if le (int $le.leaseDurationSeconds) (int $le.renewDeadlineSeconds) }}
{{- fail (printf "leaderElection.leaseDurationSeconds (%d) must be greater than leaderElection.renewDeadlineSeconds (%d)" (int $le.leaseDurationSeconds) (int $le.renewDeadlineSeconds)) }}
{{- end }}
{{- if le (mul 10 (int $le.renewDeadlineSeconds)) (mul 12 (int $le.retryPeriodSeconds)) }}
{{- fail (printf "leaderElection.renewDeadlineSeconds (%d) must be greater than 1.2 × leaderElection.retryPeriodSeconds (%d)" (int $le.renewDeadlineSeconds) (int $le.retryPeriodSeconds)) }}
{{- end }}
{{- if ge (int .Values.shutdownTimeoutSeconds) (int .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "shutdownTimeoutSeconds (%d) must be less than terminationGracePeriodSeconds (%d)" (int .Values.shutdownTimeoutSeconds) (int .Values.terminationGracePeriodSeconds)) }}
{{- end }}
{{- end }}
