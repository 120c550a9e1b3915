package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/agora-commerce/agora/internal/modhost"
)

// handWritten is a compose file whose every line outside the markers is the
// people's: the generator must keep them as they are.
const handWritten = `# a header
name: agora

x-agora: &agora
  image: agora
x-agora-env: &agora-env
  AGORA_BUS_URL: nats://nats:4222

services:
  nats:
    image: nats

` + beginMarker + `
  stale:
    image: whatever
` + endMarker + `

volumes:
  data:
`

// fixture returns a repository root holding handWritten as its compose file and
// no Kubernetes modules file yet.
func fixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"deploy", filepath.Dir(kubernetesPath)} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, composePath), []byte(handWritten), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

var fakeModules = []modhost.Module{
	{Name: "ledger", Replicas: 3},
	{Name: "tracker"}, // Replicas 0 means 1
	{Name: "face", Stateless: true, Replicas: 2},
}

// TestRun generates a fixture's files, then reads them as compose and kubectl
// would: one service and one Deployment per module in order, each running its
// module alone, with its port, its replicas and (unless stateless) its database.
func TestRun(t *testing.T) {
	root := fixture(t)
	if err := run(root, fakeModules, true, io.Discard); !errors.Is(err, errStale) {
		t.Fatalf("check before generating: %v, want errStale", err)
	}
	if err := run(root, fakeModules, false, io.Discard); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := run(root, fakeModules, true, io.Discard); err != nil {
		t.Fatalf("check after write: %v, want nothing stale", err)
	}

	compose := read(t, root, composePath)
	for _, l := range strings.Split(handWritten, "\n") {
		if !strings.Contains(compose, l) && !strings.Contains(l, "stale") && !strings.Contains(l, "whatever") {
			t.Errorf("compose lost the hand-written line %q", l)
		}
	}
	var c struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(compose), &c); err != nil {
		t.Fatalf("compose: %v\n%s", err, compose)
	}
	got := map[string]string{}
	for name, s := range c.Services {
		got[name] = s.Environment["AGORA_MODULES"] + " " + strings.Join(s.Ports, ",")
	}
	want := map[string]string{"nats": " ", "ledger": "ledger 127.0.0.1:8081:8080",
		"tracker": "tracker 127.0.0.1:8082:8080", "face": "face 127.0.0.1:8083:8080"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("compose services (-want +got):\n%s", d)
	}
	checkDeployments(t, read(t, root, kubernetesPath))
}

// checkDeployments checks the generated modules.yaml against fakeModules.
func checkDeployments(t *testing.T, doc string) {
	t.Helper()
	type deployment struct {
		Metadata struct{ Name string } `yaml:"metadata"`
		Spec     struct {
			Replicas int `yaml:"replicas"`
			Template struct {
				Spec struct {
					Containers []struct {
						Env []struct{ Name, Value string } `yaml:"env"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	var got []string
	dec := yaml.NewDecoder(strings.NewReader(doc))
	for {
		var d deployment
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("modules.yaml: %v\n%s", err, doc)
		}
		line := d.Metadata.Name + " " + strings.Repeat("x", d.Spec.Replicas)
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			line += " " + e.Name + "=" + e.Value
		}
		got = append(got, line)
	}
	want := []string{
		"agora-ledger xxx AGORA_MODULES=ledger AGORA_DATABASE_URL=",
		"agora-tracker x AGORA_MODULES=tracker AGORA_DATABASE_URL=",
		"agora-face xx AGORA_MODULES=face",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Deployments: name, replicas (one x each), env (-want +got):\n%s", d)
	}
}

func read(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRunRefuses checks what the generator will not write over: a compose file
// without its markers, and a module whose name cannot name a service.
func TestRunRefuses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		compose string
		mods    []modhost.Module
		want    string
	}{
		{"no markers", "services:\n  nats: {}\n", fakeModules, "markers"},
		{"markers reversed", endMarker + "\n" + beginMarker + "\n", fakeModules, "markers"},
		{"a name that is no DNS label", handWritten, []modhost.Module{{Name: "Big_Module"}}, "DNS label"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := fixture(t)
			if err := os.WriteFile(filepath.Join(root, composePath), []byte(tt.compose), 0o644); err != nil {
				t.Fatal(err)
			}
			err := run(root, tt.mods, false, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: %v, want an error about %s", err, tt.want)
			}
			if got := read(t, root, composePath); got != tt.compose {
				t.Errorf("run changed the compose file after refusing:\n%s", got)
			}
			if _, err := os.Stat(filepath.Join(root, kubernetesPath)); err == nil {
				t.Error("run wrote the Kubernetes file after refusing")
			}
		})
	}
}
