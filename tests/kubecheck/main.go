// Command kubecheck checks Kubernetes manifests offline against the API's own Go types.
//
// It reads YAML documents on stdin (the output of `helm template`) and decodes each one
// strictly into the typed object of its apiVersion and kind, from k8s.io/api and the
// Prometheus Operator's monitoring/v1 types: an unknown kind, an unknown or duplicated
// field, or a value of the wrong type is an error. Then it applies the checks that need
// no API server and live in k8s.io/apimachinery (object names, labels, annotations,
// label selectors, environment variable and ConfigMap key names, port names and numbers)
// plus a few cross-references inside a pod (probe ports, volume mounts, selectors that
// match their pod template). It does not replace the API server's full validation
// (k8s.io/kubernetes is not importable as a module), but it catches what a misspelt
// value or template produces. The test suite runs it on every rendered chart
// (tests/unit/test_helm_chart.py); exit status 1 and one line per problem when any.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// maxConfigMapBytes is the API server's limit on a ConfigMap's data.
const maxConfigMapBytes = 1 << 20

func main() {
	objects, problems := check(os.Stdin)
	for _, problem := range problems {
		fmt.Println(problem)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("kubecheck: %d objects valid\n", objects)
}

func newDecoder() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// check decodes and validates every document read from input.
func check(input io.Reader) (int, []string) {
	decoder := newDecoder()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(input))
	var problems []string
	objects := 0
	for index := 1; ; index++ {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return objects, append(problems, fmt.Sprintf("document %d: %v", index, err))
		}
		if strings.TrimSpace(stripComments(string(document))) == "" {
			continue
		}
		objects++
		object, _, err := decoder.Decode(document, nil, nil)
		if err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %v", index, err))
			continue
		}
		name := describe(object)
		for _, problem := range validate(object) {
			problems = append(problems, fmt.Sprintf("%s: %s", name, problem.Error()))
		}
	}
	if objects == 0 {
		problems = append(problems, "no objects on stdin")
	}
	return objects, problems
}

func stripComments(text string) string {
	var kept []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

func describe(object runtime.Object) string {
	kind := object.GetObjectKind().GroupVersionKind().Kind
	if accessor, ok := object.(metav1.Object); ok {
		return kind + "/" + accessor.GetName()
	}
	return kind
}

func validate(object runtime.Object) field.ErrorList {
	var errs field.ErrorList
	if accessor, ok := object.(metav1.Object); ok {
		nameCheck := apivalidation.NameIsDNSSubdomain
		if _, isService := object.(*corev1.Service); isService {
			nameCheck = apivalidation.NameIsDNSLabel
		}
		errs = append(errs, apivalidation.ValidateObjectMetaAccessor(
			accessor, true, nameCheck, field.NewPath("metadata"))...)
	}
	switch typed := object.(type) {
	case *appsv1.StatefulSet:
		claims := map[string]bool{}
		for _, claim := range typed.Spec.VolumeClaimTemplates {
			claims[claim.Name] = true
		}
		errs = append(errs, workload(typed.Spec.Selector, &typed.Spec.Template, claims,
			field.NewPath("spec"))...)
		for i := range typed.Spec.VolumeClaimTemplates {
			errs = append(errs, apivalidation.ValidateObjectMeta(
				&typed.Spec.VolumeClaimTemplates[i].ObjectMeta, false,
				apivalidation.NameIsDNSLabel,
				field.NewPath("spec", "volumeClaimTemplates").Index(i).Child("metadata"))...)
		}
	case *appsv1.Deployment:
		errs = append(errs, workload(typed.Spec.Selector, &typed.Spec.Template, nil,
			field.NewPath("spec"))...)
	case *corev1.Service:
		path := field.NewPath("spec")
		errs = append(errs, metavalidation.ValidateLabels(typed.Spec.Selector,
			path.Child("selector"))...)
		for i, port := range typed.Spec.Ports {
			errs = append(errs, portNumber(port.Port, path.Child("ports").Index(i))...)
			if port.Name != "" {
				errs = append(errs, portName(port.Name, path.Child("ports").Index(i))...)
			}
		}
	case *corev1.ConfigMap:
		size := 0
		for key, value := range typed.Data {
			size += len(key) + len(value)
			for _, msg := range validation.IsConfigMapKey(key) {
				errs = append(errs, field.Invalid(field.NewPath("data").Key(key), key, msg))
			}
		}
		if size > maxConfigMapBytes {
			errs = append(errs, field.TooLong(field.NewPath("data"), "", maxConfigMapBytes))
		}
	case *policyv1.PodDisruptionBudget:
		path := field.NewPath("spec")
		if (typed.Spec.MinAvailable == nil) == (typed.Spec.MaxUnavailable == nil) {
			errs = append(errs, field.Invalid(path, "",
				"exactly one of minAvailable and maxUnavailable"))
		}
		errs = append(errs, selector(typed.Spec.Selector, path.Child("selector"))...)
	case *monitoringv1.ServiceMonitor:
		path := field.NewPath("spec")
		errs = append(errs, selector(&typed.Spec.Selector, path.Child("selector"))...)
		if len(typed.Spec.Endpoints) == 0 {
			errs = append(errs, field.Required(path.Child("endpoints"), ""))
		}
		for i, endpoint := range typed.Spec.Endpoints {
			if endpoint.Port == "" {
				errs = append(errs, field.Required(
					path.Child("endpoints").Index(i).Child("port"), "a named service port"))
			}
		}
	}
	return errs
}

func selector(sel *metav1.LabelSelector, path *field.Path) field.ErrorList {
	if sel == nil {
		return field.ErrorList{field.Required(path, "")}
	}
	errs := metavalidation.ValidateLabelSelector(sel,
		metavalidation.LabelSelectorValidationOptions{}, path)
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(path, "", "empty: would select everything"))
	}
	return errs
}

