package tests

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"go.yaml.in/yaml/v3"
)

// The deploy files cannot run here (no cluster, no registry), so this test checks
// what would break them: every module has its service or Deployment running that
// module alone, every Agora container is probed on /readyz and /healthz, the split
// layouts reach NATS, and kustomizations name files that exist. With kubectl on the
// PATH it also renders each overlay. The per-module parts are generated from the
// registry by tools/deploygen; TestDeployFilesAreGenerated fails when they drift.

// allModules is the registry's modules: those of the split layout, which own data,
// and the web face.
var allModules = append(slices.Clone(splitLayout), "web")

// singleReplica are the modules whose state lives in one process's memory, so a
// split deployment must run exactly one of each (fleet: drivers' positions).
var singleReplica = []string{"fleet"}

// TestDeployFilesAreGenerated fails when compose's module services or the split
// overlay's Deployments are not what tools/deploygen draws from the registry: a
// module was added, renamed or had its Replicas changed without regenerating. Fix
// with `go run ./tools/deploygen`.
func TestDeployFilesAreGenerated(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "go", "run", "./tools/deploygen", "-check")
	cmd.Dir = procs.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./tools/deploygen -check: %v\n%s", err, out)
	}
}

type podContainer struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Env   []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports []struct {
		Name string `yaml:"name"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector any  `yaml:"selector"` // a map for Services, {matchLabels} for workloads
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []podContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// replicas returns a workload's replicas: 1 when it does not say, as Kubernetes does.
func (o k8sObject) replicas() int {
	if o.Spec.Replicas == nil {
		return 1
	}
	return *o.Spec.Replicas
}

func (c podContainer) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// kustomization is the part of kustomization.yaml this test follows.
type kustomization struct {
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name     string   `yaml:"name"`
		Literals []string `yaml:"literals"`
	} `yaml:"configMapGenerator"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
	} `yaml:"images"`
}

// loadKustomization returns the objects of the kustomization in dir and its
// resources, recursively, with configMapGenerator literals merged into ConfigMaps.
func loadKustomization(t *testing.T, dir string) ([]k8sObject, kustomization) {
	t.Helper()
	var k kustomization
	decodeFile(t, filepath.Join(dir, "kustomization.yaml"), &k)
	var objs []k8sObject
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s names resource %s: %v", dir, r, err)
		}
		if st.IsDir() {
			sub, _ := loadKustomization(t, p)
			objs = append(objs, sub...)
			continue
		}
		objs = append(objs, decodeAll[k8sObject](t, p)...)
	}
	for _, g := range k.ConfigMapGenerator {
		for i := range objs {
			if objs[i].Kind == "ConfigMap" && objs[i].Metadata.Name == g.Name {
				for _, l := range g.Literals {
					key, val, _ := strings.Cut(l, "=")
					objs[i].Data[key] = val
				}
			}
		}
	}
	return objs, k
}

func decodeFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func decodeAll[T any](t *testing.T, path string) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
}

