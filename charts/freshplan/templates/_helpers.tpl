{{/*
The release's base name: "<release>-freshplan", or the release name alone when it already says
freshplan; at most 63 characters (a DNS label).
*/}}
{{- define "freshplan.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "freshplan" .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The labels every object carries. */}}
{{- define "freshplan.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "freshplan.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The labels that select this release's pods: never changed by an upgrade. */}}
{{- define "freshplan.selectorLabels" -}}
app.kubernetes.io/name: freshplan
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The name of a CRM Deployment (and its Service, PDB): "<fullname>-query-by", "<fullname>-relay".
Called with (dict "root" $ "component" "query" "territory" "BY"); territory empty for the relay.
*/}}
{{- define "freshplan.crmName" -}}
{{- $base := printf "%s-%s" (include "freshplan.fullname" .root) .component -}}
{{- if .territory -}}
{{- printf "%s-%s" ($base | trunc 60 | trimSuffix "-") (lower .territory) -}}
{{- else -}}
{{- $base | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
The selector of one CRM workload's pods (the same dict as freshplan.crmName). The relay's
territory label is "all": the operator scales only Deployments that carry a territory, and a
calendar window without `territories` covers it.
*/}}
{{- define "freshplan.crmSelectorLabels" -}}
{{ include "freshplan.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
freshplan.io/component: {{ .component }}
freshplan.io/territory: {{ default "all" .territory }}
{{- end -}}

{{- define "freshplan.operatorName" -}}
{{- printf "%s-operator" (include "freshplan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "freshplan.operatorSelectorLabels" -}}
{{ include "freshplan.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "freshplan.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* The CRM's query Service, which selects the query pods of every territory. */}}
{{- define "freshplan.crmUrl" -}}
{{- if .Values.operator.crm.url -}}
{{- .Values.operator.crm.url -}}
{{- else -}}
{{- printf "http://%s-query.%s.svc:8080" (include "freshplan.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
Where the operator posts its sync reports: the command role's Service, unless a CRM URL of the
user's own (a gateway) serves both; empty then, and the operator uses the CRM URL.
*/}}
{{- define "freshplan.crmCommandUrl" -}}
{{- if .Values.operator.crm.commandUrl -}}
{{- .Values.operator.crm.commandUrl -}}
{{- else if not .Values.operator.crm.url -}}
{{- printf "http://%s-command.%s.svc:8080" (include "freshplan.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
The CRM's environment, for serve and migrate: the database URL from its Secret and the pool size.
*/}}
{{- define "freshplan.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
- name: CRM_DB_MAX_CONNECTIONS
  value: {{ .Values.database.maxConnections | quote }}
- name: CRM_LOG_FORMAT
  value: json
- name: CRM_LOG
  value: {{ .Values.crm.logLevel | quote }}
{{- end -}}

{{/* What the CRM refuses to start without, said before anything is installed. */}}
{{- define "freshplan.checkAuth" -}}
{{- $keys := .Values.auth.publicKeys -}}
{{- if and .Values.auth.jwksUrl $keys.secret -}}
{{- fail "auth: give either auth.jwksUrl or auth.publicKeys.secret, not both" -}}
{{- end -}}
{{- if not (or .Values.auth.jwksUrl $keys.secret) -}}
{{- fail "auth: give auth.jwksUrl or auth.publicKeys.secret (with auth.publicKeys.files): the CRM verifies tokens with them" -}}
{{- end -}}
{{- if and $keys.secret (not $keys.files) -}}
{{- fail "auth.publicKeys.files: name the PEM files of auth.publicKeys.secret to trust" -}}
{{- end -}}
{{- end -}}
