{{/* Names, labels and the pieces of pod spec every job of the chart shares. */}}

{{- define "ai-log-analyzer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* CronJob names may have at most 52 characters (the controller appends a suffix). */}}
{{- define "ai-log-analyzer.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 42 | trimSuffix "-" }}
{{- else if contains (include "ai-log-analyzer.name" .) .Release.Name }}
{{- .Release.Name | trunc 42 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "ai-log-analyzer.name" .) | trunc 42 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ai-log-analyzer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ai-log-analyzer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ai-log-analyzer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ai-log-analyzer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ai-log-analyzer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ai-log-analyzer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ai-log-analyzer.claimName" -}}
{{- default (printf "%s-data" (include "ai-log-analyzer.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{- define "ai-log-analyzer.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The non-secret configuration: the ConfigMap's data, and the migration hook's env (the hook
runs before the ConfigMap exists). */}}
{{- define "ai-log-analyzer.config" -}}
{{- range $key, $value := .Values.config }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
REGISTRY_DIR: "/data/registry"
EXPORT_DIR: "/data/exports"
PUSHGATEWAY_URL: {{ .Values.pushgateway.url | quote }}
{{- if .Values.elasticsearchCA.secretName }}
ES_CA_CERTS: {{ printf "/etc/ai-log-analyzer/es-ca/%s" .Values.elasticsearchCA.key | quote }}
{{- end }}
{{- end }}

{{/* Credentials as secretKeyRef env entries, for the credential groups a job needs. Call with
(dict "root" $ "groups" (list "database" ...)). The database logins are required: a missing key
stops the pod before it starts. The others may be absent (ES basic auth or API key, Teams or
Confluence switched off). */}}
{{- define "ai-log-analyzer.credentialsEnv" -}}
{{- $root := .root }}
{{- range $group := .groups }}
{{- $optional := not (has $group (list "database" "ddl")) }}
{{- range $env, $key := index $root.Values.credentials $group }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.credentials.existingSecret }}
      key: {{ $key }}
      optional: {{ $optional }}
{{- end }}
{{- end }}
{{- end }}

{{/* Which Job and pod a run ran as, for the run record (batch.kubernetes.io/job-name: Kubernetes >= 1.27). */}}
{{- define "ai-log-analyzer.runtimeEnv" -}}
- name: K8S_JOB_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['batch.kubernetes.io/job-name']
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}

{{- define "ai-log-analyzer.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "ai-log-analyzer.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/* Pod-level settings shared by every job; the caller indents. */}}
{{- define "ai-log-analyzer.podCommon" -}}
automountServiceAccountToken: false
# No <SERVICE>_HOST/_PORT variables: a Service named "es" would set ES_PORT=tcp://… and ES_SERVICE_HOST,
# which the analyzer reads as its own (misspelt) settings and stops on.
enableServiceLinks: false
securityContext:
  {{- include "ai-log-analyzer.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* One analysis CronJob. Call with (dict "root" $ "jobType" "regular|backfill" "schedule" ...). */}}
{{- define "ai-log-analyzer.cronjob" -}}
{{- $root := .root }}
{{- $job := index $root.Values .jobType }}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "ai-log-analyzer.fullname" $root }}-{{ .jobType }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "ai-log-analyzer.labels" $root | nindent 4 }}
    job-type: {{ .jobType }}
spec:
  schedule: {{ .schedule | quote }}
  timeZone: Etc/UTC
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ $job.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ .successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ .failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "ai-log-analyzer.labels" $root | nindent 8 }}
        job-type: {{ .jobType }}
    spec:
      backoffLimit: {{ .backoffLimit }}
      activeDeadlineSeconds: {{ $job.activeDeadlineSeconds }}
      template:
        metadata:
          labels:
            {{- include "ai-log-analyzer.selectorLabels" $root | nindent 12 }}
            job-type: {{ .jobType }}
          {{- with $root.Values.podAnnotations }}
          annotations:
            {{- toYaml . | nindent 12 }}
          {{- end }}
        spec:
          restartPolicy: OnFailure
          serviceAccountName: {{ include "ai-log-analyzer.serviceAccountName" $root }}
          {{- include "ai-log-analyzer.podCommon" $root | nindent 10 }}
          {{- if has "ReadWriteOnce" $root.Values.persistence.accessModes }}
          # a ReadWriteOnce volume can only be attached to one node: keep both phases together
          affinity:
            podAffinity:
              preferredDuringSchedulingIgnoredDuringExecution:
                - weight: 100
                  podAffinityTerm:
                    topologyKey: kubernetes.io/hostname
                    labelSelector:
                      matchLabels:
                        {{- include "ai-log-analyzer.selectorLabels" $root | nindent 24 }}
          {{- end }}
          containers:
            - name: {{ .jobType }}
              image: {{ include "ai-log-analyzer.image" $root }}
              imagePullPolicy: {{ $root.Values.image.pullPolicy }}
              command:
                {{- toYaml .command | nindent 16 }}
              envFrom:
                - configMapRef:
                    name: {{ include "ai-log-analyzer.fullname" $root }}
              env:
                {{- include "ai-log-analyzer.runtimeEnv" $root | nindent 16 }}
                {{- include "ai-log-analyzer.credentialsEnv" (dict "root" $root "groups" .credentials) | trim | nindent 16 }}
              resources:
                {{- toYaml $job.resources | nindent 16 }}
              securityContext:
                {{- include "ai-log-analyzer.containerSecurityContext" $root | nindent 16 }}
              volumeMounts:
                - name: data
                  mountPath: /data
                - name: tmp
                  mountPath: /tmp
                {{- if $root.Values.elasticsearchCA.secretName }}
                - name: es-ca
                  mountPath: /etc/ai-log-analyzer/es-ca
                  readOnly: true
                {{- end }}
          volumes:
            - name: data
              persistentVolumeClaim:
                claimName: {{ include "ai-log-analyzer.claimName" $root }}
            - name: tmp
              emptyDir:
                sizeLimit: 1Gi
            {{- if $root.Values.elasticsearchCA.secretName }}
            - name: es-ca
              secret:
                secretName: {{ $root.Values.elasticsearchCA.secretName }}
            {{- end }}
{{- end }}
