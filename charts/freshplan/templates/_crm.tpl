{{/*
One CRM workload: its Deployment, Service and PodDisruptionBudget. Called with
(dict "root" $ "component" "query" "territory" "BY" "values" <crm.query merged with the
territory's entry>); territory empty for the relay.
*/}}
{{- define "freshplan.crmWorkload" -}}
{{- $root := .root -}}
{{- $name := include "freshplan.crmName" . -}}
{{- $scaled := and $root.Values.scaling.enabled (hasKey $root.Values.scaling.components .component) }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "freshplan.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    freshplan.io/component: {{ .component }}
    freshplan.io/territory: {{ default "all" .territory }}
spec:
  {{- if not $scaled }}
  replicas: {{ .values.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "freshplan.crmSelectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "freshplan.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        freshplan.io/component: {{ .component }}
        freshplan.io/territory: {{ default "all" .territory }}
      {{- with $root.Values.crm.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "freshplan.fullname" $root }}-crm
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      # Longer than the server's own shutdown timeout (CRM_SHUTDOWN_TIMEOUT, 30 s), so that
      # in-flight requests finish before the kubelet kills it.
      terminationGracePeriodSeconds: 45
      containers:
        - name: crm-server
          image: {{ include "freshplan.image" (dict "root" $root "image" $root.Values.image.crm) }}
          imagePullPolicy: {{ $root.Values.image.crm.pullPolicy }}
          args: [serve, --role, {{ .component }}]
          env:
            - name: CRM_LISTEN
              value: "0.0.0.0:8080"
            {{- include "freshplan.databaseEnv" $root | nindent 12 }}
            {{- include "freshplan.authEnv" $root | nindent 12 }}
            {{- with $root.Values.crm.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          # The server waits for PostgreSQL up to CRM_DB_WAIT (300 s) before it listens.
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 10
            failureThreshold: 30
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 10
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 5
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          {{- if $root.Values.auth.publicKeys.secret }}
          volumeMounts:
            - name: jwt-keys
              mountPath: /etc/freshplan/jwt-keys
              readOnly: true
          {{- end }}
      {{- if $root.Values.auth.publicKeys.secret }}
      volumes:
        - name: jwt-keys
          secret:
            secretName: {{ $root.Values.auth.publicKeys.secret }}
      {{- end }}
      {{- with $root.Values.crm.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.crm.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.crm.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- if ne .component "relay" }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "freshplan.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    freshplan.io/component: {{ .component }}
    freshplan.io/territory: {{ .territory }}
spec:
  type: ClusterIP
  selector:
    {{- include "freshplan.crmSelectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: 8080
      targetPort: http
      protocol: TCP
{{- end }}
{{- if $root.Values.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "freshplan.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  maxUnavailable: {{ $root.Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "freshplan.crmSelectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* The CRM's token verification, from auth. */}}
{{- define "freshplan.authEnv" -}}
- name: CRM_OIDC_ISSUER
  value: {{ .Values.auth.issuer | quote }}
{{- if .Values.auth.jwksUrl }}
- name: CRM_JWKS_URL
  value: {{ .Values.auth.jwksUrl | quote }}
{{- else }}
- name: CRM_JWT_PUBLIC_KEYS
  value: {{ include "freshplan.publicKeyPaths" . | quote }}
{{- end }}
- name: CRM_OIDC_AUDIENCE
  value: {{ join "," .Values.auth.audience | quote }}
- name: CRM_CLAIM_ROLES
  value: {{ .Values.auth.claims.roles | quote }}
- name: CRM_CLAIM_TERRITORIES
  value: {{ .Values.auth.claims.territories | quote }}
- name: CRM_CLAIM_CHAINS
  value: {{ .Values.auth.claims.chains | quote }}
{{- end -}}

{{- define "freshplan.publicKeyPaths" -}}
{{- $paths := list -}}
{{- range .Values.auth.publicKeys.files -}}
{{- $paths = append $paths (printf "/etc/freshplan/jwt-keys/%s" .) -}}
{{- end -}}
{{- join "," $paths -}}
{{- end -}}
