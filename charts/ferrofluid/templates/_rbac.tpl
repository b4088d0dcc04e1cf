{{/*
Least-privilege RBAC, per component. Every rule below is one the component's code makes at run time
(docs/helm.md explains each); hack/chart-test.sh and e2e/tests/chart_rbac.rs check that the controllers
run the seed flow with exactly these and that nothing broader (wildcards, Secret writes) is granted.

Rules on namespaced resources ("ferrofluid.rules.<component>") go into the ClusterRole
`<fullname>-<component>`, bound cluster-wide, or only in `watchNamespace` when that is set and the
component honours it. Rules on cluster-scoped resources ("ferrofluid.clusterRules.<component>") go into
`<fullname>-<component>-cluster`, always bound cluster-wide. The leader-election Lease is granted by a Role
in the release namespace, limited to the component's own Lease name (Lease creation cannot be limited by
name in RBAC). Rules on objects of the release namespace itself ("ferrofluid.releaseRules.<component>", the
webhook's certificate Secret) are a Role `<fullname>-<component>-<releaseRole>` there.
*/}}

{{- define "ferrofluid.rules.dataset-controller" -}}
# Watch datasets; add/remove the finalizer (JSON patch on the object).
- apiGroups: ["data.fluid.io"]
  resources: ["datasets"]
  verbs: ["get", "list", "watch", "patch"]
# NotBound phase and the Validated condition.
- apiGroups: ["data.fluid.io"]
  resources: ["datasets/status"]
  verbs: ["patch"]
# Deletion protection: a watch cache of pods (slimmed to the claims they mount) tells which still use
# the dataset's claim, and wakes the deletion when the last one goes.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
{{ include "ferrofluid.rules.events" . }}
{{- end -}}

{{- define "ferrofluid.rules.runtime-controller" -}}
# Watch runtimes; finalizer (JSON patch) and owner reference to the dataset (server-side apply).
- apiGroups: ["data.fluid.io"]
  resources: ["juicefsruntimes"]
  verbs: {{ if .ctx.Values.rbac.ownerReferencesPermissionEnforcement }}["get", "list", "watch", "patch", "delete"]{{ else }}["get", "list", "watch", "patch"]{{ end }}
# Phases, counters and conditions.
- apiGroups: ["data.fluid.io"]
  resources: ["juicefsruntimes/status"]
  verbs: ["patch"]
