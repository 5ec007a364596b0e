package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kbpay/switch/switch/config"
)

// The parts of Kubernetes objects the tests look at (field names as in the
// API; anything else is ignored).
type (
	k8sObject struct {
		file       string
		node       yaml.Node
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	workloadSpec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
		RestartPolicy                 string      `yaml:"restartPolicy"`
		Containers                    []container `yaml:"containers"`
		Volumes                       []volume    `yaml:"volumes"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env []struct {
			Name      string `yaml:"name"`
			ValueFrom *struct {
				SecretKeyRef *keyRef `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Lifecycle      *struct {
			PreStop *struct {
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	keyRef struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	keyPath struct {
		Key  string `yaml:"key"`
		Path string `yaml:"path"`
	}
	volume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string    `yaml:"name"`
			Items []keyPath `yaml:"items"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string    `yaml:"secretName"`
			Items      []keyPath `yaml:"items"`
		} `yaml:"secret"`
	}
	serviceSpec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	pdbSpec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
)

// manifests is every object of deploy/k8s/*.yaml, by kind and name.
type manifests struct {
	all     []*k8sObject
	objects map[string]*k8sObject // "Kind/name"
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	m := manifests{objects: map[string]*k8sObject{}}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for i := 1; ; i++ {
			o := &k8sObject{file: fmt.Sprintf("%s#%d", f, i)}
			err := dec.Decode(&o.node)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", o.file, err)
			}
			if err := o.node.Decode(o); err != nil {
				t.Fatalf("%s: %v", o.file, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: apiVersion %q kind %q metadata.name %q: all three are required", o.file, o.APIVersion, o.Kind, o.Metadata.Name)
			}
			id := o.Kind + "/" + o.Metadata.Name
			if m.objects[id] != nil {
				t.Fatalf("%s: %s defined twice", o.file, id)
			}
			m.objects[id], m.all = o, append(m.all, o)
		}
	}
	return m
}

func (m manifests) get(t *testing.T, kind, name string) *k8sObject {
	t.Helper()
	o := m.objects[kind+"/"+name]
	if o == nil {
		t.Fatalf("deploy/k8s has no %s %s", kind, name)
	}
	return o
}

// spec decodes the object's spec into v.
func (o *k8sObject) spec(t *testing.T, v any) {
	t.Helper()
	var whole struct {
		Spec yaml.Node `yaml:"spec"`
	}
	if err := o.node.Decode(&whole); err != nil {
		t.Fatalf("%s: %v", o.file, err)
	}
	if err := whole.Spec.Decode(v); err != nil {
		t.Fatalf("%s: spec: %v", o.file, err)
	}
}

// switchdConfig is the ConfigMap's switchd.yaml through the switch's own
// loader, and the production check New makes, with the Secret's
// variables set.
func switchdConfig(t *testing.T, m manifests) config.Config {
	t.Helper()
	cm := m.get(t, "ConfigMap", "switchd-config")
	cfg, err := config.Parse([]byte(cm.Data["switchd.yaml"]))
	if err != nil {
		t.Fatalf("%s switchd.yaml: %v", cm.file, err)
	}
	env := map[string]string{
		cfg.Admin.BearerTokenEnv: "a-real-admin-token",
		cfg.HSM.MasterKeyEnv:     strings.Repeat("5a", 32),
	}
	getenv := func(k string) string { return env[k] }
	if dev, _ := cfg.DevelopmentMode(getenv); dev {
		t.Fatalf("%s switchd.yaml runs in development mode (demo keys and token): a cluster must run in production mode", cm.file)
	}
	if err := cfg.CheckProduction(getenv); err != nil {
		t.Fatalf("%s switchd.yaml is not usable in production: %v", cm.file, err)
	}
	return cfg
}

// TestKubernetesManifests checks that the objects fit together: probes on
// /readyz and /healthz at the admin port of the shipped configuration,
// listener ports exposed, every referenced Secret/ConfigMap key present,
// the configuration and key store mounted where the configuration says,
// selectors matching, and a grace period longer than preStop + drain.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "Job"} {
		if !slices.ContainsFunc(m.all, func(o *k8sObject) bool { return o.Kind == kind }) {
			t.Errorf("deploy/k8s has no %s", kind)
		}
	}
	cfg := switchdConfig(t, m)

	var dep workloadSpec
	depObj := m.get(t, "Deployment", "switchd")
	depObj.spec(t, &dep)
	pod := dep.Template.Spec
	for k, v := range dep.Selector.MatchLabels {
		if dep.Template.Metadata.Labels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match its pod labels %v", k, v, dep.Template.Metadata.Labels)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1 (switchd)", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for what, pr := range map[string]struct {
		p    *probe
		path string
	}{"readinessProbe": {c.ReadinessProbe, "/readyz"}, "livenessProbe": {c.LivenessProbe, "/healthz"}} {
		if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path {
			t.Errorf("%s must be an httpGet of %s", what, pr.path)
			continue
		}
		if got, want := resolvePort(t, pr.p.HTTPGet.Port, ports), portNumber(t, cfg.Admin.Addr); got != want {
			t.Errorf("%s on port %d, want the admin port %d of switchd.yaml", what, got, want)
		}
	}
	for _, l := range cfg.Listeners {
		if !slices.Contains(slices.Collect(maps.Values(ports)), portNumber(t, l.Addr)) {
			t.Errorf("listener %s (%s) has no containerPort", l.Name, l.Addr)
		}
	}

	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("Deployment needs a preStop sleep so endpoints drop the pod before SIGTERM starts the drain")
	}
	preStop := c.Lifecycle.PreStop.Sleep.Seconds
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("Deployment needs terminationGracePeriodSeconds above preStop + drain_timeout")
	}
	if grace, need := *pod.TerminationGracePeriodSeconds, preStop+int(cfg.DrainTimeout.Seconds()); grace <= need {
		t.Errorf("terminationGracePeriodSeconds %d <= preStop %ds + drain_timeout %v: the kubelet would SIGKILL a draining switch", grace, preStop, cfg.DrainTimeout)
	}

	env := checkEnv(t, m, c)
	for _, v := range []string{cfg.HSM.MasterKeyEnv, cfg.Admin.BearerTokenEnv, "SWITCH_STORE_DSN"} {
		if !env[v] {
			t.Errorf("Deployment does not set $%s from the Secret", v)
		}
	}
	files := mountedFiles(t, m, pod, c)
	if cfgPath := flagValue(c.Args, "--config"); !files[cfgPath] {
		t.Errorf("--config %s is not a mounted ConfigMap file (mounted: %v)", cfgPath, files)
	}
	if !files[cfg.HSM.KeyStore] {
		t.Errorf("hsm.key_store %s is not a mounted Secret file (mounted: %v)", cfg.HSM.KeyStore, files)
	}

	podLabels := dep.Template.Metadata.Labels
	for _, o := range m.all {
		switch o.Kind {
		case "Service":
			var s serviceSpec
			o.spec(t, &s)
			checkSelects(t, o, s.Selector, podLabels)
			for _, p := range s.Ports {
				if name, ok := p.TargetPort.(string); ok && ports[name] == 0 {
					t.Errorf("%s: targetPort %s is not a container port", o.file, name)
				}
			}
		case "PodDisruptionBudget":
			var s pdbSpec
			o.spec(t, &s)
			checkSelects(t, o, s.Selector.MatchLabels, podLabels)
		}
	}
}

// TestMigrationJob: the Job runs `switchd migrate --config <mounted file>`
// with the store DSN, once (no restart loop in the pod).
func TestMigrationJob(t *testing.T) {
	m := loadManifests(t)
	var job workloadSpec
	jobObj := m.get(t, "Job", "switchd-migrate")
	jobObj.spec(t, &job)
	pod := job.Template.Spec
	if pod.RestartPolicy != "Never" && pod.RestartPolicy != "OnFailure" {
		t.Errorf("Job restartPolicy %q, want Never or OnFailure", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("Job has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "migrate" {
		t.Errorf("Job args %v, want switchd migrate --config ...", c.Args)
	}
	files := mountedFiles(t, m, pod, c)
	if p := flagValue(c.Args, "--config"); !files[p] {
		t.Errorf("Job --config %q is not a mounted ConfigMap file (mounted: %v)", p, files)
	}
	if !checkEnv(t, m, c)["SWITCH_STORE_DSN"] {
		t.Error("Job does not set $SWITCH_STORE_DSN from the Secret")
	}
}

// checkEnv checks every secretKeyRef names an existing Secret key and
// returns the variables set.
func checkEnv(t *testing.T, m manifests, c container) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, e := range c.Env {
		set[e.Name] = true
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if !hasKey(m.get(t, "Secret", ref.Name), ref.Key) {
			t.Errorf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
		}
	}
	return set
}

// mountedFiles is every file path the container sees from ConfigMap and
// Secret volumes (items only), after checking each item's key exists.
func mountedFiles(t *testing.T, m manifests, pod podSpec, c container) map[string]bool {
	t.Helper()
	vols := map[string]volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	files := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Errorf("volumeMount %s has no volume", vm.Name)
			continue
		}
		var obj *k8sObject
		var items []keyPath
		switch {
		case v.ConfigMap != nil:
			obj, items = m.get(t, "ConfigMap", v.ConfigMap.Name), v.ConfigMap.Items
		case v.Secret != nil:
			obj, items = m.get(t, "Secret", v.Secret.SecretName), v.Secret.Items
		default:
			continue
		}
		for _, it := range items {
			if !hasKey(obj, it.Key) {
				t.Errorf("volume %s: %s %s has no key %s", v.Name, obj.Kind, obj.Metadata.Name, it.Key)
			}
			files[path.Join(vm.MountPath, it.Path)] = true
		}
	}
	return files
}

func hasKey(o *k8sObject, key string) bool {
	_, inData := o.Data[key]
	_, inString := o.StringData[key]
	return inData || inString
}

func checkSelects(t *testing.T, o *k8sObject, selector, podLabels map[string]string) {
	t.Helper()
	if len(selector) == 0 {
		t.Errorf("%s: empty selector", o.file)
	}
	for k, v := range selector {
		if podLabels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the switchd pods %v", o.file, k, v, podLabels)
		}
	}
}

// resolvePort is a probe's port: a number, or a container port's name.
func resolvePort(t *testing.T, port any, named map[string]int) int {
	t.Helper()
	switch p := port.(type) {
	case int:
		return p
	case string:
		if n, ok := named[p]; ok {
			return n
		}
		t.Fatalf("port %q names no container port", p)
	}
	t.Fatalf("port %v: want a number or a name", port)
	return 0
}

func portNumber(t *testing.T, addr string) int {
	t.Helper()
	n, err := strconv.Atoi(portOf(t, addr))
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestSharedStoreConfig: the replicas share the PostgreSQL store, read its
// DSN from the variable the Job and Secret provide, and take their
// instance numbers from the database (no instance_id shared by all).
func TestSharedStoreConfig(t *testing.T) {
	m := loadManifests(t)
	cfg := switchdConfig(t, m)
	if cfg.Store.Backend != "postgres" || cfg.Store.DSN != "" {
		t.Fatalf("store %+v: want backend postgres with the DSN from the Secret, not the ConfigMap", cfg.Store)
	}
	if !cfg.InstanceIDFromStore() {
		t.Errorf("instance_id %d in the shared ConfigMap: every replica would use the same RRN prefix", cfg.InstanceID)
	}
	var job workloadSpec
	m.get(t, "Job", "switchd-migrate").spec(t, &job)
	if !checkEnv(t, m, job.Template.Spec.Containers[0])[cfg.Store.DSNEnv] {
		t.Errorf("the migration Job does not set $%s", cfg.Store.DSNEnv)
	}
}
