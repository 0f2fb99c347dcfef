{{/* Names and labels. */}}
{{- define "kyso.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kyso.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "kyso.component" (dict "root" $ "component" "signer") -> RELEASE-kyso-signer */}}
{{- define "kyso.component" -}}
{{- printf "%s-%s" (include "kyso.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kyso.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "kyso.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kyso
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* "kyso.componentLabels" (dict "root" $ "component" "signer") */}}
{{- define "kyso.componentLabels" -}}
{{ include "kyso.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kyso.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kyso.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kyso.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) -}}
{{- end -}}

{{/* The gRPC health service name of a component. */}}
{{- define "kyso.grpcService" -}}
{{- if eq . "signer" -}}kyso.signer.v1.Signer
{{- else if eq . "verifier" -}}kyso.verifier.v1.Verifier
{{- else -}}kyso.registry.v1.Registry
{{- end -}}
{{- end -}}

{{/* The Secret holding a component's TLS material. */}}
{{- define "kyso.tlsSecret" -}}
{{- $t := index .root.Values.tls .component -}}
{{- if $t.existingSecret -}}
{{- $t.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "kyso.component" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret whose ca.crt is the registry's client CA (tls.registryClients). */}}
{{- define "kyso.registryClientCaSecret" -}}
{{- $rc := .Values.tls.registryClients -}}
{{- if $rc.existingSecret -}}
{{- $rc.existingSecret -}}
{{- else if .Values.tls.certManager.enabled -}}
{{- required "tls.registryClients.existingSecret: with the signer disabled, name the Secret holding the registry's client CA (ca.crt)" (ternary (include "kyso.signerRegistryClientSecret" .) "" .Values.signer.enabled) -}}
{{- else -}}
{{- printf "%s-client-ca" (include "kyso.component" (dict "root" . "component" "registry")) -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the signer's client certificate to the registry (tls.crt, tls.key). */}}
{{- define "kyso.signerRegistryClientSecret" -}}
{{- if .Values.tls.registryClients.signer.existingSecret -}}
{{- .Values.tls.registryClients.signer.existingSecret -}}
{{- else -}}
{{- printf "%s-registry-client" (include "kyso.component" (dict "root" . "component" "signer")) -}}
{{- end -}}
{{- end -}}

{{- define "kyso.trustConfigMap" -}}
{{- if .Values.trust.existingConfigMap -}}
{{- .Values.trust.existingConfigMap -}}
{{- else -}}
{{- printf "%s-trust" (include "kyso.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "kyso.hasIntermediates" -}}
{{- if or .Values.trust.intermediates (and .Values.trust.existingConfigMap .Values.trust.existingConfigMapHasIntermediates) -}}true{{- end -}}
{{- end -}}

{{- define "kyso.registryUrl" -}}
{{- printf "%s://%s:%v" (ternary "https" "http" .Values.tls.enabled) (include "kyso.component" (dict "root" . "component" "registry")) .Values.registry.ports.grpc -}}
{{- end -}}

{{/* Whether the monitoring CRDs are served (or forced). */}}
{{- define "kyso.monitoringCRDs" -}}
{{- if or .Values.monitoring.forceCRDs (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* The [trust] / top-level trust keys of a service TOML (verifier format). */}}
{{- define "kyso.trustToml" -}}
trust_anchors = ["/etc/kyso/trust/anchors.pem"]
{{- if include "kyso.hasIntermediates" . }}
intermediates = ["/etc/kyso/trust/intermediates.pem"]
{{- end }}
anchor_fingerprints = {{ include "kyso.tomlStrings" .Values.trust.anchorFingerprints }}
legacy_sha1_roots = {{ include "kyso.tomlStrings" .Values.trust.legacySha1Roots }}
fetch_aia = {{ .Values.trust.fetchAia }}
{{- end -}}

{{- define "kyso.revocationToml" -}}
{{- $r := .Values.trust.revocation -}}
policy = {{ $r.policy | quote }}
order = {{ $r.order | quote }}
timeout_ms = {{ int64 $r.timeoutMs }}
max_ttl_secs = {{ int64 $r.maxTtlSecs }}
stale_grace_secs = {{ int64 $r.staleGraceSecs }}
max_ocsp_entries = {{ int64 $r.maxOcspEntries }}
max_crl_bytes = {{ int64 $r.maxCrlBytes }}
ocsp_nonce = {{ $r.ocspNonce }}
{{- if kindIs "slice" $r.allowedHosts }}
allowed_hosts = {{ include "kyso.tomlStrings" $r.allowedHosts }}
{{- end }}
allowed_networks = {{ include "kyso.tomlStrings" $r.allowedNetworks }}
max_urls_per_certificate = {{ int64 $r.maxUrlsPerCertificate }}
max_fetches_per_request = {{ int64 $r.maxFetchesPerRequest }}
url_rewrites = [
{{- range $i, $u := $r.urlRewrites }}{{ if $i }},{{ end }}
  { from = {{ $u.from | quote }}, to = {{ $u.to | quote }} }
{{- end }}
]
{{- end -}}

{{/* A TOML array of strings. */}}
{{- define "kyso.tomlStrings" -}}
[{{ range $i, $s := . }}{{ if $i }}, {{ end }}{{ $s | quote }}{{ end }}]
{{- end -}}

{{/* The [tls] section of a component. */}}
{{- define "kyso.tlsToml" -}}
{{- if .root.Values.tls.enabled }}
[tls]
cert = "/etc/kyso/tls/tls.crt"
key = "/etc/kyso/tls/tls.key"
{{- if eq .component "registry" }}
# The registry's own client CA (tls.registryClients): its callers' only issuer.
client_ca = "/etc/kyso/registry-clients/ca.crt"
{{- else if or (eq .component "signer") (index .root.Values.tls.clientAuth .component | default false) }}
client_ca = "/etc/kyso/tls/ca.crt"
{{- end }}
{{- end }}
{{- end -}}

{{/* Affinity spreading a component's pods over nodes. */}}
{{- define "kyso.affinity" -}}
podAntiAffinity:
{{- if eq .root.Values.podAntiAffinity "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "kyso.selectorLabels" . | nindent 10 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "kyso.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end -}}

{{/* Liveness, readiness and startup probes. Kubelet's gRPC probes speak plaintext
only: with TLS on, liveness is the metrics port's /healthz and readiness its /readyz, which
follows the service's gRPC health (the signer: NOT_SERVING while a key has no slot). */}}
{{- define "kyso.probes" -}}
{{- $c := index .root.Values .component -}}
{{- if not .root.Values.tls.enabled }}
startupProbe:
  grpc:
    port: {{ $c.ports.grpc }}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  grpc:
    port: {{ $c.ports.grpc }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  grpc:
    port: {{ $c.ports.grpc }}
    service: {{ include "kyso.grpcService" .component }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- else }}
startupProbe:
  tcpSocket:
    port: grpc
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end }}
{{- end -}}

{{/* Environment common to the services. */}}
{{- define "kyso.commonEnv" -}}
- name: KYSO_LOG_JSON
  value: {{ ternary "true" "false" .Values.logJson | quote }}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
{{- end -}}
