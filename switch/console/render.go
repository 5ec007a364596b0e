package console

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
)

// pageData is what every page template gets.
type pageData struct {
	Title    string
	Operator string
	CSRF     string
	Nav      string // the menu entry to highlight
	Error    string
	Notice   string
	Refresh  int // seconds; 0: no self-refresh
	Data     any
}

var pageNames = []string{"login", "error", "overview", "transactions", "transaction", "saf", "tokens"}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"amount": func(minor int64) string { return fmt.Sprintf("%d.%02d", minor/100, minor%100) },
	"num": func(f float64, digits int) string {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "—"
		}
		return fmt.Sprintf("%.*f", digits, f)
	},
	"pct": func(f float64) string {
		if math.IsNaN(f) {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", 100*f)
	},
	"ms": func(seconds float64) string {
		if math.IsNaN(seconds) {
			return "—"
		}
		return fmt.Sprintf("%.1f ms", seconds*1000)
	},
	// card shows a stored masked card, masked again in case a row ever
	// held more (defence in depth).
	"card": func(masked string) string { return scrubCards(masked) },
	// text shows free text from the store (event details, last errors)
	// with card-like runs masked.
	"text": func(s string) string { return scrubCards(s) },
	"join": strings.Join,
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/safitems.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parsing template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page name; s (nil before login) supplies the operator and
// the CSRF token for the forms.
func (c *Console) render(w http.ResponseWriter, status int, name string, s *session, d pageData) {
	if s != nil {
		d.Operator, d.CSRF = s.operator, s.csrf
	}
	d.Title, d.Error, d.Notice = scrubCards(d.Title), scrubCards(d.Error), scrubCards(d.Notice)
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, d); err != nil {
		c.log.Error("console: rendering a page", zap.String("page", name), zap.String("error", pan.Scrub(err.Error())))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
