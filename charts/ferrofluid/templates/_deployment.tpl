{{/*
The Deployment of a component: the leader-elected ones (dataset-controller, runtime-controller,
dataops-controller, metrics-collector) and the webhook.
Call with (dict "ctx" $ "component" "<name>" "values" .Values.<component> "args" (list …) "env" (list …));
optional: "noLeaderElection" true (no leader-election environment: the webhook's replicas all serve) and
"ports" (list of extra container ports, after `http`).
*/}}
{{- define "ferrofluid.deployment" -}}
{{- $ctx := .ctx -}}
{{- $v := .values -}}
{{- $httpPort := int (default 8080 $v.httpPort) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "ferrofluid.componentName" . }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
spec:
  replicas: {{ $v.replicas }}
  selector:
    matchLabels:
      {{- include "ferrofluid.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "ferrofluid.selectorLabels" . | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $annotations := merge (deepCopy (default dict $v.podAnnotations)) (include "ferrofluid.scrapeAnnotations" (dict "ctx" $ctx "port" $httpPort) | fromYaml) }}
      {{- with $annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "ferrofluid.serviceAccountName" . }}
      {{- if $ctx.Values.hostNetwork }}
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      {{- end }}
      {{- with $ctx.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $ctx.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "ferrofluid.image" (dict "ctx" $ctx "image" $ctx.Values.image) }}
          imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
          command: [{{ printf "/usr/local/bin/%s" .component | quote }}]
          args:
            - --http-addr=0.0.0.0:{{ $httpPort }}
            {{- range .args }}
            - {{ . | quote }}
            {{- end }}
            {{- range $v.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          env:
            {{- include "ferrofluid.commonEnv" $ctx | nindent 12 }}
            {{- if not .noLeaderElection }}
            {{- include "ferrofluid.leaderEnv" $ctx | nindent 12 }}
            {{- end }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: {{ $httpPort }}
              protocol: TCP
            {{- with .ports }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 5
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            failureThreshold: 3
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $ctx.Values.containerSecurityContext | nindent 12 }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      affinity:
        {{- if $v.affinity }}
        {{- toYaml $v.affinity | nindent 8 }}
        {{- else }}
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "ferrofluid.selectorLabels" . | nindent 20 }}
        {{- end }}
{{- end -}}

{{/* The metrics Service of a Deployment component: same arguments as ferrofluid.deployment. */}}
{{- define "ferrofluid.metricsService" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "ferrofluid.componentName" . }}-metrics
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "ferrofluid.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: 8080
      targetPort: http
      protocol: TCP
{{- end -}}