func TestKubernetesOverlays(t *testing.T) {
	root := filepath.Join(procs.RepoRoot(t), "deploy", "kubernetes")
	for _, tc := range []struct {
		overlay string
		modules []string // AGORA_MODULES of the Deployments
		bus     bool     // the processes reach each other through NATS
	}{
		{"single", []string{"all"}, false},
		{"split", allModules, true},
	} {
		t.Run(tc.overlay, func(t *testing.T) {
			objs, k := loadKustomization(t, filepath.Join(root, "overlays", tc.overlay))
			if !slices.ContainsFunc(k.Images, func(i struct {
				Name    string `yaml:"name"`
				NewName string `yaml:"newName"`
			}) bool {
				return i.Name == "agora" && i.NewName != ""
			}) {
				t.Errorf("overlay does not set the agora image")
			}
			var svcSelector map[string]any
			config := map[string]string{}
			var modules []string
			var hasNATS bool
			for _, o := range objs {
				switch {
				case o.Kind == "Service" && o.Metadata.Name == "agora":
					svcSelector, _ = o.Spec.Selector.(map[string]any)
				case o.Kind == "ConfigMap" && o.Metadata.Name == "agora":
					config = o.Data
				case o.Kind == "StatefulSet" && o.Metadata.Name == "nats":
					hasNATS = true
				}
			}
			if len(svcSelector) == 0 {
				t.Fatal("no agora Service with a selector")
			}
			for _, o := range objs {
				if o.Kind != "Deployment" {
					continue
				}
				labels := o.Spec.Template.Metadata.Labels
				for k, v := range svcSelector {
					if labels[k] != v {
						t.Errorf("%s: pods labelled %v are not selected by the agora Service (%v)", o.Metadata.Name, labels, svcSelector)
					}
				}
				sel, _ := o.Spec.Selector.(map[string]any)
				match, _ := sel["matchLabels"].(map[string]any)
				for k, v := range match {
					if labels[k] != v {
						t.Errorf("%s: selector %v does not match its pods' labels %v", o.Metadata.Name, match, labels)
					}
				}
				for _, c := range o.Spec.Template.Spec.Containers {
					if c.Image != "agora" {
						t.Errorf("%s: image %q, want agora (set by the overlay's images)", o.Metadata.Name, c.Image)
					}
					m, ok := c.env("AGORA_MODULES")
					if !ok {
						t.Errorf("%s: no AGORA_MODULES", o.Metadata.Name)
					}
					modules = append(modules, m)
					checkProbes(t, o.Metadata.Name, c)
					if n := o.replicas(); slices.Contains(singleReplica, m) && n != 1 {
						t.Errorf("%s: %d replicas, want exactly 1: %s keeps its state in one process's memory", o.Metadata.Name, n, m)
					}
				}
			}
			slices.Sort(modules)
			want := slices.Sorted(slices.Values(tc.modules))
			if !slices.Equal(modules, want) {
				t.Errorf("Deployments run modules %v, want %v", modules, want)
			}
			busURL := config["AGORA_BUS_URL"]
			if tc.bus && (!strings.HasPrefix(busURL, "nats://nats:") || !hasNATS) {
				t.Errorf("split layout: AGORA_BUS_URL %q and NATS StatefulSet %v, want nats://nats:… and one", busURL, hasNATS)
			}
			if !tc.bus && busURL != "" {
				t.Errorf("single layout sets AGORA_BUS_URL %q", busURL)
			}
			if config["AGORA_HTTP_ADDR"] != "0.0.0.0:8080" {
				t.Errorf("AGORA_HTTP_ADDR %q: pods must listen beyond loopback on the probed port", config["AGORA_HTTP_ADDR"])
			}
			if kubectl, err := exec.LookPath("kubectl"); err == nil {
				out, err := exec.Command(kubectl, "kustomize", filepath.Join(root, "overlays", tc.overlay)).CombinedOutput()
				if err != nil {
					t.Errorf("kubectl kustomize: %v\n%s", err, out)
				}
			}
		})
	}
}

func checkProbes(t *testing.T, name string, c podContainer) {
	t.Helper()
	hasHTTP := slices.ContainsFunc(c.Ports, func(p struct {
		Name string `yaml:"name"`
	}) bool {
		return p.Name == "http"
	})
	for _, p := range []struct {
		kind  string
		probe *probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != "http" || !hasHTTP {
			t.Errorf("%s: %s probe %+v, want GET %s on the http port", name, p.kind, p.probe, p.path)
		}
	}
}

func TestComposeFile(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   map[string]any    `yaml:"depends_on"`
		} `yaml:"services"`
	}
	decodeFile(t, filepath.Join(procs.RepoRoot(t), "deploy", "compose.yaml"), &compose)
	for _, infra := range []string{"nats", "postgres"} {
		if _, ok := compose.Services[infra]; !ok {
			t.Errorf("no %s service", infra)
		}
	}
	var image string
	for _, m := range allModules {
		s, ok := compose.Services[m]
		if !ok {
			t.Errorf("no service for module %s", m)
			continue
		}
		if got := s.Environment["AGORA_MODULES"]; got != m {
			t.Errorf("%s: AGORA_MODULES %q, want %q", m, got, m)
		}
		if !strings.HasPrefix(s.Environment["AGORA_BUS_URL"], "nats://nats:") {
			t.Errorf("%s: AGORA_BUS_URL %q, want the nats service", m, s.Environment["AGORA_BUS_URL"])
		}
		if !strings.HasPrefix(s.Environment["AGORA_DATABASE_URL"], "postgres://") {
			t.Errorf("%s: AGORA_DATABASE_URL %q, want the postgres service", m, s.Environment["AGORA_DATABASE_URL"])
		}
		if s.Environment["AGORA_HTTP_ADDR"] != "0.0.0.0:8080" {
			t.Errorf("%s: AGORA_HTTP_ADDR %q", m, s.Environment["AGORA_HTTP_ADDR"])
		}
		if _, ok := s.DependsOn["nats"]; !ok {
			t.Errorf("%s does not depend on nats", m)
		}
		if image == "" {
			image = s.Image
		}
		if s.Image != image || !slices.Equal(s.Command, []string{"serve"}) {
			t.Errorf("%s: image %q command %v, want %q [serve] like the others", m, s.Image, s.Command, image)
		}
	}
}