// workload checks a controller's selector against its pod template, then the pod;
// claims are the names of a StatefulSet's volumeClaimTemplates, which mounts may use.
func workload(sel *metav1.LabelSelector, template *corev1.PodTemplateSpec,
	claims map[string]bool, path *field.Path) field.ErrorList {
	errs := selector(sel, path.Child("selector"))
	errs = append(errs, metavalidation.ValidateLabels(template.Labels,
		path.Child("template", "metadata", "labels"))...)
	if parsed, err := metav1.LabelSelectorAsSelector(sel); err == nil &&
		!parsed.Matches(labels.Set(template.Labels)) {
		errs = append(errs, field.Invalid(path.Child("selector"), sel.String(),
			"does not match the pod template's labels"))
	}
	return append(errs, pod(&template.Spec, claims, path.Child("template", "spec"))...)
}

func pod(spec *corev1.PodSpec, claims map[string]bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes := map[string]bool{}
	for name := range claims {
		volumes[name] = true
	}
	for i, volume := range spec.Volumes {
		p := path.Child("volumes").Index(i)
		for _, msg := range validation.IsDNS1123Label(volume.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), volume.Name, msg))
		}
		if volumes[volume.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), volume.Name))
		}
		volumes[volume.Name] = true
	}
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), ""))
	}
	for i := range spec.Containers {
		errs = append(errs, container(&spec.Containers[i], volumes,
			path.Child("containers").Index(i))...)
	}
	return errs
}

func container(c *corev1.Container, volumes map[string]bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(c.Name) {
		errs = append(errs, field.Invalid(path.Child("name"), c.Name, msg))
	}
	if c.Image == "" {
		errs = append(errs, field.Required(path.Child("image"), ""))
	}
	ports := map[string]bool{}
	for i, port := range c.Ports {
		p := path.Child("ports").Index(i)
		errs = append(errs, portNumber(port.ContainerPort, p.Child("containerPort"))...)
		if port.Name != "" {
			errs = append(errs, portName(port.Name, p.Child("name"))...)
			ports[port.Name] = true
		}
	}
	names := map[string]bool{}
	for i, env := range c.Env {
		p := path.Child("env").Index(i)
		for _, msg := range validation.IsEnvVarName(env.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), env.Name, msg))
		}
		if names[env.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), env.Name))
		}
		names[env.Name] = true
		if env.ValueFrom != nil && env.Value != "" {
			errs = append(errs, field.Invalid(p, env.Name, "both value and valueFrom"))
		}
		if ref := env.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			errs = append(errs, keyRef(ref.SecretKeyRef.Name, ref.SecretKeyRef.Key,
				p.Child("valueFrom", "secretKeyRef"))...)
		}
	}
	for i, from := range c.EnvFrom {
		if from.SecretRef == nil && from.ConfigMapRef == nil {
			errs = append(errs, field.Required(path.Child("envFrom").Index(i), "a source"))
		}
	}
	for i, mount := range c.VolumeMounts {
		p := path.Child("volumeMounts").Index(i)
		if !volumes[mount.Name] {
			errs = append(errs, field.NotFound(p.Child("name"), mount.Name))
		}
		if !strings.HasPrefix(mount.MountPath, "/") {
			errs = append(errs, field.Invalid(p.Child("mountPath"), mount.MountPath,
				"must be absolute"))
		}
	}
	for name, probe := range map[string]*corev1.Probe{
		"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe,
		"startupProbe": c.StartupProbe,
	} {
		if probe != nil && probe.HTTPGet != nil {
			errs = append(errs, probePort(probe.HTTPGet.Port, ports,
				path.Child(name, "httpGet", "port"))...)
			if !strings.HasPrefix(probe.HTTPGet.Path, "/") {
				errs = append(errs, field.Invalid(path.Child(name, "httpGet", "path"),
					probe.HTTPGet.Path, "must start with /"))
			}
		}
	}
	return errs
}

func keyRef(name, key string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(path.Child("name"), name, msg))
	}
	for _, msg := range validation.IsConfigMapKey(key) {
		errs = append(errs, field.Invalid(path.Child("key"), key, msg))
	}
	return errs
}

func probePort(port intstr.IntOrString, named map[string]bool, path *field.Path) field.ErrorList {
	if port.Type == intstr.Int {
		return portNumber(port.IntVal, path)
	}
	if !named[port.StrVal] {
		return field.ErrorList{field.NotFound(path, port.StrVal)}
	}
	return nil
}

func portNumber(port int32, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		errs = append(errs, field.Invalid(path, port, msg))
	}
	return errs
}

func portName(name string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortName(name) {
		errs = append(errs, field.Invalid(path, name, msg))
	}
	return errs
}
