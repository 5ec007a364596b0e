package scenario

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// Table prints step results as aligned rows as they arrive.
type Table struct {
	w              io.Writer
	header         bool
	scenario, step int // column widths
}

// Column widths of a Table.
const (
	minNameWidth = 12
	maxNameWidth = 40
	codeWidth    = 16
)

// NewTable returns a table writing to w whose name columns fit the
// scenarios' and steps' names (up to 40 characters; longer ones are cut).
func NewTable(w io.Writer, scenarios []*Scenario) *Table {
	t := &Table{w: w, scenario: minNameWidth, step: minNameWidth}
	fit := func(width *int, s string) { *width = min(max(*width, utf8.RuneCountInString(s)), maxNameWidth) }
	for _, sc := range scenarios {
		fit(&t.scenario, sc.Name)
		for _, tk := range sc.Setup.Tokens {
			fit(&t.step, "setup: token "+tk.Name)
		}
		for _, st := range append(append([]Step(nil), sc.Steps...), sc.Teardown...) {
			fit(&t.step, st.Name)
		}
	}
	return t
}

// Row prints one result (and the header before the first).
func (t *Table) Row(r StepResult) {
	rowFormat := fmt.Sprintf("%%-%ds  %%-%ds  %%-%ds %%-%ds %%8s  %%s\n", t.scenario, t.step, codeWidth, codeWidth)
	if !t.header {
		t.header = true
		fmt.Fprintf(t.w, rowFormat, "SCENARIO", "STEP", "EXPECTED", "GOT", "TIME", "RESULT")
	}
	result := string(r.Status)
	if r.Reason != "" {
		result += "  " + r.Reason
	}
	tm := "-"
	if r.Status != Skip {
		tm = formatDuration(r.Duration)
	}
	fmt.Fprintf(t.w, rowFormat, clip(r.Scenario, t.scenario), clip(r.Step, t.step), clip(orDash(r.Expected), codeWidth),
		clip(orDash(r.Got), codeWidth), tm, result)
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// clip shortens s to n characters, marking the cut with "~".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "~"
}

// JUnit XML (the format CI systems read: Jenkins, GitLab, GitHub actions).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	File      string      `xml:"file,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Failure   *junitMessage `xml:"failure"`
	Skipped   *junitMessage `xml:"skipped"`
	SystemOut *junitText    `xml:"system-out"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML: a testsuite per scenario, a
// testcase per step, failure and skipped elements with their reasons, and
// the masked request/response of failed steps as system-out.
func WriteJUnit(w io.Writer, rep Report) error {
	out := junitSuites{Name: "termsim run", Time: seconds(rep.Duration)}
	for _, sc := range rep.Scenarios {
		s := junitSuite{Name: sc.Name, Time: seconds(sc.Duration), File: sc.File,
			Timestamp: sc.Start.UTC().Format("2006-01-02T15:04:05")}
		for _, st := range sc.Steps {
			c := junitCase{Name: st.Step, Classname: sc.Name, Time: seconds(st.Duration), File: sc.File}
			switch st.Status {
			case Fail:
				s.Failures++
				text := fmt.Sprintf("expected %s, got %s\n%s", orDash(st.Expected), orDash(st.Got), st.Reason)
				c.Failure = &junitMessage{Message: st.Reason, Type: "expectation", Text: text}
				if st.Detail != "" {
					c.SystemOut = &junitText{Text: st.Detail}
				}
			case Skip:
				s.Skipped++
				c.Skipped = &junitMessage{Message: st.Reason}
			}
			s.Tests++
			s.Cases = append(s.Cases, c)
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJUnitFile writes the JUnit XML to path.
func WriteJUnitFile(path string, rep Report) error {
	var b strings.Builder
	if err := WriteJUnit(&b, rep); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	return nil
}