# The dataset of the same name: read and watched; its status set to Bound/NotBound. A dataset that
# refers to another (dataset://) gets the finalizer ferrofluid.io/dataset-share (JSON patch) while it
# holds a PV and PVC.
- apiGroups: ["data.fluid.io"]
  resources: ["datasets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["data.fluid.io"]
  resources: ["datasets/status"]
  verbs: ["patch"]
# Worker StatefulSet and FUSE DaemonSet: owned and watched; read by name to check the ownership mark
# before any write (a same-name object of someone else is reported, never touched); applied
# server-side (create on first apply); deleted on cleanup (only when marked, UID-guarded).
- apiGroups: ["apps"]
  resources: ["statefulsets", "daemonsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The dataset's PVC: watched (cache of ferrofluid's PVCs), read by name only when absent from the cache
# (a same-name claim of someone else), applied server-side, deleted on cleanup (only when marked).
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Worker and FUSE pods: which nodes run a client (node cache labels, cache directories to clean).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# Cache cleanup Jobs (one per node whose cache directories go): watched, created (server-side apply: patch), deleted once done.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{ include "ferrofluid.rules.events" . }}
{{- end -}}

{{- define "ferrofluid.clusterRules.runtime-controller" -}}
# The dataset's PV (the runtime's claim on the cluster-wide name <ns>-<name>): ownership checked,
# applied server-side, deleted last on cleanup (only when marked).
- apiGroups: [""]
  resources: ["persistentvolumes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Worker cache labels on the nodes where workers run; labels stripped on cleanup. Read from a watch
# cache of the nodes' labels; a node is read by name only after a conflicting label patch.
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch", "patch"]
{{- end -}}

{{- define "ferrofluid.rules.dataops-controller" -}}
# Watch DataLoads, DataMigrates and DataProcesses; add/remove their finalizer (JSON patch); delete one
# whose ttlSecondsAfterFinished passed.
- apiGroups: ["data.fluid.io"]
  resources: ["dataloads", "datamigrates", "dataprocesses"]
  verbs: ["get", "list", "watch", "patch", "delete"]
# Phase, progress and conditions.
- apiGroups: ["data.fluid.io"]
  resources: ["dataloads/status", "datamigrates/status", "dataprocesses/status"]
  verbs: ["patch"]
# Datasets (phase, the operation lock, a migration's metaurl Secret reference and mount point) and
# runtimes (the FUSE image) from watch caches; the lock `status.operationRef` taken and released by merge
# patches on the dataset's status.
- apiGroups: ["data.fluid.io"]
  resources: ["datasets", "juicefsruntimes"]
  verbs: ["list", "watch"]
- apiGroups: ["data.fluid.io"]
  resources: ["datasets/status"]
  verbs: ["patch"]
# The operations' Jobs (owned by the operation): watched by label, created, read by name after a name
# clash (someone else's Job is reported, never touched), deleted on cancel (UID-guarded).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# The warm-up Jobs' pods (by label), from a watch cache: each part's files and bytes are its pod's
# termination message.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
{{ include "ferrofluid.rules.events" . }}
{{- end -}}

{{- define "ferrofluid.clusterRules.dataops-controller" -}}
# The dataset's PV: its `fluid_path` volume attribute is where the node's FUSE client mounts.
- apiGroups: [""]
  resources: ["persistentvolumes"]
  verbs: ["get"]
# Cache nodes (`fluid.io/s-<ns>-<name>` labels) from a watch cache of the nodes.
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch"]
{{- end -}}

{{- define "ferrofluid.rules.metrics-collector" -}}
# Reflectors over worker/FUSE pods (by label), runtimes and datasets, in every namespace (or watchNamespace).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["data.fluid.io"]
  resources: ["juicefsruntimes", "datasets"]
  verbs: ["list", "watch"]
# cacheStates (and the dataset's ufsTotal) through server-side apply of status.
- apiGroups: ["data.fluid.io"]
  resources: ["juicefsruntimes/status", "datasets/status"]
  verbs: ["patch"]
{{- end -}}

{{- define "ferrofluid.rules.webhook" -}}
# Watch caches of the datasets (their nodeAffinity and tolerations) and of ferrofluid's PVCs (metadata
# only, by label: a pod's PVC is a dataset's only when it is ferrofluid's PVC of that dataset). Read only.
- apiGroups: ["data.fluid.io"]
  resources: ["datasets"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch"]
{{- end -}}

{{- define "ferrofluid.clusterRules.webhook" -}}
# A watch cache of the nodes (only their metadata is kept): whether a dataset has cache nodes
# (`fluid.io/s-<ns>-<name>=true`) decides between a required and a preferred term.
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch"]
# The chart's own configuration, and only that one: watched by name (a change re-publishes the CA at
# once), and a strategic merge patch of the webhooks whose `caBundle` differs.
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["mutatingwebhookconfigurations"]
  resourceNames: [{{ include "ferrofluid.webhookName" . | quote }}]
  verbs: ["list", "watch", "patch"]
{{- end -}}

{{- define "ferrofluid.releaseRules.webhook" -}}
# The first replica creates the certificate Secret when it is missing; creation cannot be limited by name.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
# Its own certificate Secret, watched by name (another replica's renewal is loaded at once) and replaced
# (resourceVersion-guarded) when a certificate is renewed. No other Secret.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ include "ferrofluid.webhookCertSecret" . | quote }}]
  verbs: ["list", "watch", "update"]
{{- end -}}

{{- define "ferrofluid.rules.csi-plugin" -}}
# The runtime's FUSE clean policy (and whether it is being deleted) decides if NodeUnstage removes the
# node's FUSE label. Everything else the plugin needs comes in the CSI requests (volume attributes).
- apiGroups: ["data.fluid.io"]
  resources: ["juicefsruntimes"]
  verbs: ["get"]
{{ include "ferrofluid.rules.events" . }}
{{- end -}}

{{- define "ferrofluid.clusterRules.csi-plugin" -}}
# The FUSE label `fluid.io/f-<ns>-<name>` on its own Node. RBAC cannot narrow this to one node per
# DaemonSet pod or to one label; the chart's ValidatingAdmissionPolicy (csiPlugin.nodePolicy, in
# node-policy.yaml) does: only the plugin's own Node, only `fluid.io/f-` labels, nothing else.
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "patch"]
{{- end -}}

{{- define "ferrofluid.rules.events" -}}
# Events through kube's Recorder (events.k8s.io/v1): create, and patch to count a repeated event.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/*
ServiceAccount, roles and bindings of one component:
(dict "ctx" $ "component" "…" "values" .Values.<component> "namespaced" <honours watchNamespace>
      "cluster" <has cluster-scoped rules> "lease" <is leader-elected>
      ["releaseRole" <suffix of a Role with ferrofluid.releaseRules.<component> in the release namespace>]).
*/}}
{{- define "ferrofluid.rbac" -}}
{{- $ctx := .ctx -}}
{{- $name := include "ferrofluid.componentName" . -}}
{{- $sa := include "ferrofluid.serviceAccountName" . -}}
{{- if .values.serviceAccount.create }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $sa }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
  {{- with .values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- if $ctx.Values.rbac.create }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $name }}
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
rules:
  {{- include (printf "ferrofluid.rules.%s" .component) . | nindent 2 }}
---
{{- if and .namespaced $ctx.Values.watchNamespace }}
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ $ctx.Values.watchNamespace }}
{{- else }}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $name }}
{{- end }}
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $sa }}
    namespace: {{ $ctx.Release.Namespace }}
{{- if .cluster }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $name }}-cluster
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
rules:
  {{- include (printf "ferrofluid.clusterRules.%s" .component) . | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $name }}-cluster
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $name }}-cluster
subjects:
  - kind: ServiceAccount
    name: {{ $sa }}
    namespace: {{ $ctx.Release.Namespace }}
{{- end }}
{{- with .releaseRole }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}-{{ . }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "ferrofluid.labels" $ | nindent 4 }}
rules:
  {{- include (printf "ferrofluid.releaseRules.%s" $.component) $ | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}-{{ . }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "ferrofluid.labels" $ | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}-{{ . }}
subjects:
  - kind: ServiceAccount
    name: {{ $sa }}
    namespace: {{ $ctx.Release.Namespace }}
{{- end }}
{{- if and .lease $ctx.Values.leaderElection.enabled }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}-leader-election
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
rules:
  # The first replica creates the Lease; creation cannot be limited by name.
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["create"]
  # Read, and renew, take over and release (server-side apply) only this component's own Lease.
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: [{{ include "ferrofluid.leaseName" . | quote }}]
    verbs: ["get", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}-leader-election
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "ferrofluid.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}-leader-election
subjects:
  - kind: ServiceAccount
    name: {{ $sa }}
    namespace: {{ $ctx.Release.Namespace }}
{{- end }}
{{- end }}
{{- end -}}
