// Package deploy holds what operators ship next to switchd: the HAProxy
// configuration, Kubernetes manifests, the systemd unit, the Grafana
// dashboard and the Prometheus rules. Its tests parse every one of them so
// they cannot rot: the switch's own configuration loader reads the shipped
// switchd configurations, HAProxy, promtool and systemd check theirs, and
// every metric they name must exist in a running switch.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kbpay/switch/internal/haproxytest"
	"github.com/kbpay/switch/switch/config"
)

// shippedFiles is every file under deploy/ except the tests.
func shippedFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// yamlDocuments decodes every document of a (multi-document) YAML file.
func yamlDocuments(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", path)
	}
	return docs
}

// TestEveryShippedFileParses: each YAML (every document) and JSON file
// under deploy/ decodes, and no file of an unknown kind is shipped
// unchecked.
func TestEveryShippedFileParses(t *testing.T) {
	checkedElsewhere := map[string]string{
		"haproxy.cfg":     "TestHAProxyConfig",
		"switchd.service": "TestSystemdUnit",
	}
	for _, p := range shippedFiles(t) {
		t.Run(p, func(t *testing.T) {
			switch filepath.Ext(p) {
			case ".yaml", ".yml":
				yamlDocuments(t, p)
			case ".json":
				raw, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
			default:
				if checkedElsewhere[p] == "" {
					t.Fatalf("%s is shipped but no test checks it: add it here", p)
				}
			}
		})
	}
}

// TestExampleConfigLoads: the documented example goes through the switch's
// own loader (unknown keys and invalid values are errors there).
func TestExampleConfigLoads(t *testing.T) {
	if _, err := config.Load("switchd.example.yaml"); err != nil {
		t.Fatal(err)
	}
}

// TestHAProxyConfig: haproxy -c accepts deploy/haproxy.cfg without a
// warning, and every server is health-checked on the admin port through
// /readyz (not a TCP check of the terminal port: that would keep sending
// terminals to a draining instance).
func TestHAProxyConfig(t *testing.T) {
	raw, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	adminPort := portOf(t, exampleConfig(t).Admin.Addr)
	var backends, servers int
	inBackend, httpchk, readyz := false, false, false
	endBackend := func() {
		if inBackend && (!httpchk || !readyz) {
			t.Errorf("a backend lacks option httpchk with GET /readyz")
		}
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case f[0] == "backend" || f[0] == "frontend" || f[0] == "defaults" || f[0] == "global":
			endBackend()
			inBackend, httpchk, readyz = f[0] == "backend", false, false
			if inBackend {
				backends++
			}
		case inBackend && len(f) >= 2 && f[0] == "option" && f[1] == "httpchk":
			httpchk = true
		case inBackend && f[0] == "http-check" && strings.Contains(line, "uri /readyz"):
			readyz = true
		case inBackend && f[0] == "server":
			servers++
			if !strings.Contains(line, " check port "+adminPort) {
				t.Errorf("server line %q: want \"check port %s\" (the admin port, /readyz)", strings.TrimSpace(line), adminPort)
			}
		}
	}
	endBackend()
	if backends == 0 || servers < 2 {
		t.Fatalf("haproxy.cfg has %d backends and %d servers: want balancing over several switchd", backends, servers)
	}
	if err := haproxytest.Check(t, "haproxy.cfg"); err != nil {
		t.Fatal(err)
	}
}

// exampleConfig is deploy/switchd.example.yaml as the switch loads it.
func exampleConfig(t *testing.T) config.Config {
	t.Helper()
	c, err := config.Load("switchd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[i+1:]
}
