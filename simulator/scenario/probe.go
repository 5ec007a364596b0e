package scenario

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Demo addresses `termsim run` assumes unless told otherwise: the admin
// APIs of the no-argument switchd and issuersim.
const (
	DemoSwitchAdmin = "127.0.0.1:8580"
	DemoIssuerAdmin = "127.0.0.1:9100"
)

// probeTimeout bounds one reachability check.
const probeTimeout = 3 * time.Second

// probes remembers, per run, whether each admin API and switch address
// answers, so that a scenario needing what the target lacks is skipped
// with the reason instead of failing.
type probes struct {
	mu   sync.Mutex
	seen map[string]string // what -> "" reachable, else why not
	http *http.Client
}

// reachable reports "" when the HTTP endpoint url answers (any status), or
// why not.
func (p *probes) reachableHTTP(url string) string {
	return p.once("http "+url, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err.Error()
		}
		resp, err := p.http.Do(req)
		if err != nil {
			return "nothing answers at " + strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
		}
		_ = resp.Body.Close()
		return ""
	})
}

// reachableTCP reports "" when something listens at addr, or why not.
func (p *probes) reachableTCP(addr string) string {
	return p.once("tcp "+addr, func() string {
		c, err := net.DialTimeout("tcp", addr, probeTimeout)
		if err != nil {
			return "nothing listens at " + addr
		}
		_ = c.Close()
		return ""
	})
}

func (p *probes) once(key string, check func() string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]string{}
	}
	if why, ok := p.seen[key]; ok {
		return why
	}
	why := check()
	p.seen[key] = why
	return why
}

// adminURL makes an http:// URL of a host:port admin address (a full URL
// stays as it is).
func adminURL(addr, path string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/") + path
	}
	return "http://" + addr + path
}

// isSwitchAddress reports whether a requirement names a switch listener
// variable (van_switch, keyed_switch): its value is an address to probe.
func isSwitchAddress(req string) bool { return strings.HasSuffix(strings.ToLower(req), "_switch") }

// VarFilesBeside lists the *.env files in the folders of the scenario
// paths (a folder itself, or a file's folder), in name order, each once:
// the variables `termsim run DIR` loads when no --vars is given.
func VarFilesBeside(paths []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		dir := p
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			dir = filepath.Dir(p)
		}
		matches, _ := filepath.Glob(filepath.Join(dir, "*.env"))
		sort.Strings(matches)
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}
