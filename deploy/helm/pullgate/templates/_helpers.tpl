{{/* Labels every object of the chart carries besides its own (not in selectors or pod templates). */}}
{{- define "pullgate.chartLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* pullgate's pods: the selector (also of the Services, PDB and NetworkPolicies). */}}
{{- define "pullgate.selectorLabels" -}}
app.kubernetes.io/name: pullgate
app.kubernetes.io/component: proxy
{{- end }}

{{- define "pullgate.podLabels" -}}
{{ include "pullgate.selectorLabels" . }}
app.kubernetes.io/part-of: pullgate
{{- end }}

{{- define "pullgate.labels" -}}
{{ include "pullgate.podLabels" . }}
{{ include "pullgate.chartLabels" . }}
{{- end }}

{{/* Redis's pods. */}}
{{- define "pullgate.redisSelectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: pullgate-redis
{{- end }}

{{- define "pullgate.redisPodLabels" -}}
{{ include "pullgate.redisSelectorLabels" . }}
app.kubernetes.io/component: verdict-cache
app.kubernetes.io/part-of: pullgate
{{- end }}

{{- define "pullgate.redisLabels" -}}
{{ include "pullgate.redisPodLabels" . }}
{{ include "pullgate.chartLabels" . }}
{{- end }}

{{- define "pullgate.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* pullgate.yaml as projected: configYaml verbatim, or `config` as YAML. */}}
{{- define "pullgate.configText" -}}
{{- if .Values.configYaml -}}
{{ .Values.configYaml }}
{{- else -}}
{{ toYaml .Values.config }}
{{- end -}}
{{- end }}

{{- define "pullgate.redisConf" -}}
{{- .Values.redis.config | default (.Files.Get "files/redis.conf") -}}
{{- end }}

{{/*
The parts of pullgate.yaml the objects rely on; rendering fails, naming the value, when they differ.
*/}}
{{- define "pullgate.validate" -}}
{{- $c := include "pullgate.configText" . | fromYaml -}}
{{- if hasKey $c "Error" -}}
{{- fail (printf "config: pullgate.yaml is not YAML: %s" $c.Error) -}}
{{- end -}}
{{- if ne (toString $c.listen) "0.0.0.0:5050" -}}
{{- fail "config.listen must be \"0.0.0.0:5050\": the container port, the Service pullgate and the NetworkPolicy use 5050" -}}
{{- end -}}
{{- if ne (toString (($c.admin | default dict).listen)) "0.0.0.0:5051" -}}
{{- fail "config.admin.listen must be \"0.0.0.0:5051\": the probes, the Service pullgate-admin and the NetworkPolicy use 5051" -}}
{{- end -}}
{{- $tls := $c.tls | default dict -}}
{{- if or (ne (toString $tls.cert) "tls/tls.crt") (ne (toString $tls.key) "tls/tls.key") -}}
{{- fail "config.tls must be {cert: tls/tls.crt, key: tls/tls.key}: where the Secret secrets.tls is projected" -}}
{{- end -}}
{{- $drain := divf ((($c.shutdown | default dict).drainTimeoutMs) | default 10000) 1000 -}}
{{- if ge (addf $drain .Values.preStopSleepSeconds) (float64 .Values.terminationGracePeriodSeconds) -}}
{{- fail (printf "config.shutdown.drainTimeoutMs (%vs) + preStopSleepSeconds (%v) must stay below terminationGracePeriodSeconds (%v)" $drain .Values.preStopSleepSeconds .Values.terminationGracePeriodSeconds) -}}
{{- end -}}
{{- if and .Values.redis.enabled (or (not .Values.redis.urlSecret.name) (ne (toString (($c.redis | default dict).urlEnv)) "PULLGATE_REDIS_URL")) -}}
{{- fail "with the in-chart Redis (redis.enabled), config.redis.urlEnv must be PULLGATE_REDIS_URL, the variable the chart sets from redis.urlSecret (name and key)" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (empty .Values.redis.external.cidrs) -}}
{{- fail "redis.enabled=false: set redis.external.cidrs (and redis.external.port), the addresses of your Redis, so that the NetworkPolicy lets pullgate reach it" -}}
{{- end -}}
{{- end }}
