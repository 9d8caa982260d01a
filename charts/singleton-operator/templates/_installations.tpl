{{- /*
Installations whose watchNamespaces overlap, and the admission policies.

Another installation's enforcing policies refuse this release's writes in the
namespaces both watch unless they admit this release's ServiceAccount, and
this release's policies (admissionPolicy.enabled) refuse that installation's
unless they admit its ServiceAccount (admissionPolicy.trustedOperators):
either way the operator acting on an object there could not record its runs,
nor could the other take the object over. Said at `helm install`/`upgrade`,
with the fix, instead of being found later as stuck objects. `lookup` sees
nothing under `helm template` (GitOps renders): the chart README says what to
set there.
*/}}

{{- /* This release's operator as the API server names it in request.userInfo.username. */}}
{{- define "singleton-operator.operatorUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "singleton-operator.serviceAccountName" . }}
{{- end }}

{{- /* The namespaces two watch lists share (an empty list is all namespaces); empty when none. */}}
{{- define "singleton-operator.sharedNamespaces" -}}
{{- $mine := index . 0 }}
{{- $theirs := index . 1 }}
{{- $shared := list }}
{{- if and $mine $theirs }}
{{- range $mine }}{{ if has . $theirs }}{{ $shared = append $shared . }}{{ end }}{{ end }}
{{- else }}
{{- $shared = $mine | default $theirs | default (list "all namespaces") }}
{{- end }}
{{- join ", " $shared }}
{{- end }}

{{- define "singleton-operator.checkOverlappingInstallations" -}}
{{- $operator := include "singleton-operator.operatorUser" . }}
{{- $mine := .Values.watchNamespaces }}
{{- /* 1. Every other installation (its Deployment, by the chart's part-of label): this release's policies must admit it. */}}
{{- if .Values.admissionPolicy.enabled }}
{{- $operators := concat (list $operator) (.Values.admissionPolicy.trustedOperators | default list) }}
{{- range $d := (lookup "apps/v1" "Deployment" "" "").items | default list }}
{{- $labels := $d.metadata.labels | default dict }}
{{- $self := and (eq $d.metadata.namespace $.Release.Namespace) (eq (get $labels "app.kubernetes.io/instance") $.Release.Name) }}
{{- if and (eq (get $labels "app.kubernetes.io/part-of") "singleton-operator") (not $self) }}
{{- $theirs := list }}
{{- range $c := $d.spec.template.spec.containers | default list }}
{{- range $e := $c.env | default list }}
{{- if eq $e.name "WATCH_NAMESPACES" }}{{ $theirs = concat $theirs (splitList "," ($e.value | default "") | compact) }}{{ end }}
{{- end }}
{{- end }}
{{- $shared := include "singleton-operator.sharedNamespaces" (list $mine $theirs) }}
{{- $theirOperator := printf "system:serviceaccount:%s:%s" $d.metadata.namespace ($d.spec.template.spec.serviceAccountName | default "default") }}
{{- if and $shared (not (has $theirOperator $operators)) }}
{{- fail (printf "admissionPolicy: this release's admission policies would refuse the writes of the installation in Deployment %s/%s (ServiceAccount %s) in %s, which both watch. Give the two installations disjoint watchNamespaces, or list %s in this release's admissionPolicy.trustedOperators (and, if that installation enforces admission policies too, %s in its list), or set admissionPolicy.enabled=false" $d.metadata.namespace $d.metadata.name $theirOperator $shared $theirOperator $operator) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- /* 2. Every other release's enforcing policies (their status binding) must admit this release's ServiceAccount, whether or not this release enforces any. */}}
{{- range $b := (lookup "admissionregistration.k8s.io/v1" "ValidatingAdmissionPolicyBinding" "" "").items | default list }}
{{- $labels := $b.metadata.labels | default dict }}
{{- $notes := $b.metadata.annotations | default dict }}
{{- $theirRelease := printf "%s/%s" (get $notes "meta.helm.sh/release-namespace") (get $notes "meta.helm.sh/release-name") }}
{{- if and (eq (get $labels "singleton.dev/admission-policy") "status") (ne $theirRelease (printf "%s/%s" $.Release.Namespace $.Release.Name)) (has "Deny" ($b.spec.validationActions | default list)) }}
{{- $theirs := list }}
{{- range (($b.spec.matchResources | default dict).namespaceSelector | default dict).matchExpressions | default list }}
{{- $theirs = concat $theirs (.values | default list) }}
{{- end }}
{{- $shared := include "singleton-operator.sharedNamespaces" (list $mine $theirs) }}
{{- $theyAdmit := splitList "," (get $notes "singleton.dev/admits") }}
{{- if and $shared (not (has $operator $theyAdmit)) }}
{{- $fix := join "," (without (append $theyAdmit $operator | uniq) (get $notes "singleton.dev/operator")) }}
{{- fail (printf "admissionPolicy: the installation %s enforces its admission policies in %s, which this release watches too, and they do not admit this release's ServiceAccount %s: they would refuse its writes there. Give the two installations disjoint watchNamespaces, or upgrade that release first: helm upgrade %s <chart> -n %s --reuse-values --set 'admissionPolicy.trustedOperators={%s}'" $theirRelease $shared $operator (get $notes "meta.helm.sh/release-name") (get $notes "meta.helm.sh/release-namespace") $fix) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
