{{/* Name of every object of the release. */}}
{{- define "devspaces-proxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Standard labels (https://helm.sh/docs/chart_best_practices/labels/). */}}
{{- define "devspaces-proxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "devspaces-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: devspaces
{{- end -}}

{{- define "devspaces-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end -}}

{{/* The Service's in-cluster DNS name. */}}
{{- define "devspaces-proxy.serviceHost" -}}
{{ include "devspaces-proxy.fullname" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* The injection settings as webhook flags: every value goes to the webhook once, and the
     webhook renders it into both injected containers (so the init and the proxy agree). */}}
{{- define "devspaces-proxy.injectArgs" -}}
- {{ printf "--proxy-image=%v" (.Values.images.proxy) | quote }}
- {{ printf "--init-image=%v" (.Values.images.init) | quote }}
- {{ printf "--image-pull-policy=%v" (.Values.images.pullPolicy) | quote }}
- {{ printf "--sidecar-mode=%v" (.Values.proxy.sidecarMode) | quote }}
- {{ printf "--proxy-uid=%v" (.Values.proxy.uid) | quote }}
- {{ printf "--proxy-gid=%v" (.Values.proxy.gid) | quote }}
- {{ printf "--outbound-port=%v" (.Values.proxy.outboundPort) | quote }}
- {{ printf "--inbound-port=%v" (.Values.proxy.inboundPort) | quote }}
- {{ printf "--admin-port=%v" (.Values.proxy.adminPort) | quote }}
- {{ printf "--proxy-workers=%v" (.Values.proxy.workers) | quote }}
- {{ printf "--proxy-log-level=%v" (.Values.proxy.logLevel) | quote }}
- {{ printf "--proxy-log-format=%v" (.Values.proxy.logFormat) | quote }}
- {{ printf "--cluster-domain=%v" (.Values.proxy.clusterDomain) | quote }}
- {{ printf "--route-header=%v" (.Values.proxy.routeHeader) | quote }}
- {{ printf "--opaque-ports=%v" (.Values.proxy.opaquePorts) | quote }}
- {{ printf "--trace-upstream=%v" (.Values.proxy.traceUpstream) | quote }}
- {{ printf "--otlp-endpoint=%v" (.Values.proxy.otlpEndpoint) | quote }}
- {{ printf "--drain-timeout=%v" (.Values.proxy.drainTimeout) | quote }}
- {{ printf "--spaces-url=http://%s:%v/spaces" (include "devspaces-proxy.serviceHost" .) .Values.webhook.spacesPort | quote }}
- {{ printf "--proxy-resources=%v" (.Values.proxy.resources | toJson) | quote }}
- {{ printf "--inbound-ports=%v" (.Values.init.inboundPorts) | quote }}
- {{ printf "--exclude-inbound-ports=%v" (.Values.init.excludeInboundPorts) | quote }}
- {{ printf "--exclude-outbound-ports=%v" (.Values.init.excludeOutboundPorts) | quote }}
- {{ printf "--include-outbound-cidrs=%v" (.Values.init.includeOutboundCidrs) | quote }}
- {{ printf "--exclude-outbound-cidrs=%v" (.Values.init.excludeOutboundCidrs) | quote }}
- --ipv6={{ .Values.init.ipv6 }}
- {{ printf "--iptables=%v" (.Values.init.iptables) | quote }}
- {{ printf "--init-resources=%v" (.Values.init.resources | toJson) | quote }}
{{- end -}}
